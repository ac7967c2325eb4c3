// Package reconcile is the GitOps loop: pull the topology and the state, plan,
// render, and land one commit (or propose it on a branch), once or on an
// interval. Clock, randomness and logger are injected; cmd/gitca only turns
// flags into Options.
package reconcile

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	mrand "math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/gitca-dev/gitca/emit"
	"github.com/gitca-dev/gitca/gitsync"
	"github.com/gitca-dev/gitca/plan"
	"github.com/gitca-dev/gitca/render"
	"github.com/gitca-dev/gitca/secrets"
	"github.com/gitca-dev/gitca/state"
	"github.com/gitca-dev/gitca/status"
	"github.com/gitca-dev/gitca/topology"
)

// Trailers of every state commit gitca makes.
const (
	// TopologyTrailer links a state commit to the topology revision it was
	// rendered from, so `git log` of the state answers "which change made this".
	TopologyTrailer = "Gitca-Topology-Commit"
	// StateBaseTrailer names the state commit a proposal was built on.
	StateBaseTrailer = "Gitca-State-Base"
	// PlanTrailer is a digest of a proposal's plan: re-running a proposal
	// for the same inputs and the same plan leaves its branch as it is.
	PlanTrailer = "Gitca-Plan-Digest"
)

// Options configure a Reconciler.
type Options struct {
	Topology, State gitsync.Source
	CacheDir        string
	// TopologyAuth and StateAuth are the credentials of each repository:
	// deploy keys are per repository.
	TopologyAuth, StateAuth gitsync.AuthOptions

	AuthorName, AuthorEmail string
	// PushBranch proposes the result on this branch (for a pull request)
	// instead of pushing to the state branch.
	PushBranch string
	// PlanFile receives the plan as markdown after each run, for a pull request.
	PlanFile string
	// MaxRetries bounds the attempts when the push is rejected because the
	// state moved; RetryBase is the first wait.
	MaxRetries int
	RetryBase  time.Duration
	Verify     bool
	// AllowDestroy lifts the destruction guard (plan.Options.AllowDestroy).
	AllowDestroy bool

	// Identities open existing keys; Recipients are used when the topology's
	// Config names none.
	Identities *secrets.Identities
	Recipients []string

	Clock func() time.Time // the run's time (--now freezes it)
	// Wall measures how long runs take: a frozen Clock cannot.
	Wall   func() time.Time
	Rand   io.Reader   // key generation; nil: crypto/rand
	Jitter *mrand.Rand // retry backoff jitter
	Logger *slog.Logger
	Out    io.Writer // the plan, as text, for people watching the run
	// OnRun, when set, is called after every run with what it did (metrics);
	// a successful run then also reads back the expiry status of the state.
	OnRun func(Run)
	// Progress, when set, is called as signing and sealing advance (a
	// terminal's progress line).
	Progress func(done, total int)
}

// Run is one finished run, as OnRun sees it.
type Run struct {
	ID         string
	Start, End time.Time // by Clock
	Duration   time.Duration
	Err        error // nil when the run succeeded
	Result     *Result
	Plan       *plan.Plan
	// Status is the expiry status of the state branch after a successful run.
	Status *status.Report
}

// Reconciler is one configured loop.
type Reconciler struct{ opt Options }

// New checks options and fills defaults.
func New(opt Options) (*Reconciler, error) {
	if opt.Topology == opt.State {
		return nil, fmt.Errorf("--topology and --state are both %s: give them different branches (#branch) or directories (//dir)", opt.Topology)
	}
	if opt.PushBranch != "" && opt.PushBranch == opt.State.Branch {
		return nil, fmt.Errorf("--push-branch %s is the state branch itself: leave it out to push there", opt.PushBranch)
	}
	if opt.AuthorName == "" || opt.AuthorEmail == "" {
		return nil, errors.New("--author-name and --author-email must not be empty")
	}
	if opt.MaxRetries < 1 {
		return nil, fmt.Errorf("--max-retries %d: need at least 1", opt.MaxRetries)
	}
	if opt.PlanFile != "" {
		// Checked now: the plan is written after the push, and a push
		// followed by "cannot write the plan" would be a misleading failure.
		if fi, err := os.Stat(filepath.Dir(opt.PlanFile)); err != nil || !fi.IsDir() {
			return nil, fmt.Errorf("--plan-file %s: its directory does not exist", opt.PlanFile)
		}
	}
	if opt.Identities == nil {
		return nil, errors.New("reconcile needs the reconciler's age identity (set SOPS_AGE_KEY_FILE)")
	}
	if opt.Clock == nil || opt.Wall == nil || opt.Jitter == nil {
		return nil, errors.New("reconcile: Clock, Wall and Jitter are required")
	}
	if opt.Logger == nil {
		opt.Logger = slog.New(slog.DiscardHandler)
	}
	if opt.Out == nil {
		opt.Out = io.Discard
	}
	return &Reconciler{opt: opt}, nil
}

