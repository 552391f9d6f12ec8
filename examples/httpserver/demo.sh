#!/bin/sh
# Builds examples/httpserver, starts it as a daemon, hot-restarts it while a
# slow request is in flight, and stops it. Nothing is left behind.
#   ADDR=127.0.0.1:8080 ./examples/httpserver/demo.sh
set -eu
cd "$(dirname "$0")/../.."
addr=${ADDR:-127.0.0.1:8080}
dir=$(mktemp -d)
pidfile=$dir/httpserver.pid
cleanup() {
	[ -f "$pidfile" ] && kill "$(cat "$pidfile")" 2>/dev/null || true
	rm -rf "$dir"
}
trap cleanup EXIT

# waitfor CMD...: retry a shell test for up to 10 s.
waitfor() {
	i=0
	until eval "$@"; do
		i=$((i + 1))
		[ $i -gt 200 ] && { echo "timed out waiting for: $*" >&2; exit 1; }
		sleep 0.05
	done
}

echo "== build"
go build -o "$dir/httpserver" ./examples/httpserver
echo "== start as a daemon (the command returns once the server is ready)"
"$dir/httpserver" -detach -addr "$addr" -pidfile "$pidfile" -stderr "$dir/httpserver.log" -drain 10s
old=$(cat "$pidfile")
echo "daemon pid $old"
curl -sS "http://$addr/"

echo "== hot restart with a 2s request in flight"
curl -sS "http://$addr/sleep?d=2s" >"$dir/slow" &
slow=$!
sleep 0.2
kill -USR1 "$old"
waitfor '[ "$(cat "$pidfile" 2>/dev/null)" != "$old" ]'
echo "new pid $(cat "$pidfile"); new requests go to it:"
curl -sS "http://$addr/"
wait $slow
echo "the slow request finished on the old process: $(cat "$dir/slow")"
waitfor '! kill -0 "$old" 2>/dev/null'
echo "old pid $old has exited"

echo "== stop"
kill "$(cat "$pidfile")"
waitfor '[ ! -e "$pidfile" ]'
echo "stopped; pid file removed. The daemon's log:"
cat "$dir/httpserver.log"
