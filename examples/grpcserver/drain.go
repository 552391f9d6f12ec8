package main

import (
	"context"
	"errors"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

// goAwayLead is how long GracefulStop's GOAWAY gets to go out on every
// connection before the health service says NOT_SERVING and the Watch streams
// end. A client must see the GOAWAY first: grpc-go's client-side health
// checking takes a NOT_SERVING or an ended Watch on a connection that has
// not been told to go away for a failed backend, and fails RPCs while it
// has no other; and a client that opens its Watch again must do so on a new
// connection, to the new process. grpc-go does not say when the GOAWAY has
// gone, so this is a margin for the scheduling of GracefulStop's goroutine:
// on the wire, frames keep their order. A connection still in its handshake
// holds the GOAWAY back longer (see newServer); until it goes, Check on the
// old connections answers NOT_SERVING.
const goAwayLead = 50 * time.Millisecond

// server is the gRPC server with the health service, and how it drains.
type server struct {
	grpc   *grpc.Server
	health *health.Server

	// draining is cancelled when the Watch streams must end.
	draining   context.Context
	endWatches context.CancelFunc
}

// newServer makes the server. The HTTP/2 handshake of a new connection gets
// half the drain, 10 s at most: GracefulStop, and Stop too, first wait until
// every connection still in its handshake has finished it or timed out, and
// only then send GOAWAY, so a client that connects and sends nothing would
// hold the drain for grpc's default of 120 s.
func newServer(drain time.Duration) *server {
	s := &server{
		grpc:   grpc.NewServer(grpc.ConnectionTimeout(min(drain/2, 10*time.Second))),
		health: health.NewServer(), // "" (the whole server) is SERVING
	}
	s.draining, s.endWatches = context.WithCancel(context.Background())
	healthpb.RegisterHealthServer(s.grpc, &healthService{Server: s.health, draining: s.draining})
	return s
}

// drain is called when the process must stop serving: after SIGTERM, or once
// a restarted process has taken over (the library has then closed the
// listener already; the socket lives on in the new process). It stops
// gracefully: GOAWAY on every connection, so that clients send their next
// RPCs over a new connection, and a wait for the RPCs in flight. Then, once
// the GOAWAY had time to go out, the health service says NOT_SERVING and the
// Watch streams end, which would otherwise hold GracefulStop until the
// deadline. At the context's deadline it closes the connections, which
// cancels the RPCs still running; a handler that ignores its context is
// left behind, as the process exits.
func (s *server) drain(ctx context.Context) error {
	stopped := make(chan struct{})
	go func() {
		s.grpc.GracefulStop()
		close(stopped)
	}()
	lead := time.NewTimer(goAwayLead)
	defer lead.Stop()
	select {
	case <-lead.C:
	case <-stopped: // no connection was left to tell
	case <-ctx.Done():
	}
	s.health.Shutdown() // every service NOT_SERVING, for good
	s.endWatches()
	select {
	case <-stopped:
		return nil
	case <-ctx.Done():
		s.grpc.Stop()
		return errors.New("grpc server: RPCs still running at the drain deadline; cancelled them")
	}
}

// healthService is the standard health service, except that its Watch
// streams end with status OK when the server drains, after a last
// NOT_SERVING, so that a client opens them again on the new process. The
// standard Watch ends only when the client goes away. A stream opened on a
// draining server (the client had not seen the GOAWAY yet) ends goAwayLead
// after it began, so that the client does not spin opening it again on the
// same connection.
type healthService struct {
	*health.Server
	draining context.Context
}

func (h *healthService) Watch(req *healthpb.HealthCheckRequest, stream healthpb.Health_WatchServer) error {
	ctx, cancel := context.WithCancel(stream.Context())
	defer cancel()
	if h.draining.Err() == nil {
		defer context.AfterFunc(h.draining, cancel)()
	} else {
		defer time.AfterFunc(goAwayLead, cancel).Stop()
	}
	w := &watchStream{Health_WatchServer: stream, ctx: ctx}
	err := h.Server.Watch(req, w)
	if stream.Context().Err() != nil {
		return err // the client went away
	}
	if w.last == healthpb.HealthCheckResponse_SERVING {
		stream.Send(&healthpb.HealthCheckResponse{Status: healthpb.HealthCheckResponse_NOT_SERVING})
	}
	return nil
}

// watchStream is a Watch stream that ends with ctx, and remembers the last
// status it sent. Only the handler's goroutine uses it.
type watchStream struct {
	healthpb.Health_WatchServer
	ctx  context.Context
	last healthpb.HealthCheckResponse_ServingStatus
}

func (w *watchStream) Context() context.Context { return w.ctx }

func (w *watchStream) Send(m *healthpb.HealthCheckResponse) error {
	w.last = m.GetStatus()
	return w.Health_WatchServer.Send(m)
}
