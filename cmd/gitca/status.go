package main

import (
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"

	"github.com/gitca-dev/gitca/gitsync"
	"github.com/gitca-dev/gitca/metrics"
	"github.com/gitca-dev/gitca/plan"
	"github.com/gitca-dev/gitca/status"
	"github.com/gitca-dev/gitca/topology"
)

// exitWarn is the exit code of `status --warn-within` when something needs
// attention: not 1 (an error) and not 2 (plan's "changes"), so a CI step can
// tell the three apart.
const exitWarn = 3

func newStatusCmd() *cobra.Command {
	var (
		stateArg, topoDir, now, output, cacheDir, warnWithin string
		auth                                                 gitsync.AuthOptions
	)
	cmd := &cobra.Command{
		Use:   "status",
		Short: "List every certificate, CA and key pair with when it expires and when gitca renews it; needs no key",
		Long: `status reads the public material of a state tree (a directory, or a state
repository it clones like reconcile) and prints one row per certificate and
kubeconfig, then the CAs in their own table like 'kubeadm certs
check-expiration', then the key pairs: the cluster, when it expires, the time
left, the issuing CA, when gitca renews it and a status (ok, renewal-overdue,
expired; missing for what the topology declares but the state lacks).

RENEWS AT comes from the topology's renewBefore with --topology; without it,
from each record's stored validity and gitca's built-in renewBefore (30 days
for a CA, a third of the validity otherwise), marked with '*'.

--warn-within exits 3 when something expires within that window or is past
its renewal time (a reconciler should have renewed it), and 0 otherwise: for
a CI schedule. -o prometheus writes the certificate gauges of 'reconcile
--metrics-address' as a node-exporter textfile.`,
		Example: `  # What expires next?
  gitca status --state ./state

  # Exact renewal times, from the topology's renewBefore
  gitca status --state ./state --topology examples/kubeadm

  # Straight from the state repository, failing a CI job a month ahead
  gitca status --state git@github.com:org/pki-state.git#main --ssh-key-file id --ssh-known-hosts kh --warn-within 30d

  # For node-exporter's textfile collector
  gitca status --state ./state -o prometheus > /var/lib/node_exporter/gitca.prom.$$ && mv /var/lib/node_exporter/gitca.prom.$$ /var/lib/node_exporter/gitca.prom`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkOutput(output, "text", "json", "yaml", "prometheus"); err != nil {
				return err
			}
			at := time.Now().UTC()
			if now != "" {
				t, err := parseNow(now)
				if err != nil {
					return err
				}
				at = t
			}
			var window time.Duration
			if warnWithin != "" {
				d, err := topology.ParseDuration(warnWithin)
				if err != nil || d < 0 {
					return fmt.Errorf("--warn-within %q: want a duration such as 30d or 720h", warnWithin)
				}
				window = d
			}
			var t *topology.Topology
			if topoDir != "" {
				var err error
				if t, err = loadTopology(cmd.Context(), cmd.ErrOrStderr(), topoDir, "in "+topoDir); err != nil {
					return err
				}
			}
			dir, done, err := stateDir(cmd, stateArg, cacheDir, auth)
			if err != nil {
				return err
			}
			defer done()
			st, err := plan.ReadState(dir)
			if err != nil {
				return err
			}
			if len(st.Primary) == 0 && t == nil {
				return fmt.Errorf("--state %s holds no gitca record: run gitca render or reconcile first", stateArg)
			}
			r := status.New(st, t, at)
			if err := printStatus(cmd.OutOrStdout(), r, output); err != nil {
				return err
			}
			if warnWithin == "" {
				return nil
			}
			warns := r.Warnings(window)
			log, err := newLogger(cmd)
			if err != nil {
				return err
			}
			for _, w := range warns {
				if format, _ := cmd.Flags().GetString("log-format"); format == logJSON {
					log.Warn("needs attention", "object", w.ID, "cluster", w.Cluster, "why", w.Why)
					continue
				}
				fmt.Fprintf(cmd.ErrOrStderr(), "warning: %s: %s\n", w.ID, w.Why)
			}
			if len(warns) > 0 {
				return exitError{code: exitWarn}
			}
			return nil
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&stateArg, "state", "", "state directory, or state repository address as reconcile takes it (required)")
	fl.StringVar(&topoDir, "topology", "", "topology directory: renewal times from its renewBefore, and what it declares that the state lacks")
	fl.StringVar(&now, "now", "", "report as of this RFC3339 time")
	fl.StringVarP(&output, "output", "o", "text", "output format: text|json|yaml|prometheus")
	fl.StringVar(&warnWithin, "warn-within", "", "exit 3 when something expires within this window (e.g. 30d) or is past its renewal time")
	fl.StringVar(&cacheDir, "cache-dir", "", "where a state repository is cloned (default <user cache dir>/gitca)")
	fl.StringVar(&auth.SSHKeyFile, "ssh-key-file", "", "private key for an ssh state repository")
	fl.StringVar(&auth.SSHKnownHostsFile, "ssh-known-hosts", "", "known_hosts for an ssh state repository (required for ssh)")
	fl.StringVar(&auth.HTTPSTokenEnv, "https-token-env", gitsync.DefaultTokenEnv, "environment variable holding the token for an https state repository")
	fl.StringVar(&auth.HTTPSTokenFile, "https-token-file", "", "file holding the token for an https state repository")
	fl.StringVar(&auth.HTTPSUsername, "https-username", "git", "user name sent with the https token")
	_ = cmd.MarkFlagRequired("state")
	return cmd
}

func printStatus(w io.Writer, r *status.Report, output string) error {
	switch output {
	case "json":
		return r.WriteJSON(w)
	case "yaml":
		return r.WriteYAML(w)
	case "prometheus":
		return metrics.WriteTextfile(w, r)
	}
	return r.WriteText(w)
}

// stateDir is the directory to read: arg itself when it is a plain
// directory, else a clone of the repository it names, made with reconcile's
// code (gitsync) and kept in the cache for the next call.
func stateDir(cmd *cobra.Command, arg, cacheDir string, auth gitsync.AuthOptions) (string, func(), error) {
	if !gitsync.IsRemote(arg) {
		return arg, func() {}, nil
	}
	src, err := gitsync.ParseSource(arg)
	if err != nil {
		return "", nil, fmt.Errorf("--state: %w", err)
	}
	cacheDir, err = gitsync.CacheDir(cacheDir)
	if err != nil {
		return "", nil, err
	}
	repo, err := gitsync.Open(cmd.Context(), src, cacheDir, auth)
	if err != nil {
		return "", nil, fmt.Errorf("state %s: %w", src, err)
	}
	return repo.Dir(), func() { _ = repo.Unlock() }, nil
}