// Loop runs until ctx is cancelled. A failed run is reported and retried at
// the next tick rather than ending the loop: the next run starts from a reset
// cache and converges. Shutdown is not an error.
func (r *Reconciler) Loop(ctx context.Context, interval time.Duration) error {
	for {
		if _, err := r.Once(ctx); err != nil {
			if ctx.Err() != nil {
				r.opt.Logger.Info("run interrupted, shutting down", "error", err)
				return nil
			}
			// Once logged the error with its run id and reason.
			r.opt.Logger.Info("retrying at the next interval", "interval", interval.String())
		}
		t := time.NewTimer(interval)
		select {
		case <-ctx.Done():
			t.Stop()
			r.opt.Logger.Info("shutting down")
			return nil
		case <-t.C:
		}
	}
}

// Result is what one run did.
type Result struct {
	Plan     *plan.Plan
	Commit   string // the pushed commit, "" when nothing was pushed
	Topology string // the topology commit rendered
	// State is the state branch's commit after the run: the pushed one, or
	// the one the run found up to date (the base of a proposal).
	State    string
	Attempts int
	// UpToDate is set when a proposal branch already held this run's proposal.
	UpToDate bool

	pushStarted bool
	topology    *topology.Topology
	// tree is the state branch as the remote holds it after the run, as
	// already read by the run (what it planned on, or what it read back
	// before committing): the certificate gauges need no third read.
	tree   *state.State
	status *status.Report
}

// Once is one reconcile: it lands at most one commit, and on any failure
// leaves the remote untouched and the cache reset to it. Its log lines carry
// a run id, and name the topology and state commits it worked from.
func (r *Reconciler) Once(ctx context.Context) (*Result, error) {
	id := fmt.Sprintf("%016x", r.opt.Jitter.Uint64())
	run := &Reconciler{opt: r.opt}
	run.opt.Logger = r.opt.Logger.With("run", id)
	start := r.opt.Clock()
	wall := r.opt.Wall()
	run.opt.Logger.Info("run started", "topology", r.opt.Topology.String(), "state", r.opt.State.String())
	res, err := run.once(ctx)
	elapsed := r.opt.Wall().Sub(wall)
	if err != nil {
		run.opt.Logger.Error("run failed", "reason", ErrorReason(err), "duration", elapsed.Round(time.Millisecond).String(), "error", err)
	} else {
		attrs := []any{"topologyCommit", res.Topology, "stateCommit", res.State, "duration", elapsed.Round(time.Millisecond).String(), "summary", res.Plan.Summary()}
		if res.Commit != "" {
			attrs = append(attrs, "pushed", res.Commit)
		}
		run.opt.Logger.Info("run finished", attrs...)
	}
	if r.opt.OnRun != nil {
		rr := Run{ID: id, Start: start, End: r.opt.Clock(), Duration: elapsed, Err: err, Result: res}
		if res != nil {
			rr.Plan, rr.Status = res.Plan, res.status
		}
		r.opt.OnRun(rr)
	}
	return res, err
}

