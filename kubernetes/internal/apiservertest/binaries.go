package apiservertest

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// requireEnv, set to 1, turns a missing binary from a skipped test into a
// failed one.
const requireEnv = "AFFINITY_REQUIRE_K8S"

// binaries returns the paths of etcd and kube-apiserver, or skips (or
// fails, with AFFINITY_REQUIRE_K8S=1) the test saying how to get those
// that are missing.
func binaries(t testing.TB) (etcd, apiserver string) {
	t.Helper()
	var missing []string
	if ok, why := supported(); !ok {
		missing = append(missing, why)
	}
	etcd, err := exec.LookPath("etcd")
	if err != nil {
		missing = append(missing, "etcd is not on PATH: install it (Debian: apt-get install etcd-server)")
	}
	apiserver, err = findAPIServer()
	if err != nil {
		missing = append(missing, err.Error()+
			": build it with .ci/kube-apiserver \"$(go env GOPATH)/bin\" from the repository's root")
	}
	if len(missing) == 0 {
		return etcd, apiserver
	}
	msg := "apiservertest: " + strings.Join(missing, "; ")
	if os.Getenv(requireEnv) == "1" {
		t.Fatalf("%s (%s=1 requires these tests)", msg, requireEnv)
	}
	t.Skipf("%s (set %s=1 to fail instead of skipping)", msg, requireEnv)
	return "", ""
}

// findAPIServer returns $KUBE_APISERVER if set, else kube-apiserver on
// PATH, else $(go env GOPATH)/bin/kube-apiserver if it exists.
func findAPIServer() (string, error) {
	if path := os.Getenv("KUBE_APISERVER"); path != "" {
		if _, err := os.Stat(path); err != nil {
			return "", fmt.Errorf("KUBE_APISERVER=%s: %w", path, err)
		}
		return path, nil
	}
	if path, err := exec.LookPath("kube-apiserver"); err == nil {
		return path, nil
	}
	gopath, err := exec.Command("go", "env", "GOPATH").Output()
	if err != nil {
		return "", fmt.Errorf("kube-apiserver is not on PATH, and go env GOPATH failed: %w", err)
	}
	var tried []string
	for _, dir := range filepath.SplitList(strings.TrimSpace(string(gopath))) {
		path := filepath.Join(dir, "bin", "kube-apiserver")
		if _, err := os.Stat(path); err == nil {
			return path, nil
		}
		tried = append(tried, path)
	}
	return "", fmt.Errorf("kube-apiserver is not in KUBE_APISERVER, on PATH, or at %s", strings.Join(tried, ", "))
}
