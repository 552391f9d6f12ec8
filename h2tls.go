package daemonize

import (
	"crypto/tls"
	"errors"
	"io"
	"maps"
	"net"
	"net/http"
	"sync"
	"time"
)

// This file lets the drain follow the frames of HTTP/2 over TLS, as it does
// on h2c (h2goaway.go). net/http negotiates "h2" by ALPN and hands the
// *tls.Conn to the HTTP/2 server it bundles, through srv.TLSNextProto["h2"],
// a function of a concrete *tls.Conn that leaves no room to look at the
// frames. Its other key, "unencrypted_http2", serves any net.Conn, passed
// inside a *tls.Conn whose NetConn has an UnencryptedNetConn method, once
// the client's preface is read: net/http uses it for h2c, and
// golang.org/x/net/http2 serves it the same way. So the library puts its
// own function at "h2": it reads the preface and hands net/http an h2Conn,
// the TLS connection with its frames followed, through that second key.
// Where a server lacks either key (HTTP/2 turned off, or an HTTP/2 server
// of the user's own), nothing changes, and such a connection gets
// net/http's single GOAWAY.

// nextProtoHandoff is net/http's TLSNextProto key for an HTTP/2 connection
// it did not negotiate by TLS.
const nextProtoHandoff = "unencrypted_http2"

// prefaceTimeout bounds the wait for the client's preface, as net/http's
// HTTP/2 server does.
const prefaceTimeout = 10 * time.Second

// h2Taken holds, for each *http.Server, the sync.Once that takes over its
// HTTP/2 over TLS.
var h2Taken sync.Map

// takeH2 takes over srv's HTTP/2 over TLS. net/http sets srv.TLSNextProto
// up when Serve starts, before it accepts: Serve calls this from
// ConnContext, before its first connection is served, once per server.
func takeH2(srv *http.Server) {
	once, ok := h2Taken.Load(srv)
	if !ok {
		once, _ = h2Taken.LoadOrStore(srv, new(sync.Once))
	}
	once.(*sync.Once).Do(func() {
		serveTLS, handoff := srv.TLSNextProto["h2"], srv.TLSNextProto[nextProtoHandoff]
		if serveTLS == nil || handoff == nil {
			return
		}
		next := maps.Clone(srv.TLSNextProto)
		next["h2"] = func(hs *http.Server, c *tls.Conn, h http.Handler) {
			tc := trackedOf(c)
			if tc == nil {
				serveTLS(hs, c, h)
				return
			}
			if err := readPreface(c); err != nil {
				c.Close()
				return
			}
			f := newH2Frames(c.Write)
			tc.frames.Store(f)
			handoff(hs, tls.Client(handoffConn{&h2Conn{Conn: c, frames: f}}, nil), h)
		}
		srv.TLSNextProto = next
	})
}

// readPreface reads HTTP/2's preface from a client.
func readPreface(c net.Conn) error {
	c.SetReadDeadline(time.Now().Add(prefaceTimeout))
	defer c.SetReadDeadline(time.Time{})
	p := make([]byte, len(h2Preface))
	if _, err := io.ReadFull(c, p); err != nil {
		return err
	}
	if string(p) != string(h2Preface) {
		return errors.New("daemonize: not HTTP/2's preface")
	}
	return nil
}

// handoffConn carries a connection through net/http's handoff.
type handoffConn struct{ net.Conn }

func (c handoffConn) UnencryptedNetConn() net.Conn { return c.Conn }

// h2Conn is an HTTP/2 connection over TLS as net/http's HTTP/2 server sees
// it: the TLS connection (its ConnectionState fills Request.TLS), with its
// frames followed for the drain.
type h2Conn struct {
	*tls.Conn
	frames *h2Frames
}

func (c *h2Conn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if n > 0 {
		c.frames.received(p[:n])
	}
	return n, err
}

func (c *h2Conn) Write(p []byte) (int, error) { return c.frames.write(p) }
