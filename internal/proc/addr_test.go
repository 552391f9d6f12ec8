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

func TestPortLimit(t *testing.T) {
	for _, tc := range []struct {
		portRange string
		want      int
	}{
		{"32768\t60999\n", 32000}, // Linux's default
		{"25000 60999\n", 25000},  // a range that starts lower
		{"20001 60999\n", 20001},
		{"20000 60999\n", 32000}, // starts at or below lowPort: FreeAddr cannot stay below it
		{"1024 65535\n", 32000},
		{"", 32000}, // no such file
		{"x y\n", 32000},
		{"32768\n", 32000},
	} {
		if got := proc.PortLimit([]byte(tc.portRange)); got != tc.want {
			t.Errorf("PortLimit(%q) = %d, want %d", tc.portRange, got, tc.want)
		}
	}
}
