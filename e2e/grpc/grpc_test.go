package grpc_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/affinitylb/affinity/backend"
	"github.com/affinitylb/affinity/policy"
	"github.com/affinitylb/affinity/sticky"
)

// keyHeader is the metadata entry, an HTTP/2 header, that binds a call to
// a backend.
const keyHeader = "x-affinity-key"

// refusing is the service name for which a backend answers every health
// check with an error carrying details.
const refusing = "refusing"

// callTimeout bounds each call; it only keeps a broken test from hanging.
const callTimeout = 10 * time.Second

// grpcBackend is a grpc-go server with the health service, on 127.0.0.1.
type grpcBackend struct {
	name   string
	addr   string
	health *health.Server
}

// startBackend starts a gRPC server named name, which tells itself in the
// trailer (unary calls) or header (streams) "x-backend" of every answer.
func startBackend(t *testing.T, name string) *grpcBackend {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	unary := func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		if err := grpc.SetTrailer(ctx, metadata.Pairs("x-backend", name)); err != nil {
			return nil, err
		}
		if r, ok := req.(*healthpb.HealthCheckRequest); ok && r.GetService() == refusing {
			st, err := status.New(codes.FailedPrecondition, "refused by "+name).WithDetails(&errdetails.ErrorInfo{
				Reason: "REFUSED", Domain: "affinity.test", Metadata: map[string]string{"backend": name},
			})
			if err != nil {
				return nil, err
			}
			return nil, st.Err()
		}
		return handler(ctx, req)
	}
	stream := func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		if err := ss.SetHeader(metadata.Pairs("x-backend", name)); err != nil {
			return err
		}
		return handler(srv, ss)
	}
	s := grpc.NewServer(grpc.UnaryInterceptor(unary), grpc.StreamInterceptor(stream))
	hs := health.NewServer()
	hs.SetServingStatus("app", healthpb.HealthCheckResponse_SERVING)
	healthpb.RegisterHealthServer(s, hs)
	done := make(chan error, 1)
	go func() { done <- s.Serve(ln) }()
	t.Cleanup(func() {
		s.Stop()
		assert.NoError(t, <-done, "%s: Serve", name)
	})
	return &grpcBackend{name: name, addr: ln.Addr().String(), health: hs}
}

// startProxy serves a sticky handler over the backends bs, binding calls
// by their keyHeader, on 127.0.0.1 with HTTP/1.1 and HTTP/2 without TLS,
// and returns its address.
func startProxy(t *testing.T, bs ...*grpcBackend) string {
	t.Helper()
	var cfgs []backend.Config
	for _, b := range bs {
		cfgs = append(cfgs, backend.Config{ID: b.name, URL: "h2c://" + b.addr})
	}
	set, err := backend.NewSet(cfgs)
	require.NoError(t, err)
	key, err := policy.HeaderKey(keyHeader)
	require.NoError(t, err)
	h, err := sticky.New(set, key)
	require.NoError(t, err)
	srv := &http.Server{Handler: h, Protocols: new(http.Protocols), ReadHeaderTimeout: callTimeout}
	srv.Protocols.SetHTTP1(true)
	srv.Protocols.SetUnencryptedHTTP2(true)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	t.Cleanup(func() {
		assert.NoError(t, srv.Close())
		assert.ErrorIs(t, <-done, http.ErrServerClosed)
	})
	return ln.Addr().String()
}

// dial returns a health client of the proxy at addr, over HTTP/2 without
// TLS.
func dial(t *testing.T, addr string) healthpb.HealthClient {
	t.Helper()
	conn, err := grpc.NewClient("passthrough:///"+addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	t.Cleanup(func() { conn.Close() })
	return healthpb.NewHealthClient(conn)
}

// keyed returns a context for one call bound by key, and its cancel.
func keyed(t *testing.T, key string) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithTimeout(t.Context(), callTimeout)
	return metadata.AppendToOutgoingContext(ctx, keyHeader, key), cancel
}

// check makes a health check of service bound by key, and returns the
// answer, the backend that its trailer names, and the error.
func check(t *testing.T, c healthpb.HealthClient, key, service string) (*healthpb.HealthCheckResponse, string, error) {
	t.Helper()
	ctx, cancel := keyed(t, key)
	defer cancel()
	var trailer metadata.MD
	resp, err := c.Check(ctx, &healthpb.HealthCheckRequest{Service: service}, grpc.Trailer(&trailer))
	var by string
	if v := trailer.Get("x-backend"); len(v) == 1 {
		by = v[0]
	}
	return resp, by, err
}

