package main

import (
	crand "crypto/rand"
	"encoding/binary"
	"fmt"
	"io"
	"log/slog"
	mrand "math/rand/v2"
	"time"

	"github.com/spf13/cobra"

	"github.com/gitca-dev/gitca/gitsync"
	"github.com/gitca-dev/gitca/metrics"
	"github.com/gitca-dev/gitca/reconcile"
	"github.com/gitca-dev/gitca/secrets"
)

// retryBase is the first wait after a rejected push. Racing reconcilers on
// one repository settle in a few rounds of this.
const retryBase = 250 * time.Millisecond

func newReconcileCmd() *cobra.Command {
	var f reconcileFlags
	cmd := &cobra.Command{
		Use:   "reconcile",
		Short: "Pull topology and state, plan, sign, commit and push one atomic commit (the GitOps loop)",
		Long: `reconcile clones or fetches the topology and the state repository into a cache,
plans, signs what must change, writes the sealed state tree and lands it as one
commit whose message is the plan, with a Gitca-Topology-Commit trailer naming
the topology revision. No change makes no commit.

Before committing it scans the whole tree for private keys in plain text and
refuses if it finds one. When the push is rejected because the state moved
(another reconciler won the race) it fetches, re-plans on top of the new state
and tries again, up to --max-retries times with jittered backoff. Any failure
resets the cache and leaves the remote as it was.

Repository addresses: /local/path, file:///abs/path, ssh://[user@]host[:port]/path,
[user@]host:path or https://host/path, each optionally followed by //subdir and
#branch (default main). Topology and state may be two branches or two
directories of one repository.

The age identity (SOPS_AGE_KEY_FILE or SOPS_AGE_KEY) opens existing keys. New
material is encrypted to the topology's Config recipients, else
SOPS_AGE_RECIPIENTS, else the identity's own recipient.`,
		Example: `  # One run, e.g. from a CronJob
  SOPS_AGE_KEY_FILE=/keys/age.key gitca reconcile \
    --topology git@github.com:org/pki-topology.git#main \
    --state git@github.com:org/pki-state.git#main \
    --ssh-key-file /ssh/id_ed25519 --ssh-known-hosts /ssh/known_hosts

  # Long-running, every hour, stops cleanly on SIGTERM; Prometheus metrics
  # and probes on :9090 (/metrics, /healthz, /readyz), JSON logs
  gitca reconcile --topology ... --state ... --interval 1h --metrics-address :9090 --log-format json

  # Propose instead of apply: push to a branch and write the plan for a pull request
  gitca reconcile --topology ... --state ... --push-branch gitca/renewals --plan-file plan.md

  # Topology and state in one repository
  gitca reconcile --topology ./pki.git//topology#main --state ./pki.git//state#main`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			log, err := newLogger(cmd)
			if err != nil {
				return err
			}
			var loop *metrics.Loop
			if f.metricsAddress != "" {
				loop = metrics.NewLoop(f.interval, nil)
			}
			r, err := f.reconciler(cmd.OutOrStdout(), cmd.ErrOrStderr(), log, loop)
			if err != nil {
				return err
			}
			if f.interval == 0 {
				_, err = r.Once(cmd.Context())
				return err
			}
			if loop != nil {
				stop, err := metrics.Serve(cmd.Context(), f.metricsAddress, loop.Handler(), log)
				if err != nil {
					return err
				}
				defer stop()
			}
			return r.Loop(cmd.Context(), f.interval)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.topology, "topology", "", "topology repository address (required)")
	fl.StringVar(&f.state, "state", "", "state repository address (required)")
	fl.StringVar(&f.cacheDir, "cache-dir", "", "where clones are kept between runs (default <user cache dir>/gitca)")
	fl.StringVar(&f.now, "now", "", "pretend the run happens at this RFC3339 time")
	fl.StringVar(&f.authorName, "author-name", "gitca", "author and committer name of state commits")
	fl.StringVar(&f.authorEmail, "author-email", "gitca@localhost", "author and committer email of state commits")
	fl.StringVar(&f.pushBranch, "push-branch", "", "push the result to this branch (replacing it) instead of the state branch, for a pull request")
	fl.StringVar(&f.planFile, "plan-file", "", "write the plan as markdown to this file (for a pull-request description)")
	fl.DurationVar(&f.interval, "interval", 0, "run forever, this long between runs (0: run once); SIGTERM/SIGINT stop it cleanly")
	fl.StringVar(&f.metricsAddress, "metrics-address", "", "with --interval, serve /metrics (Prometheus), /healthz and /readyz on this address, e.g. :9090 (default: off)")
	fl.BoolVar(&f.verify, "verify", false, "open every record to check its SOPS MAC and that its key matches its certificate; without it only records changed outside gitca are checked")
	fl.IntVar(&f.maxRetries, "max-retries", 5, "attempts when the push is rejected because the state moved")
	fl.BoolVar(&f.allowDestroy, "allow-destroy", false, "let the plan delete CAs or more than half of the objects (refused otherwise; or list them in the Config's spec.allowDelete)")
	fl.StringVar(&f.auth.SSHKeyFile, "ssh-key-file", "", "private key for ssh remotes (both repositories unless --topology-/--state-ssh-key-file say otherwise)")
	fl.StringVar(&f.auth.SSHKnownHostsFile, "ssh-known-hosts", "", "known_hosts for ssh remotes (required for ssh: host keys are always verified)")
	fl.StringVar(&f.auth.HTTPSTokenEnv, "https-token-env", gitsync.DefaultTokenEnv, "environment variable holding the token for https remotes")
	fl.StringVar(&f.auth.HTTPSTokenFile, "https-token-file", "", "file holding the token for https remotes (wins over --https-token-env)")
	fl.StringVar(&f.auth.HTTPSUsername, "https-username", "git", "user name sent with the https token")
	// GitHub deploy keys are per repository: each may have its own credentials.
	for _, repo := range []struct {
		name string
		o    *gitsync.AuthOptions
	}{{"topology", &f.topoAuth}, {"state", &f.stateAuth}} {
		fl.StringVar(&repo.o.SSHKeyFile, repo.name+"-ssh-key-file", "", "private key for the "+repo.name+" repository (wins over --ssh-key-file)")
		fl.StringVar(&repo.o.HTTPSTokenEnv, repo.name+"-https-token-env", "", "environment variable holding the "+repo.name+" repository's https token (wins over --https-token-env)")
		fl.StringVar(&repo.o.HTTPSTokenFile, repo.name+"-https-token-file", "", "file holding the "+repo.name+" repository's https token (wins over --https-token-file)")
	}
	_ = cmd.MarkFlagRequired("topology")
	_ = cmd.MarkFlagRequired("state")
	cmd.PreRunE = func(*cobra.Command, []string) error {
		if f.interval < 0 {
			return fmt.Errorf("--interval %s: must not be negative", f.interval)
		}
		if f.metricsAddress != "" && f.interval == 0 {
			return fmt.Errorf("--metrics-address needs --interval: a single run exits before anything could scrape it (use gitca status -o prometheus for a textfile)")
		}
		return nil
	}
	return cmd
}