func (r *Reconciler) once(ctx context.Context) (*Result, error) {
	o := r.opt
	// The state is fetched before the topology, and again both on a retry:
	// every state commit we build on was rendered from a topology revision
	// its author fetched before pushing, so ours, fetched after, is at least
	// as new. The other order lets a slow run render an older topology on
	// top of a newer one's state and delete what the newer one added.
	st, err := gitsync.Open(ctx, o.State, o.CacheDir, o.StateAuth)
	if err != nil {
		return nil, stageError{ReasonStateFetch, fmt.Errorf("state %s: %w", o.State, err)}
	}
	defer st.Unlock()
	topo, err := gitsync.Open(ctx, o.Topology, o.CacheDir, o.TopologyAuth)
	if err != nil {
		return nil, stageError{ReasonTopologyFetch, fmt.Errorf("topology %s: %w", o.Topology, err)}
	}
	defer topo.Unlock()

	now := o.Clock().UTC()
	res := &Result{}
	err = gitsync.WithRetry(ctx, o.MaxRetries, o.RetryBase, o.Jitter, func(attempt int) error {
		res.Attempts = attempt + 1
		if attempt > 0 {
			o.Logger.Info("the state moved on the remote; re-planning on top of it", "attempt", attempt+1, "of", o.MaxRetries)
			if err := st.Refresh(ctx); err != nil {
				return stageError{ReasonStateFetch, err}
			}
			if err := topo.Refresh(ctx); err != nil {
				return stageError{ReasonTopologyFetch, fmt.Errorf("topology %s: %w", o.Topology, err)}
			}
		}
		t, head, err := r.loadTopology(ctx, topo)
		if err != nil {
			return stageError{ReasonTopology, err}
		}
		res.Topology, res.topology = head, t
		return r.attempt(ctx, t, head, st, now, res)
	})
	if err != nil {
		// Reset must happen even when ctx was cancelled: it is what makes
		// the cache reusable by the next run.
		if rerr := st.Reset(context.Background()); rerr != nil {
			err = errors.Join(err, fmt.Errorf("resetting the state cache: %w", rerr))
		}
		outcome := "the remote is unchanged"
		if res.pushStarted && !errors.Is(err, gitsync.ErrRejected) && !errors.Is(err, gitsync.ErrAuth) {
			// A push cut off after git-receive-pack got the pack may have
			// moved the ref; either way it is one whole commit or none.
			outcome = "the push did not complete: the remote holds the previous state or this run's whole commit, and the next run converges"
		}
		return nil, fmt.Errorf("reconcile %s: %w (%s)", o.State, err, outcome)
	}
	if o.PlanFile != "" {
		if err := writePlanFile(o.PlanFile, res.Plan); err != nil {
			return nil, stageError{ReasonPlanFile, err}
		}
	}
	res.State = res.Commit
	if h, ok := st.Head(); ok && (res.State == "" || o.PushBranch != "") {
		res.State = h.String()
	}
	if o.OnRun != nil {
		// The state branch as it now is on the remote: what the certificate
		// gauges should show. Public material only.
		if res.tree != nil {
			res.status = status.New(res.tree, res.topology, now)
		}
	}
	switch {
	case res.UpToDate:
		fmt.Fprintf(o.Out, "proposal %s branch %s is up to date: topology %s and state unchanged, same plan\n", o.State.URL, o.PushBranch, res.Topology)
	case res.Commit == "":
		fmt.Fprintf(o.Out, "no changes: the state matches the topology at %s\n", res.Topology)
	default:
		where := o.State.String()
		if o.PushBranch != "" {
			where = fmt.Sprintf("%s branch %s", o.State.URL, o.PushBranch)
		}
		fmt.Fprintf(o.Out, "committed %s to %s: %s\n", res.Commit, where, res.Plan.Summary())
	}
	return res, nil
}

func (r *Reconciler) loadTopology(ctx context.Context, topo *gitsync.Repo) (*topology.Topology, string, error) {
	head, ok := topo.Head()
	if !ok {
		return nil, "", fmt.Errorf("topology %s: the branch has no commit", r.opt.Topology)
	}
	t, err := LoadTopology(ctx, topo.Dir(), fmt.Sprintf("at %s (%s)", r.opt.Topology, head))
	if err != nil {
		return nil, "", err
	}
	for _, w := range t.Warnings {
		r.opt.Logger.Warn("topology", "warning", w)
	}
	return t, head.String(), nil
}

// LoadTopology loads the topology in dir, stopping when ctx is done; where
// says which in errors.
func LoadTopology(ctx context.Context, dir, where string) (*topology.Topology, error) {
	t, err := topology.LoadContext(ctx, dir)
	var list topology.ErrorList
	switch {
	case errors.As(err, &list):
		return nil, fmt.Errorf("the topology %s is invalid (%d problems):\n%w", where, len(list), err)
	case err != nil:
		return nil, fmt.Errorf("topology %s: %w", where, err)
	}
	return t, nil
}

