package apiservertest

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

// Time limits of the harness. They bound how long a broken binary can hold
// a test, and are far above what a working one needs.
const (
	readyTimeout = 3 * time.Minute  // a process, from start to ready
	stopGrace    = 15 * time.Second // from SIGTERM to SIGKILL
)

// Server is a running control plane: one etcd and one kube-apiserver.
// Its methods are meant for the test's goroutine, as they call t.Fatal;
// Config and Client may be called from any goroutine.
type Server struct {
	t       testing.TB
	dir     string
	apiPath string
	etcdURL string
	port    int
	token   string
	caPEM   []byte
	mu      sync.Mutex
	etcd    *process
	api     *process
	client  kubernetes.Interface
}

// Start runs etcd and kube-apiserver on free 127.0.0.1 ports, with their
// data in t.TempDir(), and returns once the API server's /readyz answers
// and a request made with [Server.Config] succeeds. Both processes are
// stopped when the test ends, whatever its outcome; if it failed, the
// tails of their logs are written to the test log.
//
// When etcd or kube-apiserver cannot be found, Start skips the test with a
// message saying how to get them, or fails it when the environment
// variable AFFINITY_REQUIRE_K8S is 1.
func Start(t testing.TB) *Server {
	t.Helper()
	etcdPath, apiPath := binaries(t)
	dir := t.TempDir()
	s := &Server{t: t, dir: dir, apiPath: apiPath, token: randomHex(t, 32)}
	t.Cleanup(s.cleanup)

	clientPort, peerPort := freePort(t), freePort(t)
	s.etcdURL = "http://127.0.0.1:" + strconv.Itoa(clientPort)
	peerURL := "http://127.0.0.1:" + strconv.Itoa(peerPort)
	etcd, err := startProcess("etcd", filepath.Join(dir, "etcd.log"), etcdPath,
		"--name=apiservertest",
		"--data-dir="+filepath.Join(dir, "etcd"),
		"--listen-client-urls="+s.etcdURL,
		"--advertise-client-urls="+s.etcdURL,
		"--listen-peer-urls="+peerURL,
		"--initial-advertise-peer-urls="+peerURL,
		"--initial-cluster=apiservertest="+peerURL,
	)
	if err != nil {
		t.Fatalf("apiservertest: %v", err)
	}
	s.etcd = etcd
	s.waitReady(etcd, http.DefaultClient, s.etcdURL+"/health", "")

	tokens := filepath.Join(dir, "tokens.csv")
	writeFile(t, tokens, []byte(s.token+`,admin,admin,"system:masters"`+"\n"))
	writeFile(t, filepath.Join(dir, "service-account.key"), rsaKeyPEM(t))
	s.port = freePort(t)
	s.startAPIServer()

	ca, err := os.ReadFile(filepath.Join(dir, "certs", "apiserver.crt"))
	if err != nil {
		t.Fatalf("apiservertest: the API server's self-signed certificate: %v", err)
	}
	s.caPEM = ca
	client, err := kubernetes.NewForConfig(s.Config())
	if err != nil {
		t.Fatalf("apiservertest: client: %v", err)
	}
	if _, err := client.Discovery().ServerVersion(); err != nil {
		t.Fatalf("apiservertest: the API server is ready but refuses the harness's client: %v", err)
	}
	s.client = client
	return s
}

// Config returns a new client configuration for the API server, with the
// identity of a cluster administrator (group system:masters, bearer token)
// and the server's self-signed certificate as the only trusted
// authority. It stays valid across [Server.Stop] and [Server.Restart].
// Client-side rate limiting is raised well above client-go's default of 5
// requests per second, so that tests are not throttled.
func (s *Server) Config() *rest.Config {
	return &rest.Config{
		Host:            s.Host(),
		BearerToken:     s.token,
		TLSClientConfig: rest.TLSClientConfig{CAData: s.caPEM},
		QPS:             100,
		Burst:           200,
	}
}

// Host returns the API server's URL, https://127.0.0.1:PORT. The port is
// the same for the whole test, across [Server.Restart].
func (s *Server) Host() string {
	return "https://127.0.0.1:" + strconv.Itoa(s.port)
}

// Client returns a clientset built from [Server.Config], shared by every
// caller of Client on this Server.
func (s *Server) Client() kubernetes.Interface {
	return s.client
}

