package realclient

import (
	"testing"
	"time"
)

func TestParseWrk(t *testing.T) {
	clean := `Running 5s test @ http://127.0.0.1:23457/
  1 threads and 4 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency   287.80us  665.99us   8.01ms   91.93%
    Req/Sec    36.77k     5.52k   46.25k    70.00%
  36474 requests in 1.00s, 5.29MB read
Requests/sec:  36459.93
Transfer/sec:      5.29MB
`
	r, err := ParseWrk(clean)
	if err != nil || r.Requests != 36474 || r.Elapsed != time.Second || r.SocketErrors() != 0 || r.Non2xx != 0 {
		t.Errorf("clean run: %v, %v", r, err)
	}
	failing := `  1 threads and 4 connections
  1184 requests in 2.01s, 171.60KB read
  Socket errors: connect 3, read 7, write 1, timeout 2
  Non-2xx or 3xx responses: 12
Requests/sec:    589.05
`
	r, err = ParseWrk(failing)
	if err != nil || r.Requests != 1184 || r.Elapsed != 2010*time.Millisecond || r.Connect != 3 || r.Read != 7 || r.Write != 1 || r.Timeout != 2 || r.SocketErrors() != 13 || r.Non2xx != 12 {
		t.Errorf("failing run: %v, %v", r, err)
	}
	if _, err := ParseWrk("unable to connect to 127.0.0.1:1 Connection refused\n"); err == nil {
		t.Error("no summary, no error")
	}
}

func TestParseH2load(t *testing.T) {
	out := `finished in 56.13ms, 3563.74 req/s, 528.32KB/s
requests: 200 total, 200 started, 198 done, 190 succeeded, 10 failed, 2 errored, 1 timeout
status codes: 190 2xx, 1 3xx, 2 4xx, 5 5xx
traffic: 29.69KB (30400) total, 16.80KB (17200) headers (space savings 0.00%), 6.84KB (7000) data
`
	r, err := ParseH2load(out)
	if err != nil || r.Total != 200 || r.Started != 200 || r.Done != 198 || r.Succeeded != 190 || r.Failed != 10 || r.Errored != 2 || r.Timeout != 1 ||
		r.Status2xx != 190 || r.Status3xx != 1 || r.Status4xx != 2 || r.Status5xx != 5 {
		t.Errorf("%v, %v", r, err)
	}
	if _, err := ParseH2load("connect: Connection refused\n"); err == nil {
		t.Error("no summary, no error")
	}
}
