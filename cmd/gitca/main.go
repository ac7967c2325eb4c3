// Command gitca renders a PKI declared in a topology repo into a state repo of
// SOPS-encrypted Kubernetes manifests.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/gitca-dev/gitca/gitsync"
	"github.com/gitca-dev/gitca/secrets"
)

// exitError carries an exit code other than 1 (plan --detailed-exitcode).
type exitError struct{ code int }

func (e exitError) Error() string { return fmt.Sprintf("exit %d", e.code) }

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:])
	stop()
	os.Exit(code)
}

// run executes the CLI and returns the process exit code; errors go to
// stderr, scrubbed of anything that may be a secret (secrets.Scrub).
func run(ctx context.Context, args []string) int {
	root := newRootCmd()
	root.SetArgs(args)
	cmd, err := root.ExecuteContextC(ctx)
	var ee exitError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ee):
		return ee.code
	default:
		err = secrets.Scrub(err, knownSecrets(cmd)...)
		// With --log-format json every line on stderr is a JSON record, the
		// final error included, so a log pipeline never meets a stray line.
		if format, _ := root.PersistentFlags().GetString("log-format"); format == logJSON {
			slog.New(slog.NewJSONHandler(os.Stderr, nil)).Error("gitca failed", "error", err.Error())
			return 1
		}
		fmt.Fprintf(os.Stderr, "Error: %v\n", err)
		return 1
	}
}

// knownSecrets are the secret values this run was given, so that Scrub
// removes them even where no pattern would recognise them (a token): the
// age identities of SOPS_AGE_KEY and SOPS_AGE_KEY_FILE, the tokens of the
// environment variables and files the flags name, the SSH keys' files.
func knownSecrets(cmd *cobra.Command) []string {
	out := []string{os.Getenv(secrets.EnvAgeKey), os.Getenv(gitsync.DefaultTokenEnv)}
	files := []string{os.Getenv(secrets.EnvAgeKeyFile)}
	if cmd != nil {
		cmd.Flags().VisitAll(func(f *pflag.Flag) {
			switch v := f.Value.String(); {
			case v == "":
			case strings.HasSuffix(f.Name, "token-env"):
				out = append(out, os.Getenv(v))
			case strings.HasSuffix(f.Name, "token-file"), strings.HasSuffix(f.Name, "key-file"):
				files = append(files, v)
			}
		})
	}
	for _, p := range files {
		if p == "" {
			continue
		}
		if f, err := os.Open(p); err == nil {
			b, _ := io.ReadAll(io.LimitReader(f, 1<<20))
			f.Close()
			out = append(out, string(b))
		}
	}
	return out
}

var version = "dev"

func newRootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:   "gitca",
		Short: "PKI as code: plan, sign and seal a declared PKI into a GitOps state repo",
		Long: `gitca reads a topology (CAs, certificates, key pairs, kubeconfigs, trust bundles,
presets such as kubeadm) and a state tree, plans the difference, signs only what
changed and writes SOPS-encrypted Kubernetes manifests that Flux or Argo CD apply.`,
		SilenceUsage:  true,
		SilenceErrors: true,
		Version:       version,
	}
	root.PersistentFlags().String("log-format", logText, "format of log lines and errors on stderr: text|json")
	root.PersistentPreRunE = func(cmd *cobra.Command, _ []string) error {
		_, err := newLogger(cmd)
		return err
	}
	root.AddCommand(newPlanCmd(), newRenderCmd(), newExportCmd(), newKeygenCmd())
	root.AddCommand(newReconcileCmd())
	root.AddCommand(newGraphCmd())
	root.AddCommand(newStatusCmd())
	root.AddCommand(newRotateCmd(), newRevokeCmd(), newCSRCmd())
	return root
}
