//go:build linux

package realclient

import (
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"time"
)

// SelfSignedCert makes a throw-away certificate for localhost and
// 127.0.0.1 with openssl (P-256, valid 2 days) in dir, and returns the
// paths of the certificate and its key, both PEM.
func SelfSignedCert(ctx context.Context, dir string) (cert, key string, err error) {
	path, err := lookPath("openssl")
	if err != nil {
		return "", "", err
	}
	cert, key = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, path, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
		"-nodes", "-keyout", key, "-out", cert, "-days", "2", "-subj", "/CN=localhost",
		"-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1")
	cmd.WaitDelay = 5 * time.Second
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", "", fmt.Errorf("openssl req: %v: %s", err, tail(string(out), 500))
	}
	return cert, key, nil
}