type reconcileFlags struct {
	topology, state, cacheDir, now string
	authorName, authorEmail        string
	pushBranch, planFile           string
	metricsAddress                 string
	interval                       time.Duration
	maxRetries                     int
	verify, allowDestroy           bool
	auth                           gitsync.AuthOptions
	// topoAuth and stateAuth hold per-repository overrides of auth.
	topoAuth, stateAuth gitsync.AuthOptions
}

// repoAuth is the shared credentials with one repository's overrides.
func repoAuth(shared, own gitsync.AuthOptions) gitsync.AuthOptions {
	if own.SSHKeyFile != "" {
		shared.SSHKeyFile = own.SSHKeyFile
	}
	if own.HTTPSTokenFile != "" {
		shared.HTTPSTokenFile = own.HTTPSTokenFile
	}
	if own.HTTPSTokenEnv != "" {
		shared.HTTPSTokenEnv, shared.HTTPSTokenFile = own.HTTPSTokenEnv, own.HTTPSTokenFile
	}
	return shared
}

// reconciler turns flags into reconcile.Options: the only place the real
// clock, randomness and environment are read.
func (f *reconcileFlags) reconciler(out, stderr io.Writer, log *slog.Logger, loop *metrics.Loop) (*reconcile.Reconciler, error) {
	topo, err := gitsync.ParseSource(f.topology)
	if err != nil {
		return nil, fmt.Errorf("--topology: %w", err)
	}
	state, err := gitsync.ParseSource(f.state)
	if err != nil {
		return nil, fmt.Errorf("--state: %w", err)
	}
	cache, err := gitsync.CacheDir(f.cacheDir)
	if err != nil {
		return nil, err
	}
	clock := func() time.Time { return time.Now().UTC() }
	if f.now != "" {
		t, err := parseNow(f.now)
		if err != nil {
			return nil, err
		}
		clock = func() time.Time { return t }
	}
	// The reconciler signs with existing CA keys on every renewal, so a
	// missing identity is a configuration error now, not a surprise in a year.
	ids, err := secrets.LoadIdentities()
	if err != nil {
		return nil, fmt.Errorf("reconcile needs the reconciler's age identity (set SOPS_AGE_KEY_FILE): %w", err)
	}
	recipients, err := secrets.DefaultRecipients(&ids)
	if err != nil {
		return nil, err
	}
	var seed [16]byte
	if _, err := crand.Read(seed[:]); err != nil {
		return nil, err
	}
	return reconcile.New(reconcile.Options{
		Topology:     topo,
		State:        state,
		CacheDir:     cache,
		TopologyAuth: repoAuth(f.auth, f.topoAuth),
		StateAuth:    repoAuth(f.auth, f.stateAuth),
		AuthorName:   f.authorName,
		AuthorEmail:  f.authorEmail,
		PushBranch:   f.pushBranch,
		PlanFile:     f.planFile,
		MaxRetries:   f.maxRetries,
		RetryBase:    retryBase,
		Verify:       f.verify,
		AllowDestroy: f.allowDestroy,
		Identities:   &ids,
		Recipients:   recipients,
		Clock:        clock,
		Wall:         time.Now,
		Rand:         crand.Reader,
		Jitter:       mrand.New(mrand.NewPCG(binary.LittleEndian.Uint64(seed[:8]), binary.LittleEndian.Uint64(seed[8:]))),
		Logger:       log,
		Out:          out,
		OnRun:        onRun(loop),
		Progress:     progressLine(stderr),
	})
}

func onRun(loop *metrics.Loop) func(reconcile.Run) {
	if loop == nil {
		return nil
	}
	return loop.Observe
}
