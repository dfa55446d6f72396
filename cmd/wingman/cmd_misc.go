package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"runtime"

	"github.com/spf13/pflag"
)

var keygenCmd = command{
	name:    "keygen",
	summary: "generate a gossip encryption key for the cluster",
	help: `Prints a new random key, base64-encoded, for serf's gossip encryption
(AES-GCM). Put the same key in every host's keyring file (encrypt_key in
wingman.toml); a host without it can neither join nor forge events.
Keep it secret: anyone with the key can speak for the cluster.`,
	nargs: [2]int{0, 0},
	bind: func(fs *pflag.FlagSet) func(context.Context, stdio, []string) error {
		size := fs.Int("bytes", 32, "key length: 16 (AES-128), 24 (AES-192) or 32 (AES-256)")
		choices(fs, "bytes", "16", "24", "32")
		return func(_ context.Context, s stdio, _ []string) error {
			switch *size {
			case 16, 24, 32:
			default:
				return usagef("--bytes %d: use 16, 24 or 32", *size)
			}
			key := make([]byte, *size)
			if _, err := rand.Read(key); err != nil {
				return fmt.Errorf("read random bytes: %w", err)
			}
			fmt.Fprintln(s.out, base64.StdEncoding.EncodeToString(key))
			return nil
		}
	},
}

var versionCmd = command{
	name:    "version",
	summary: "print the version of this tool",
	nargs:   [2]int{0, 0},
	bind: func(fs *pflag.FlagSet) func(context.Context, stdio, []string) error {
		asJSON := fs.Bool("json", false, "print JSON")
		return func(_ context.Context, s stdio, _ []string) error {
			if *asJSON {
				return writeJSON(s.out, map[string]string{"version": version, "go": runtime.Version(), "lun_format": "1"})
			}
			fmt.Fprintf(s.out, "wingman %s (%s, LUN format v1)\n", version, runtime.Version())
			return nil
		}
	},
}
