package main

import (
	"bytes"
	"context"
	crand "crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/gitca-dev/gitca/gitsync"
	"github.com/gitca-dev/gitca/render"
	"github.com/gitca-dev/gitca/secrets"
	"github.com/gitca-dev/gitca/topology"
)

const (
	// topologyTrailer links a state commit to the topology revision it was
	// rendered from, so `git log` of the state answers "which change made this".
	topologyTrailer = "Gitca-Topology-Commit"
	// retryBase is the first wait after a rejected push. Racing reconcilers
	// on one repository settle in a few rounds of this.
	retryBase = 250 * time.Millisecond
	// pushTimeout bounds a push that a shutdown signal lets finish: killing
	// git-receive-pack half-way is what we want to avoid, waiting forever too.
	pushTimeout = 2 * time.Minute
)

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

  # Long-running, every hour, stops cleanly on SIGTERM
  gitca reconcile --topology ... --state ... --interval 1h

  # Propose instead of apply: push to a branch and write the plan for a pull request
  gitca reconcile --topology ... --state ... --push-branch gitca/renewals --plan-file plan.md

  # Topology and state in one repository
  gitca reconcile --topology ./pki.git//topology#main --state ./pki.git//state#main`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			r, err := f.reconciler(cmd.OutOrStdout(), cmd.ErrOrStderr())
			if err != nil {
				return err
			}
			if f.interval > 0 {
				return r.loop(cmd.Context(), f.interval)
			}
			_, err = r.runOnce(cmd.Context())
			return err
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
	fl.BoolVar(&f.verify, "verify", false, "open every record to check its SOPS MAC and that its key matches its certificate; without it only records changed outside gitca are checked")
	fl.IntVar(&f.maxRetries, "max-retries", 5, "attempts when the push is rejected because the state moved")
	fl.StringVar(&f.auth.SSHKeyFile, "ssh-key-file", "", "private key for ssh remotes")
	fl.StringVar(&f.auth.SSHKnownHostsFile, "ssh-known-hosts", "", "known_hosts for ssh remotes (required for ssh: host keys are always verified)")
	fl.StringVar(&f.auth.HTTPSTokenEnv, "https-token-env", gitsync.DefaultTokenEnv, "environment variable holding the token for https remotes")
	fl.StringVar(&f.auth.HTTPSTokenFile, "https-token-file", "", "file holding the token for https remotes (wins over --https-token-env)")
	fl.StringVar(&f.auth.HTTPSUsername, "https-username", "git", "user name sent with the https token")
	_ = cmd.MarkFlagRequired("topology")
	_ = cmd.MarkFlagRequired("state")
	cmd.PreRunE = func(*cobra.Command, []string) error {
		if f.maxRetries < 1 {
			return fmt.Errorf("--max-retries %d: need at least 1", f.maxRetries)
		}
		if f.interval < 0 {
			return fmt.Errorf("--interval %s: must not be negative", f.interval)
		}
		return nil
	}
	return cmd
}

type reconcileFlags struct {
	topology, state, cacheDir, now string
	authorName, authorEmail        string
	pushBranch, planFile           string
	interval                       time.Duration
	maxRetries                     int
	verify                         bool
	auth                           gitsync.AuthOptions
}

// reconciler is one configured loop. Clock, randomness and output are
// fields so tests drive it deterministically.
type reconciler struct {
	topo, state gitsync.Source
	cacheDir    string
	auth        gitsync.AuthOptions
	clock       func() time.Time
	authorName  string
	authorEmail string
	pushBranch  string
	planFile    string
	maxRetries  int
	verify      bool
	retryBase   time.Duration
	ids         *secrets.Identities
	recipients  []string // SOPS_AGE_RECIPIENTS, or the identity's own
	rand        io.Reader
	jitter      *mrand.Rand
	out, log    io.Writer
}

