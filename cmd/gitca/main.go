// Command gitca renders a PKI declared in a topology repo into a state repo of
// SOPS-encrypted Kubernetes manifests.
package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"
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

// run executes the CLI and returns the process exit code; errors go to stderr.
func run(ctx context.Context, args []string) int {
	root := newRootCmd()
	root.SetArgs(args)
	err := root.ExecuteContext(ctx)
	var ee exitError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ee):
		return ee.code
	default:
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
	root.AddCommand(newRotateCmd(), newRevokeCmd())
	return root
}
