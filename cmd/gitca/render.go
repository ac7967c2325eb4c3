package main

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/gitca-dev/gitca/emit"
	"github.com/gitca-dev/gitca/plan"
	"github.com/gitca-dev/gitca/reconcile"
	"github.com/gitca-dev/gitca/render"
	"github.com/gitca-dev/gitca/secrets"
	"github.com/gitca-dev/gitca/state"
	"github.com/gitca-dev/gitca/topology"
)

// commonFlags are shared by plan and render.
type commonFlags struct {
	topology string
	state    string
	now      string
	output   string
	verify   bool
	// allowDestroy lifts the destruction guard (plan.Options.AllowDestroy).
	allowDestroy bool
}

func (f *commonFlags) register(cmd *cobra.Command, outputs string) {
	cmd.Flags().StringVar(&f.topology, "topology", "", "topology directory (required)")
	cmd.Flags().StringVar(&f.state, "state", "", "state directory (required; created if missing)")
	cmd.Flags().StringVar(&f.now, "now", "", "pretend the run happens at this RFC3339 time (\"what happens on that date\")")
	cmd.Flags().StringVarP(&f.output, "output", "o", "text", "output format: "+outputs)
	cmd.Flags().BoolVar(&f.verify, "verify", false, "open every record to check its SOPS MAC and that its key matches its certificate (needs an age identity); without it only records changed outside gitca are checked, when an identity is set")
	cmd.Flags().BoolVar(&f.allowDestroy, "allow-destroy", false, "let the plan delete CAs or more than half of the objects (refused otherwise, naming them; or list them in the Config's spec.allowDelete)")
	_ = cmd.MarkFlagRequired("topology")
	_ = cmd.MarkFlagRequired("state")
}

func (f *commonFlags) clock() (time.Time, error) {
	if f.now == "" {
		return time.Now().UTC(), nil
	}
	return parseNow(f.now)
}

// parseNow reads a --now flag.
func parseNow(s string) (time.Time, error) {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("--now %q: want RFC3339, e.g. 2027-01-31T00:00:00Z", s)
	}
	return t.UTC(), nil
}

// loadTopology loads the topology in dir, stopping on SIGTERM/SIGINT, and
// prints its warnings (deprecated fields) to stderr; where says which in errors.
func loadTopology(ctx context.Context, stderr io.Writer, dir, where string) (*topology.Topology, error) {
	t, err := reconcile.LoadTopology(ctx, dir, where)
	if err != nil {
		return nil, err
	}
	for _, w := range t.Warnings {
		fmt.Fprintf(stderr, "warning: %s\n", w)
	}
	return t, nil
}

// inputs are what plan and render start from.
type inputs struct {
	topology *topology.Topology
	state    *state.State
	opt      render.Options
	ids      *secrets.Identities // nil when none is configured
}

// load reads topology, state and any age identity, and computes the plan options.
func (f *commonFlags) load(cmd *cobra.Command) (*inputs, error) {
	ctx, stderr := cmd.Context(), cmd.ErrOrStderr()
	now, err := f.clock()
	if err != nil {
		return nil, err
	}
	t, err := loadTopology(ctx, stderr, f.topology, "in "+f.topology)
	if err != nil {
		return nil, err
	}
	st, err := plan.ReadStateContext(ctx, f.state)
	if err != nil {
		return nil, err
	}
	ids, err := optionalIdentities()
	if err != nil {
		return nil, err
	}
	// The Config's recipients, when it names any, win over these.
	env, err := secrets.DefaultRecipients(ids)
	if err != nil {
		return nil, err
	}
	rcp := plan.ResolveRecipients(t, env)
	if err := reconcile.CheckRecipients(rcp, env); err != nil {
		return nil, err
	}
	opt := render.Options{Options: plan.Options{Now: now, Recipients: rcp, AllowDestroy: f.allowDestroy}, Verify: f.verify}
	return &inputs{topology: t, state: st, opt: opt, ids: ids}, nil
}