func (f *reconcileFlags) reconciler(out, log io.Writer) (*reconciler, error) {
	topo, err := gitsync.ParseSource(f.topology)
	if err != nil {
		return nil, fmt.Errorf("--topology: %w", err)
	}
	state, err := gitsync.ParseSource(f.state)
	if err != nil {
		return nil, fmt.Errorf("--state: %w", err)
	}
	if topo == state {
		return nil, fmt.Errorf("--topology and --state are both %s: give them different branches (#branch) or directories (//dir)", topo)
	}
	if f.pushBranch != "" && f.pushBranch == state.Branch {
		return nil, fmt.Errorf("--push-branch %s is the state branch itself: leave it out to push there", f.pushBranch)
	}
	cache := f.cacheDir
	if cache == "" {
		base, err := os.UserCacheDir()
		if err != nil {
			return nil, fmt.Errorf("no --cache-dir and no user cache directory: %w", err)
		}
		cache = filepath.Join(base, "gitca")
	}
	clock := func() time.Time { return time.Now().UTC() }
	if f.now != "" {
		t, err := parseNow(f.now)
		if err != nil {
			return nil, err
		}
		clock = func() time.Time { return t }
	}
	if f.planFile != "" {
		// Checked now: the plan is written after the push, and a push
		// followed by "cannot write the plan" would be a misleading failure.
		if fi, err := os.Stat(filepath.Dir(f.planFile)); err != nil || !fi.IsDir() {
			return nil, fmt.Errorf("--plan-file %s: its directory does not exist", f.planFile)
		}
	}
	if f.authorName == "" || f.authorEmail == "" {
		return nil, errors.New("--author-name and --author-email must not be empty")
	}
	// The reconciler signs with existing CA keys on every renewal, so a
	// missing identity is a configuration error now, not a surprise in a year.
	ids, err := secrets.LoadIdentities()
	if err != nil {
		return nil, fmt.Errorf("reconcile needs the reconciler's age identity (set SOPS_AGE_KEY_FILE): %w", err)
	}
	recipients := secrets.RecipientsFromEnv()
	if len(recipients) == 0 {
		recipients = ids.Recipients()
	}
	var seed [16]byte
	if _, err := crand.Read(seed[:]); err != nil {
		return nil, err
	}
	return &reconciler{
		topo:        topo,
		state:       state,
		cacheDir:    cache,
		auth:        f.auth,
		clock:       clock,
		authorName:  f.authorName,
		authorEmail: f.authorEmail,
		pushBranch:  f.pushBranch,
		planFile:    f.planFile,
		maxRetries:  f.maxRetries,
		verify:      f.verify,
		retryBase:   retryBase,
		ids:         &ids,
		recipients:  recipients,
		rand:        crand.Reader,
		jitter:      mrand.New(mrand.NewPCG(binary.LittleEndian.Uint64(seed[:8]), binary.LittleEndian.Uint64(seed[8:]))),
		out:         out,
		log:         log,
	}, nil
}

// loop runs until ctx is cancelled. A failed run is reported and retried at
// the next tick rather than ending the loop: the next run starts from a reset
// cache and converges. Shutdown is not an error.
func (r *reconciler) loop(ctx context.Context, interval time.Duration) error {
	for {
		if _, err := r.runOnce(ctx); err != nil {
			if ctx.Err() != nil {
				fmt.Fprintf(r.log, "gitca: run interrupted, shutting down: %v\n", err)
				return nil
			}
			fmt.Fprintf(r.log, "gitca: run failed, retrying in %s: %v\n", interval, err)
		}
		t := time.NewTimer(interval)
		select {
		case <-ctx.Done():
			t.Stop()
			fmt.Fprintln(r.log, "gitca: shutting down")
			return nil
		case <-t.C:
		}
	}
}

// runResult is what one run did.
type runResult struct {
	Plan     *render.Plan
	Commit   string // the pushed commit, "" when nothing changed
	Topology string // the topology commit rendered
	Attempts int

	pushStarted bool
}