// attempt plans on the state as it is in the cache, writes, checks, commits
// and pushes. Errors wrapping gitsync.ErrRejected make WithRetry go again.
func (r *Reconciler) attempt(ctx context.Context, t *topology.Topology, topoHead string, st *gitsync.Repo, now time.Time, res *Result) error {
	o := r.opt
	res.Plan, res.Commit, res.pushStarted, res.UpToDate = nil, "", false, false
	tree, err := plan.ReadStateContext(ctx, st.Dir())
	if err != nil {
		return err
	}
	res.tree = tree
	rcp := plan.ResolveRecipients(t, o.Recipients)
	if err := CheckRecipients(rcp, o.Recipients); err != nil {
		return err
	}
	opt := render.Options{Options: plan.Options{Now: now, Recipients: rcp, AllowDestroy: o.AllowDestroy}, Verify: o.Verify}
	base := "none"
	if h, ok := st.Head(); ok {
		base = h.String()
	}
	o.Logger.Info("planning", "topologyCommit", topoHead, "stateCommit", base)
	if o.PushBranch != "" {
		upToDate, err := r.proposalUpToDate(ctx, t, tree, opt, st, topoHead, base, res)
		if err != nil {
			return stageError{ReasonRender, err}
		}
		if upToDate {
			return nil
		}
	}
	opt.Progress = o.Progress
	out, err := render.Render(ctx, t, tree, opt, o.Identities, o.Rand)
	if err != nil {
		return stageError{ReasonRender, err}
	}
	res.Plan = out.Plan
	if err := out.Plan.WriteText(o.Out, false); err != nil {
		return err
	}
	if out.Tree.Empty() {
		return nil
	}
	if err := emit.WriteContext(ctx, st.Dir(), out.Tree); err != nil {
		return stageError{ReasonRender, fmt.Errorf("writing the state tree: %w", err)}
	}
	written, err := checkConverged(ctx, t, st.Dir(), opt.Options)
	if err != nil {
		return stageError{ReasonNotConverged, err}
	}
	if o.PushBranch == "" {
		// A proposal leaves the state branch as it was (the cache is reset
		// to it below); otherwise the remote gets what was read back.
		res.tree = written
	}
	// The whole worktree, not only what this run wrote: a hand-committed key
	// or a renderer bug must not reach the remote through us either.
	findings, err := state.ScanPlaintextKeysContext(ctx, st.Root())
	if err != nil {
		return err
	}
	if len(findings) > 0 {
		lines := make([]string, len(findings))
		for i, f := range findings {
			lines[i] = "  " + f.String()
		}
		return stageError{ReasonPlaintextKey, fmt.Errorf("refusing to commit: %d private key(s) would land unencrypted:\n%s", len(findings), strings.Join(lines, "\n"))}
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	trailers := []gitsync.Trailer{{Key: TopologyTrailer, Value: topoHead}}
	if o.PushBranch != "" {
		trailers = append(trailers, gitsync.Trailer{Key: StateBaseTrailer, Value: base}, gitsync.Trailer{Key: PlanTrailer, Value: planDigest(out.Plan)})
	}
	sig := gitsync.Signature{Name: o.AuthorName, Email: o.AuthorEmail, When: now}
	h, committed, err := st.Commit(CommitMessage(out.Plan), trailers, sig)
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
	if o.PushBranch != "" {
		if err := st.ReplaceBranch(pctx, o.PushBranch); err != nil {
			return pushError(err)
		}
		// The commit lives on the proposal branch only; keep the cache at
		// the state branch's tip.
		if err := st.Reset(pctx); err != nil {
			return err
		}
	} else if err := st.Push(pctx, ""); err != nil {
		return pushError(err)
	}
	res.Commit = h.String()
	return nil
}

// pushTimeout bounds a push that a shutdown signal lets finish: killing
// git-receive-pack half-way is what we want to avoid, waiting forever too.
const pushTimeout = 2 * time.Minute

// proposalUpToDate reports whether the proposal branch already holds what this
// run would propose: built from the same topology commit, on the same state
// commit, with the same plan. Then nothing is signed and nothing is pushed,
// so the pull request under review does not change under the reviewer's feet.
// Otherwise it logs what moved, and the proposal is rebuilt.
func (r *Reconciler) proposalUpToDate(ctx context.Context, t *topology.Topology, tree *state.State, opt render.Options, st *gitsync.Repo, topoHead, base string, res *Result) (bool, error) {
	prev, ok, err := st.BranchHead(ctx, r.opt.PushBranch)
	if err != nil || !ok {
		return false, err
	}
	p, err := render.Plan(ctx, t, tree, opt, r.opt.Identities)
	if err != nil {
		return false, err
	}
	var moved []string
	if was := prev.Trailers[TopologyTrailer]; was != topoHead {
		moved = append(moved, fmt.Sprintf("topology %s → %s", orNone(was), topoHead))
	}
	if was := prev.Trailers[StateBaseTrailer]; was != base {
		moved = append(moved, fmt.Sprintf("state %s → %s", orNone(was), base))
	}
	if was := prev.Trailers[PlanTrailer]; was != planDigest(p) && len(moved) == 0 {
		moved = append(moved, "the plan changed (a renewal window opened, or a record was changed outside gitca)")
	}
	if len(moved) > 0 {
		r.opt.Logger.Info("rebuilding the proposal", "branch", r.opt.PushBranch, "moved", strings.Join(moved, "; "))
		fmt.Fprintf(r.opt.Out, "rebuilding proposal branch %s: %s\n", r.opt.PushBranch, strings.Join(moved, "; "))
		return false, nil
	}
	res.Plan, res.UpToDate = p, true
	return true, nil
}

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}

