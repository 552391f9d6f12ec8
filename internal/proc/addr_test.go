package proc_test

import (
	"net"
	"strconv"
	"testing"

	"github.com/daemonize-dev/daemonize/internal/proc"
)

func TestFreeAddr(t *testing.T) {
	addr, err := proc.FreeAddr()
	if err != nil {
		t.Fatal(err)
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	if n, _ := strconv.Atoi(port); host != "127.0.0.1" || n < 1024 || n >= 32768 {
		t.Errorf("FreeAddr() = %s, want 127.0.0.1 and a port below the ephemeral range", addr)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("listen on the free address: %v", err)
	}
	ln.Close()
}