// runOnce is one reconcile: it lands at most one commit, and on any failure
// leaves the remote untouched and the cache reset to it.
func (r *reconciler) runOnce(ctx context.Context) (*runResult, error) {
	// The state is fetched before the topology, and again both on a retry:
	// every state commit we build on was rendered from a topology revision
	// its author fetched before pushing, so ours, fetched after, is at least
	// as new. The other order lets a slow run render an older topology on
	// top of a newer one's state and delete what the newer one added.
	state, err := gitsync.Open(ctx, r.state, r.cacheDir, r.auth)
	if err != nil {
		return nil, fmt.Errorf("state %s: %w", r.state, err)
	}
	defer state.Unlock()
	topo, err := gitsync.Open(ctx, r.topo, r.cacheDir, r.auth)
	if err != nil {
		return nil, fmt.Errorf("topology %s: %w", r.topo, err)
	}
	defer topo.Unlock()

	now := r.clock()
	res := &runResult{}
	err = gitsync.WithRetry(ctx, r.maxRetries, r.retryBase, r.jitter, func(attempt int) error {
		res.Attempts = attempt + 1
		if attempt > 0 {
			fmt.Fprintf(r.log, "gitca: the state moved on the remote; re-planning on top of it (attempt %d of %d)\n", attempt+1, r.maxRetries)
			if err := state.Refresh(ctx); err != nil {
				return err
			}
			if err := topo.Refresh(ctx); err != nil {
				return fmt.Errorf("topology %s: %w", r.topo, err)
			}
		}
		t, head, err := r.loadTopology(topo)
		if err != nil {
			return err
		}
		res.Topology = head
		return r.attempt(ctx, t, head, state, now, res)
	})
	if err != nil {
		// Reset must happen even when ctx was cancelled: it is what makes
		// the cache reusable by the next run.
		if rerr := state.Reset(context.Background()); rerr != nil {
			err = errors.Join(err, fmt.Errorf("resetting the state cache: %w", rerr))
		}
		outcome := "the remote is unchanged"
		if res.pushStarted && !errors.Is(err, gitsync.ErrRejected) && !errors.Is(err, gitsync.ErrAuth) {
			// A push cut off after git-receive-pack got the pack may have
			// moved the ref; either way it is one whole commit or none.
			outcome = "the push did not complete: the remote holds the previous state or this run's whole commit, and the next run converges"
		}
		return nil, fmt.Errorf("reconcile %s: %w (%s)", r.state, err, outcome)
	}
	if r.planFile != "" {
		if err := writePlanFile(r.planFile, res.Plan); err != nil {
			return nil, err
		}
	}
	if res.Commit == "" {
		fmt.Fprintf(r.out, "no changes: the state matches the topology at %s\n", res.Topology)
		return res, nil
	}
	where := r.state.String()
	if r.pushBranch != "" {
		where = fmt.Sprintf("%s branch %s", r.state.URL, r.pushBranch)
	}
	fmt.Fprintf(r.out, "committed %s to %s: %s\n", res.Commit, where, res.Plan.Summary())
	return res, nil
}

func (r *reconciler) loadTopology(topo *gitsync.Repo) (*topology.Topology, string, error) {
	head, ok := topo.Head()
	if !ok {
		return nil, "", fmt.Errorf("topology %s: the branch has no commit", r.topo)
	}
	t, err := loadTopology(topo.Dir(), fmt.Sprintf("at %s (%s)", r.topo, head))
	if err != nil {
		return nil, "", err
	}
	return t, head.String(), nil
}

// attempt plans on the state as it is in the cache, writes, checks, commits
// and pushes. Errors wrapping gitsync.ErrRejected make WithRetry go again.
func (r *reconciler) attempt(ctx context.Context, t *topology.Topology, topoHead string, state *gitsync.Repo, now time.Time, res *runResult) error {
	res.Plan, res.Commit, res.pushStarted = nil, "", false
	st, err := secrets.ReadState(state.Dir())
	if err != nil {
		return err
	}
	opt := render.Options{Now: now, Recipients: render.ResolveRecipients(t, r.recipients), Verify: r.verify}
	out, err := render.Render(ctx, t, st, opt, r.ids, r.rand)
	if err != nil {
		return err
	}
	res.Plan = out.Plan
	if err := out.Plan.WriteText(r.out, false); err != nil {
		return err
	}
	if out.Tree.Empty() {
		return nil
	}
	if err := render.Write(state.Dir(), out.Tree); err != nil {
		return fmt.Errorf("writing the state tree: %w", err)
	}
	if err := r.checkConverged(t, state, opt); err != nil {
		return err
	}
	// The whole worktree, not only what this run wrote: a hand-committed key
	// or a renderer bug must not reach the remote through us either.
	findings, err := secrets.ScanPlaintextKeys(state.Root())
	if err != nil {
		return err
	}
	if len(findings) > 0 {
		lines := make([]string, len(findings))
		for i, f := range findings {
			lines[i] = "  " + f.String()
		}
		return fmt.Errorf("refusing to commit: %d private key(s) would land unencrypted:\n%s", len(findings), strings.Join(lines, "\n"))
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	sig := gitsync.Signature{Name: r.authorName, Email: r.authorEmail, When: now}
	h, committed, err := state.Commit(commitMessage(out.Plan, out.Tree), []gitsync.Trailer{{Key: topologyTrailer, Value: topoHead}}, sig)
	if err != nil {
		return err
	}
	if !committed {
		return nil
	}
	// From here on a shutdown signal waits for the push: cutting
	// git-receive-pack off half-way gains nothing, the ref update is atomic
	// either way, and a finished push is one less run to redo.
	pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), pushTimeout)
	defer cancel()
	res.pushStarted = true
	if r.pushBranch != "" {
		if err := state.ReplaceBranch(pctx, r.pushBranch); err != nil {
			return err
		}
		// The commit lives on the proposal branch only; keep the cache at
		// the state branch's tip.
		if err := state.Reset(pctx); err != nil {
			return err
		}
	} else if err := state.Push(pctx, ""); err != nil {
		return err
	}
	res.Commit = h.String()
	return nil
}