func newPlanCmd() *cobra.Command {
	var f commonFlags
	var detailed, all bool
	cmd := &cobra.Command{
		Use:   "plan",
		Short: "Show what a run would create, renew, re-key or delete; needs no private key",
		Example: `  # What would change now?
  gitca plan --topology examples/kubeadm --state ./state

  # What happens a year from now (renewals)?
  gitca plan --topology examples/kubeadm --state ./state --now 2027-11-23T00:00:00Z

  # For a pull-request comment, failing CI when there are changes
  gitca plan --topology . --state ../state -o markdown --detailed-exitcode`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkOutput(f.output, "text", "json", "yaml", "markdown"); err != nil {
				return err
			}
			in, err := f.load(cmd)
			if err != nil {
				return err
			}
			// Planning needs no key; one that is set checks what was edited by hand.
			p, err := render.Plan(cmd.Context(), in.topology, in.state, in.opt, in.ids)
			if err != nil {
				return err
			}
			if err := printPlan(cmd.OutOrStdout(), p, f.output, all); err != nil {
				return err
			}
			if detailed && p.Changes() {
				return exitError{code: 2}
			}
			return nil
		},
	}
	f.register(cmd, "text|json|yaml|markdown")
	cmd.Flags().BoolVar(&detailed, "detailed-exitcode", false, "exit 0 when nothing changes, 2 when something does, 1 on error (like terraform plan)")
	cmd.Flags().BoolVar(&all, "all", false, "list kept objects too (text output)")
	return cmd
}

func printPlan(w io.Writer, p *plan.Plan, output string, all bool) error {
	switch output {
	case "json":
		return p.WriteJSON(w)
	case "yaml":
		return p.WriteYAML(w)
	case "markdown":
		return p.WriteMarkdown(w)
	default:
		return p.WriteText(w, all)
	}
}

func checkOutput(got string, allowed ...string) error {
	for _, a := range allowed {
		if got == a {
			return nil
		}
	}
	return fmt.Errorf("--output %q is not supported (allowed: %v)", got, allowed)
}

func newRenderCmd() *cobra.Command {
	var f commonFlags
	cmd := &cobra.Command{
		Use:   "render",
		Short: "Plan, sign and write the sealed state tree (no git)",
		Long: `render plans like 'gitca plan', then signs what must change and writes the
state directory: SOPS-encrypted Secrets, CA files under ca/, RBAC, bundles,
kustomizations and .sops.yaml. Files whose content does not change are not
rewritten. Private keys are encrypted in process before anything is written.

Age recipients come from the topology's Config, else SOPS_AGE_RECIPIENTS, else the
identity's own recipient (SOPS_AGE_KEY_FILE), as reconcile does. An age
identity (SOPS_AGE_KEY_FILE or SOPS_AGE_KEY) is needed only when an existing
key must sign or be carried over.`,
		Example: `  export SOPS_AGE_RECIPIENTS=$(gitca keygen --out age.key)
  gitca render --topology examples/kubeadm --state ./state
  SOPS_AGE_KEY_FILE=age.key gitca render --topology examples/kubeadm --state ./state --now 2027-11-01T00:00:00Z`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkOutput(f.output, "text", "json", "yaml"); err != nil {
				return err
			}
			in, err := f.load(cmd)
			if err != nil {
				return err
			}
			in.opt.Progress = progressLine(cmd.ErrOrStderr())
			res, err := render.Render(cmd.Context(), in.topology, in.state, in.opt, in.ids, rand.Reader)
			if err != nil {
				return err
			}
			if err := emit.WriteContext(cmd.Context(), f.state, res.Tree); err != nil {
				return fmt.Errorf("writing %s: %w", f.state, err)
			}
			if err := printPlan(cmd.OutOrStdout(), res.Plan, f.output, false); err != nil {
				return err
			}
			if f.output == "text" {
				fmt.Fprintf(cmd.OutOrStdout(), "Wrote %d files, deleted %d, in %s.\n", len(res.Tree.Write), len(res.Tree.Delete), f.state)
			}
			return nil
		},
	}
	f.register(cmd, "text|json|yaml")
	return cmd
}

// optionalIdentities loads age identities if any are configured; a run that
// must open a key without one fails later, naming the key.
func optionalIdentities() (*secrets.Identities, error) {
	ids, err := secrets.LoadIdentities()
	if errors.Is(err, secrets.ErrNoIdentity) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return &ids, nil
}

func newKeygenCmd() *cobra.Command {
	var out string
	cmd := &cobra.Command{
		Use:   "keygen",
		Short: "Generate an age identity and print its public recipient",
		Example: `  export SOPS_AGE_RECIPIENTS=$(gitca keygen --out age.key)
  export SOPS_AGE_KEY_FILE=$PWD/age.key`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if out == "" {
				return errors.New("--out is required: the identity is a secret and is never printed")
			}
			identity, recipient, err := secrets.GenerateAgeKey(time.Now())
			if err != nil {
				return err
			}
			f, err := os.OpenFile(out, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
			if err != nil {
				return fmt.Errorf("--out: %w", err)
			}
			if _, err := f.Write(identity); err != nil {
				f.Close()
				return err
			}
			if err := f.Close(); err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), recipient)
			return nil
		},
	}
	cmd.Flags().StringVar(&out, "out", "", "file to create for the identity (mode 0600; must not exist)")
	return cmd
}