// planDigest identifies a plan by what it changes and why.
func planDigest(p *plan.Plan) string {
	sum := sha256.Sum256([]byte(strings.Join(p.Lines(), "\n")))
	return "sha256:" + hex.EncodeToString(sum[:])
}

// checkConverged reads back the tree just written, public material only, and
// plans again: anything but "nothing to do" means the tree is not what the
// renderer meant to write (a damaged file, a renderer bug), and committing it
// would make every following run commit again. It returns the tree it read.
func checkConverged(ctx context.Context, t *topology.Topology, dir string, opt plan.Options) (*state.State, error) {
	tree, err := plan.ReadStateContext(ctx, dir)
	if err != nil {
		return nil, fmt.Errorf("reading back the rendered tree: %w", err)
	}
	opt.AllowDestroy = true // what is left to delete was already allowed
	p, err := plan.Make(t, tree, opt)
	if err != nil {
		return nil, fmt.Errorf("re-planning the rendered tree: %w", err)
	}
	if !p.Changes() {
		return tree, nil
	}
	left := p.Lines()
	for i, l := range left {
		left[i] = "  " + l
	}
	return nil, fmt.Errorf("refusing to commit: the rendered tree does not converge, a second plan still wants:\n%s", strings.Join(left, "\n"))
}

// CheckRecipients refuses a value in a recipient list that is not a
// recipient (what ends up there by mistake is often a secret key) before a
// plan could print it or a commit record it: env is SOPS_AGE_RECIPIENTS, r
// the lists the plan seals to.
func CheckRecipients(r plan.Recipients, env []string) error {
	if err := secrets.CheckRecipients(secrets.EnvAgeRecipients, env); err != nil {
		return err
	}
	if err := secrets.CheckRecipients("Config spec.reconciler.age (or "+secrets.EnvAgeRecipients+")", r.Reconciler); err != nil {
		return err
	}
	if err := secrets.CheckRecipients("Config spec.reconciler.breakGlass", r.BreakGlass); err != nil {
		return err
	}
	for _, c := range slices.Sorted(maps.Keys(r.Clusters)) {
		if err := secrets.CheckRecipients("Config spec.clusters "+c+" recipients", r.Clusters[c]); err != nil {
			return err
		}
	}
	return nil
}

// CommitMessage is "gitca: <summary>", then one line per file the commit
// writes or deletes, with its reasons: the same list as the plan, so `git log`
// of the state repository reads as an audit log.
func CommitMessage(p *plan.Plan) string {
	var b strings.Builder
	fmt.Fprintf(&b, "gitca: %s\n", p.Summary())
	if lines := p.Lines(); len(lines) > 0 {
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
func writePlanFile(path string, p *plan.Plan) error {
	var b bytes.Buffer
	if err := p.WriteMarkdown(&b); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".plan-*")
	if err != nil {
		return fmt.Errorf("--plan-file: %w", err)
	}
	_, err = tmp.Write(b.Bytes())
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(tmp.Name(), 0o644)
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("--plan-file: %w", err)
	}
	return nil
}