// checkConverged reads back the tree just written, public material only, and
// plans again: anything but "keep everything" means the tree is not what the
// renderer meant to write (a damaged file, a renderer bug), and committing it
// would make every following run commit again.
func (r *reconciler) checkConverged(t *topology.Topology, state *gitsync.Repo, opt render.Options) error {
	st, err := secrets.ReadState(state.Dir())
	if err != nil {
		return fmt.Errorf("reading back the rendered tree: %w", err)
	}
	p, err := render.NewPlan(t, st, opt)
	if err != nil {
		return fmt.Errorf("re-planning the rendered tree: %w", err)
	}
	if !p.Changes() {
		return nil
	}
	var left []string
	for _, a := range p.Actions {
		if a.Action != render.ActionKeep {
			left = append(left, fmt.Sprintf("  %s %s", a.Action, a.ID))
		}
	}
	return fmt.Errorf("refusing to commit: the rendered tree does not converge, a second plan still wants:\n%s", strings.Join(left, "\n"))
}

// commitMessage is "gitca: <counts>", then one line per changed object with
// its reasons, so `git log` of the state repository reads as an audit log.
func commitMessage(p *render.Plan, tree *render.Tree) string {
	var b strings.Builder
	fmt.Fprintf(&b, "gitca: %s\n", p.Summary())
	var lines []string
	for _, a := range p.Actions {
		if a.Action == render.ActionKeep {
			continue
		}
		reasons := make([]string, len(a.Reasons))
		for i, rs := range a.Reasons {
			reasons[i] = rs.String()
		}
		line := fmt.Sprintf("%s %s", a.Action, a.ID)
		if len(reasons) > 0 {
			line += ": " + strings.Join(reasons, "; ")
		}
		lines = append(lines, line)
	}
	if len(lines) == 0 {
		// Every object is kept but derived files differ (a hand edit, a
		// deleted kustomization): name the files instead.
		for _, p := range tree.Paths() {
			lines = append(lines, "repair "+p)
		}
	}
	if len(lines) > 0 {
		b.WriteString("\n")
		for _, l := range lines {
			// A newline in a reason must not start a line that git would
			// take for a trailer.
			b.WriteString(strings.ReplaceAll(l, "\n", " "))
			b.WriteString("\n")
		}
	}
	return b.String()
}

// writePlanFile writes the markdown plan atomically so a CI step reading it
// never sees half a file.
func writePlanFile(path string, p *render.Plan) error {
	var b bytes.Buffer
	if err := p.WriteMarkdown(&b); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".plan-*")
	if err != nil {
		return fmt.Errorf("--plan-file: %w", err)
	}
	if _, err := tmp.Write(b.Bytes()); err != nil {
		tmp.Close()
		os.Remove(tmp.Name())
		return fmt.Errorf("--plan-file: %w", err)
	}
	if err := tmp.Close(); err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("--plan-file: %w", err)
	}
	if err := os.Chmod(tmp.Name(), 0o644); err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("--plan-file: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("--plan-file: %w", err)
	}
	return nil
}
