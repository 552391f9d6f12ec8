package proc

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"strings"
)

// The ports FreeAddr picks from: below Linux's ephemeral range (32768 and
// up by default, net.ipv4.ip_local_port_range), above the usual services.
// A Linux range that starts lower, but above lowPort, lowers highPort to
// its start. FreeBSD's default ephemeral range (10000 and up) holds them;
// the callers that load a server run on Linux.
const (
	lowPort  = 20000
	highPort = 32000
)

// portRangeFile holds Linux's ephemeral port range: "first last".
const portRangeFile = "/proc/sys/net/ipv4/ip_local_port_range"

// FreeAddr returns a loopback address, 127.0.0.1:<port>, with a port nobody
// listens on now. It picks below the kernel's ephemeral range rather than
// asking for port 0: under load, a client connection (of a load generator,
// say) may take an ephemeral port between this check and the server's
// bind, and the server would then fail to listen.
func FreeAddr() (string, error) {
	b, _ := os.ReadFile(portRangeFile)
	high := portLimit(b)
	var err error
	for range 100 {
		addr := fmt.Sprintf("127.0.0.1:%d", lowPort+rand.IntN(high-lowPort))
		var ln net.Listener
		if ln, err = net.Listen("tcp", addr); err == nil {
			ln.Close()
			return addr, nil
		}
	}
	return "", errors.Join(errors.New("proc: no free loopback port in 100 tries"), err)
}

// portLimit returns the port FreeAddr picks below, given the content of
// [portRangeFile] (nothing where there is none): highPort, or the start of
// the ephemeral range if that is lower and above lowPort.
func portLimit(portRange []byte) int {
	f := strings.Fields(string(portRange))
	if len(f) != 2 {
		return highPort
	}
	first, err := strconv.Atoi(f[0])
	if err != nil || first <= lowPort {
		return highPort
	}
	return min(highPort, first)
}
