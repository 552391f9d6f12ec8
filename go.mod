module github.com/daemonize-dev/daemonize

go 1.26.0

require (
	github.com/cloudflare/tableflip v1.2.3
	golang.org/x/sys v0.50.0
)
