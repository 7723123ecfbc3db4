package grpc_test

import (
	"bytes"
	"encoding/binary"
	"io"
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/protobuf/proto"
)

// TestTrailersArrive makes health checks as gRPC frames them, with
// net/http's client over HTTP/2 without TLS, to read what grpc-go's client
// keeps to itself: grpc-status and grpc-message as the backend sent them,
// in trailers after the body, or, for an error with no message, in the
// only header block of a "Trailers-Only" response.
func TestTrailersArrive(t *testing.T) {
	a, b := startBackend(t, "a"), startBackend(t, "b")
	addr := startProxy(t, a, b)
	tr := &http.Transport{Protocols: new(http.Protocols)}
	tr.Protocols.SetUnencryptedHTTP2(true)
	t.Cleanup(tr.CloseIdleConnections)
	c := &http.Client{Transport: tr, Timeout: callTimeout}

	for _, tc := range []struct {
		name, service, status, message string
		trailersOnly                   bool
	}{
		{"an answer", "app", "0", "", false},
		{"an error", "unknown-service", "5", "unknown service", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			msg, err := proto.Marshal(&healthpb.HealthCheckRequest{Service: tc.service})
			require.NoError(t, err)
			frame := binary.BigEndian.AppendUint32([]byte{0}, uint32(len(msg))) // not compressed, length
			req, err := http.NewRequest(http.MethodPost, "http://"+addr+"/grpc.health.v1.Health/Check", bytes.NewReader(append(frame, msg...)))
			require.NoError(t, err)
			req.Header.Set("Content-Type", "application/grpc")
			req.Header.Set("Te", "trailers")
			req.Header.Set(keyHeader, "user-1")
			resp, err := c.Do(req)
			require.NoError(t, err)
			defer resp.Body.Close()
			assert.Equal(t, 2, resp.ProtoMajor)
			assert.Equal(t, http.StatusOK, resp.StatusCode)
			assert.Equal(t, "application/grpc", resp.Header.Get("Content-Type"))
			body, err := io.ReadAll(resp.Body) // trailers come after the body
			require.NoError(t, err)
			fields := resp.Trailer
			if tc.trailersOnly {
				assert.Empty(t, body)
				assert.Empty(t, resp.Trailer)
				fields = resp.Header
			} else {
				assert.NotEmpty(t, body, "the answer")
			}
			assert.Equal(t, tc.status, fields.Get("Grpc-Status"), "header %v, trailers %v", resp.Header, resp.Trailer)
			assert.Equal(t, tc.message, fields.Get("Grpc-Message"))
			assert.Contains(t, []string{"a", "b"}, fields.Get("X-Backend"))
		})
	}
}