func TestHealthChecksStickByKey(t *testing.T) {
	a, b := startBackend(t, "a"), startBackend(t, "b")
	b.health.SetServingStatus("app", healthpb.HealthCheckResponse_NOT_SERVING) // b answers otherwise
	c := dial(t, startProxy(t, a, b))
	want := map[string]healthpb.HealthCheckResponse_ServingStatus{
		"a": healthpb.HealthCheckResponse_SERVING,
		"b": healthpb.HealthCheckResponse_NOT_SERVING,
	}

	seen := map[string]int{}
	for i := range 16 {
		key := fmt.Sprintf("user-%d", i)
		var first string
		for j := range 4 {
			resp, by, err := check(t, c, key, "app")
			require.NoError(t, err, "key %s, call %d", key, j)
			require.Contains(t, want, by, "the trailer naming the backend: key %s, call %d", key, j)
			assert.Equal(t, want[by], resp.GetStatus(), "the answer of %s", by)
			if j == 0 {
				first = by
				seen[by]++
			}
			assert.Equal(t, first, by, "key %s, call %d: its first call's backend", key, j)
		}
	}
	assert.Len(t, seen, 2, "backends that keys went to: %v", seen)
}

func TestErrorStatusArrivesIntact(t *testing.T) {
	a, b := startBackend(t, "a"), startBackend(t, "b")
	c := dial(t, startProxy(t, a, b))
	for _, tc := range []struct {
		name    string
		service string
		code    codes.Code
		message string // "%s" is the backend's name
		details bool
	}{
		{"the health server's own error", "unknown-service", codes.NotFound, "unknown service", false},
		{"an error with details", refusing, codes.FailedPrecondition, "refused by %s", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, by, err := check(t, c, "user-1", tc.service)
			require.Error(t, err)
			require.Contains(t, []string{"a", "b"}, by, "the trailer naming the backend")
			st, ok := status.FromError(err)
			require.True(t, ok, "a gRPC status: %v", err)
			assert.Equal(t, tc.code, st.Code())
			want := tc.message
			if tc.details {
				want = fmt.Sprintf(tc.message, by)
			}
			assert.Equal(t, want, st.Message())
			if !tc.details {
				assert.Empty(t, st.Details())
				return
			}
			require.Len(t, st.Details(), 1)
			info, ok := st.Details()[0].(*errdetails.ErrorInfo)
			require.True(t, ok, "details: %v", st.Details())
			assert.Equal(t, "REFUSED", info.GetReason())
			assert.Equal(t, "affinity.test", info.GetDomain())
			assert.Equal(t, map[string]string{"backend": by}, info.GetMetadata())
		})
	}
}

func TestWatchStreamsThroughTheProxy(t *testing.T) {
	bs := map[string]*grpcBackend{"a": startBackend(t, "a"), "b": startBackend(t, "b")}
	c := dial(t, startProxy(t, bs["a"], bs["b"]))
	ctx, cancel := keyed(t, "watcher")
	defer cancel()
	stream, err := c.Watch(ctx, &healthpb.HealthCheckRequest{Service: "app"})
	require.NoError(t, err)
	first, err := stream.Recv()
	require.NoError(t, err)
	assert.Equal(t, healthpb.HealthCheckResponse_SERVING, first.GetStatus())
	header, err := stream.Header()
	require.NoError(t, err)
	by := header.Get("x-backend")
	require.Len(t, by, 1)
	require.Contains(t, bs, by[0])

	// The stream is open: a change on its backend reaches the client while
	// it lasts.
	bs[by[0]].health.SetServingStatus("app", healthpb.HealthCheckResponse_NOT_SERVING)
	next, err := stream.Recv()
	require.NoError(t, err)
	assert.Equal(t, healthpb.HealthCheckResponse_NOT_SERVING, next.GetStatus())

	cancel()
	_, err = stream.Recv()
	assert.Equal(t, codes.Canceled, status.Code(err), "after the client cancelled: %v", err)
	assert.False(t, errors.Is(err, context.DeadlineExceeded))
}
