package main

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"strings"

	"github.com/spf13/pflag"

	"github.com/wingmanha/wingman/cmd/api"
	"github.com/wingmanha/wingman/cmd/internal/dashboard"
)

var uiCmd = command{
	name:    "ui",
	summary: "serve the web dashboard on 127.0.0.1 for one browser",
	help: `Serves Wingman's web dashboard (hosts, quorum, warnings, VMs, each failover
as a timeline, the live event stream, and maintenance, migrate and protect
with a confirmation) on 127.0.0.1, and prints a link with a one-time token.
The browser that opens the link first gets a session cookie; every other
request is refused. The dashboard talks to wingmand through its socket,
with the authority of the user who runs 'wingman ui' (root or group
wingman). Ctrl-C stops it.

From another machine, forward the port over SSH and open the printed link
there:

  ssh -L 8080:127.0.0.1:8080 root@kvm1 wingman ui --port 8080

A wingmand with a mutual-TLS listener (api.tls_listen) serves the same
dashboard at https://HOST:PORT/ui/ to a browser that holds a client
certificate of the cluster's CA.`,
	nargs: [2]int{0, 0},
	bind: func(fs *pflag.FlagSet) func(context.Context, stdio, []string) error {
		port := fs.Int("port", 0, "listen on 127.0.0.1:`PORT` (0: a free port)")
		connect := connectFlag(fs)
		return func(ctx context.Context, s stdio, _ []string) error {
			if *port < 0 || *port > 65535 {
				return usagef("--port %d: use a port from 1 to 65535, or 0 for a free one", *port)
			}
			socket := connect()
			if strings.HasPrefix(socket, "https://") {
				return usagef("--connect %s: 'wingman ui' serves a daemon's unix socket; a mutual-TLS listener serves the dashboard itself at %s/ui/", socket, strings.TrimSuffix(socket, "/"))
			}
			if _, err := dialCheck(socket); err != nil {
				return explainUnreachable(socket, err, fmt.Errorf("%w at %s: %w", api.ErrUnreachable, socket, err))
			}
			l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(*port)))
			if err != nil {
				return fmt.Errorf("listen on 127.0.0.1:%d: %w; choose another --port, or 0 for a free one", *port, err)
			}
			gate := dashboard.NewGate(dashboard.Proxy(socket))
			fmt.Fprintln(s.out, gate.URL(l.Addr().String()))
			fmt.Fprintf(s.errOut, "serving the dashboard of %s: open the link above (it works once); Ctrl-C stops\n", socket)
			return api.Serve(ctx, l, gate)
		}
	},
}