// Stop stops the API server (SIGTERM, then SIGKILL if it has not exited
// after some seconds) and returns once it has exited; etcd keeps running
// with its data. Requests to the server fail until [Server.Restart].
// Stop on a stopped server does nothing.
func (s *Server) Stop() {
	s.t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.api != nil {
		s.api.stop(stopGrace)
		s.api = nil
	}
}

// Restart starts the API server again, stopping it first if it runs, on
// the same port, with the same serving certificate and etcd, and returns
// once /readyz answers. Clients made from [Server.Config] before the stop
// keep working, and informers resume by themselves.
func (s *Server) Restart() {
	s.t.Helper()
	s.Stop()
	s.startAPIServer()
}

// startAPIServer runs kube-apiserver and waits until it is ready.
func (s *Server) startAPIServer() {
	s.t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	key := filepath.Join(s.dir, "service-account.key")
	api, err := startProcess("kube-apiserver", filepath.Join(s.dir, "kube-apiserver.log"), s.apiPath,
		"--etcd-servers="+s.etcdURL,
		"--bind-address=127.0.0.1",
		"--advertise-address=127.0.0.1",
		"--secure-port="+strconv.Itoa(s.port),
		"--cert-dir="+filepath.Join(s.dir, "certs"),
		"--token-auth-file="+filepath.Join(s.dir, "tokens.csv"),
		"--authorization-mode=RBAC",
		"--service-account-issuer=https://kubernetes.default.svc.cluster.local",
		"--service-account-key-file="+key,
		"--service-account-signing-key-file="+key,
		"--service-cluster-ip-range=10.0.0.0/24",
		"--endpoint-reconciler-type=none",
		"--disable-admission-plugins=ServiceAccount",
		// On SIGTERM, end open watches within a second instead of
		// waiting up to a minute for them to time out.
		"--shutdown-watch-termination-grace-period=1s",
	)
	if err != nil {
		s.t.Fatalf("apiservertest: %v", err)
	}
	s.api = api
	// The probe does not verify the certificate: on the first start it
	// does not exist until the server has written it.
	probe := &http.Client{Transport: &http.Transport{
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true},
	}}
	defer probe.CloseIdleConnections()
	s.waitReady(api, probe, s.Host()+"/readyz", s.token)
}

// waitReady polls url until it answers 200, and fails the test if p exits
// or readyTimeout passes first.
func (s *Server) waitReady(p *process, client *http.Client, url, token string) {
	s.t.Helper()
	deadline := time.Now().Add(readyTimeout)
	var last string
	for {
		req, err := http.NewRequest(http.MethodGet, url, nil)
		if err != nil {
			s.t.Fatalf("apiservertest: %v", err)
		}
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := client.Do(req)
		if err == nil {
			body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
			last = fmt.Sprintf("%s: %s", resp.Status, body)
		} else {
			last = err.Error()
		}
		select {
		case <-p.done:
			s.t.Fatalf("apiservertest: %s exited before it was ready (%v); last answer of %s: %s\n%s",
				p.name, p.err, url, last, p.tail(40))
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("apiservertest: %s not ready after %v; last answer of %s: %s\n%s",
				p.name, readyTimeout, url, last, p.tail(40))
		}
	}
}

// cleanup stops both processes, the API server first, and logs the tails
// of their logs if the test failed.
func (s *Server) cleanup() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.t.Failed() {
		for _, name := range []string{"kube-apiserver", "etcd"} {
			path := filepath.Join(s.dir, name+".log")
			s.t.Logf("apiservertest: tail of %s:\n%s", path, tailFile(path, 40))
		}
	}
	if s.api != nil {
		s.api.stop(stopGrace)
		s.api = nil
	}
	if s.etcd != nil {
		s.etcd.stop(stopGrace)
		s.etcd = nil
	}
}

// freePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("apiservertest: free port: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// randomHex returns n random bytes, hex-encoded.
func randomHex(t testing.TB, n int) string {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatalf("apiservertest: %v", err)
	}
	return hex.EncodeToString(b)
}

// rsaKeyPEM returns a new RSA private key, PEM-encoded, for signing and
// verifying service account tokens.
func rsaKeyPEM(t testing.TB) []byte {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatalf("apiservertest: service account key: %v", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)})
}

func writeFile(t testing.TB, path string, data []byte) {
	t.Helper()
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatalf("apiservertest: %v", err)
	}
}
