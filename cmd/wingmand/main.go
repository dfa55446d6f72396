package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/coreos/go-systemd/v22/daemon"
	"github.com/spf13/pflag"
	"github.com/wingmanha/wingman/cmd/api"
	"github.com/wingmanha/wingman/cmd/internal/journallog"
)

// Exit codes.
const (
	exitOK     = 0
	exitFailed = 1
	exitUsage  = 2
	exitConfig = 78 // EX_CONFIG, as systemd knows it
)

func main() {
	os.Exit(run(os.Args[1:], os.Stderr))
}

// flagSet is wingmand's command line; wingmand(8) is generated from it.
func flagSet() *pflag.FlagSet {
	fs := pflag.NewFlagSet("wingmand", pflag.ContinueOnError)
	fs.SortFlags = false
	fs.StringP("config", "f", DefaultConfigPath, "the configuration `FILE` (wingman.toml(5))")
	fs.StringSlice("lun", nil, "the heartbeat LUN, a shared block `DEVICE`, or three, comma-separated (overrides lun)")
	fs.String("cluster", "", "the cluster `NAME` (overrides cluster)")
	fs.String("host-name", "", "this host's `NAME` (overrides host_name)")
	fs.Int("host-id", 0, "this host's `SLOT` on the LUN, 1..255 (overrides host_id)")
	fs.String("state-dir", "", "the state `DIR` (overrides state_dir)")
	fs.String("libvirt-uri", "", "the local libvirt `URI` (overrides libvirt.uri)")
	fs.String("bind", "", "serf's bind address `HOST:PORT` (overrides serf.bind)")
	fs.StringSlice("join", nil, "serf addresses to join, `HOST:PORT,...` (overrides serf.join)")
	fs.String("keyring", "", "serf's keyring `FILE` (overrides serf.keyring)")
	fs.String("socket", "", "the API socket's `PATH` (overrides api.socket)")
	fs.String("watchdog", "", "the watchdog `MODE`: auto, device, software (overrides watchdog.mode)")
	fs.Bool("check-config", false, "validate the configuration and exit")
	fs.Bool("version", false, "print the version and exit")
	fs.String("log-level", "info", "the `LEVEL` of log messages: debug, info, warn or error")
	return fs
}

func run(args []string, stderr io.Writer) int {
	fs := flagSet()
	fs.SetOutput(stderr)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return exitOK
		}
		fmt.Fprintf(stderr, "wingmand: %v; see wingmand --help\n", err)
		return exitUsage
	}
	if v, _ := fs.GetBool("version"); v {
		fmt.Fprintf(stderr, "wingmand %s\n", version)
		return exitOK
	}
	configPath, _ := fs.GetString("config")
	cfg, err := LoadConfig(configPath, fs.Changed("lun") || !fs.Changed("config"))
	if err != nil {
		fmt.Fprintf(stderr, "wingmand: %v\n", err)
		return exitConfig
	}
	set := func(name string, dst *string) {
		if fs.Changed(name) {
			*dst, _ = fs.GetString(name)
		}
	}
	set("cluster", &cfg.Cluster)
	set("host-name", &cfg.HostName)
	set("state-dir", &cfg.StateDir)
	set("libvirt-uri", &cfg.Libvirt.URI)
	set("bind", &cfg.Serf.Bind)
	set("keyring", &cfg.Serf.Keyring)
	set("socket", &cfg.API.Socket)
	set("watchdog", &cfg.Watchdog.Mode)
	if fs.Changed("host-id") {
		cfg.HostID, _ = fs.GetInt("host-id")
	}
	if fs.Changed("lun") {
		cfg.LUN, _ = fs.GetStringSlice("lun")
	}
	if fs.Changed("join") {
		cfg.Serf.Join, _ = fs.GetStringSlice("join")
	}
	if err := cfg.Validate(); err != nil {
		fmt.Fprintf(stderr, "wingmand: invalid configuration: %v\n", err)
		return exitConfig
	}
	if v, _ := fs.GetBool("check-config"); v {
		fmt.Fprintf(stderr, "%s: configuration is valid\n", cfg.path)
		return exitOK
	}

	var level slog.Level
	logLevel, _ := fs.GetString("log-level")
	if err := level.UnmarshalText([]byte(logLevel)); err != nil {
		fmt.Fprintf(stderr, "wingmand: --log-level %q: use debug, info, warn or error\n", logLevel)
		return exitUsage
	}
	log := newLogger(stderr, level)
	notify := func(state string) { _, _ = daemon.SdNotify(false, state) }

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	d, err := Start(ctx, cfg, log, notify)
	if err != nil {
		log.Error("start failed", "err", err)
		fmt.Fprintf(stderr, "wingmand: %v\n", err)
		return exitFailed
	}
	l, err := listenSocket(cfg.API.Socket, cfg.API.Group)
	if err != nil {
		log.Error("api", "err", err)
		_ = d.Stop(context.Background())
		return exitFailed
	}
	apiCtx, apiStop := context.WithCancel(context.Background())
	go func() {
		if err := d.Serve(apiCtx, l); err != nil {
			log.Error("api server", "err", err)
		}
	}()
	if cfg.API.TLSListen != "" {
		if _, err := d.ServeTLS(apiCtx, cfg.API.TLSListen, api.TLSFiles{Cert: cfg.API.TLSCert, Key: cfg.API.TLSKey, CA: cfg.API.TLSClientCA}); err != nil {
			log.Error("remote api", "err", err)
			apiStop()
			_ = d.Stop(context.Background())
			return exitFailed
		}
	}
	if cfg.Metrics.Listen != "" {
		if _, err := d.metrics.Serve(apiCtx, cfg.Metrics); err != nil {
			log.Error("metrics", "err", err)
		}
	}
	notify(daemon.SdNotifyReady)
	<-ctx.Done()
	notify(daemon.SdNotifyStopping)
	stop()
	sctx, cancel := context.WithTimeout(context.Background(), cfg.Shutdown.Timeout.Duration+30*time.Second)
	defer cancel()
	err = d.Stop(sctx)
	apiStop()
	os.Remove(cfg.API.Socket)
	if err != nil {
		log.Error("stopped with errors", "err", err)
		return exitFailed
	}
	log.Info("stopped")
	return exitOK
}

// newLogger logs to the journal, each attribute a field, when it runs
// under systemd, else to stderr.
func newLogger(stderr io.Writer, level slog.Level) *slog.Logger {
	if journallog.Available(os.Getenv("JOURNAL_STREAM")) {
		return slog.New(journallog.New("wingmand", level, nil))
	}
	return slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
}
