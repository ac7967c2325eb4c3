package render

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"sigs.k8s.io/yaml"
)

// actionOrder is how summaries list action kinds: most invasive first.
var actionOrder = []ActionKind{ActionCreate, ActionRekey, ActionReissue, ActionRenew, ActionUpdateChain, ActionReencrypt, ActionDelete, ActionKeep}

// Summary is the one-line count of a plan: "3 create, 1 renew, 20 keep".
func (p *Plan) Summary() string {
	c := p.Counts()
	var parts []string
	for _, k := range actionOrder {
		if c[k] > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", c[k], k))
		}
	}
	if len(parts) == 0 {
		return "nothing declared"
	}
	return strings.Join(parts, ", ")
}

func fmtTime(t *time.Time) string {
	if t == nil {
		return "-"
	}
	return t.UTC().Format("2006-01-02")
}

func reasonsText(a *Action) string {
	if len(a.Reasons) == 0 {
		return "-"
	}
	s := make([]string, len(a.Reasons))
	for i, r := range a.Reasons {
		s[i] = r.String()
	}
	return strings.Join(s, "; ")
}

// WriteText prints the plan as a table, changes first; kept objects are
// counted, not listed, unless all is set.
func (p *Plan) WriteText(w io.Writer, all bool) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "OBJECT\tACTION\tNOT AFTER\tREASONS\n")
	for _, a := range p.Actions {
		if a.Action == ActionKeep && !all {
			continue
		}
		fmt.Fprintf(tw, "%s\t%s\t%s → %s\t%s\n", a.ID, a.Action, fmtTime(a.Before), fmtTime(a.After), reasonsText(a))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, a := range p.Actions {
		for _, n := range a.Notes {
			fmt.Fprintf(w, "note: %s: %s\n", a.ID, n)
		}
	}
	for _, warn := range p.Warnings {
		fmt.Fprintf(w, "warning: %s\n", warn)
	}
	_, err := fmt.Fprintf(w, "Plan (%s): %s.\n", p.Now.Format(time.RFC3339), p.Summary())
	return err
}

// WriteMarkdown prints the plan for a pull-request comment.
func (p *Plan) WriteMarkdown(w io.Writer) error {
	fmt.Fprintf(w, "### gitca plan\n\n**%s** (as of %s)\n\n", p.Summary(), p.Now.Format(time.RFC3339))
	if p.Changes() {
		fmt.Fprintf(w, "| Object | Action | Not after | Reasons |\n|---|---|---|---|\n")
		for _, a := range p.Actions {
			if a.Action == ActionKeep {
				continue
			}
			fmt.Fprintf(w, "| `%s` | %s | %s → %s | %s |\n", a.ID, a.Action, fmtTime(a.Before), fmtTime(a.After), mdEscape(reasonsText(a)))
		}
		fmt.Fprintln(w)
	} else {
		fmt.Fprintf(w, "No changes. The state matches the topology.\n\n")
	}
	for _, a := range p.Actions {
		for _, n := range a.Notes {
			fmt.Fprintf(w, "> **Note** `%s`: %s\n\n", a.ID, mdEscape(n))
		}
	}
	for _, warn := range p.Warnings {
		fmt.Fprintf(w, "> **Warning** %s\n\n", mdEscape(warn))
	}
	return nil
}

func mdEscape(s string) string { return strings.ReplaceAll(s, "|", `\|`) }

type planDoc struct {
	Now      time.Time          `json:"now"`
	Summary  map[ActionKind]int `json:"summary"`
	Changes  bool               `json:"changes"`
	Actions  []*Action          `json:"actions"`
	Warnings []string           `json:"warnings,omitempty"`
}

func (p *Plan) doc() planDoc {
	return planDoc{Now: p.Now, Summary: p.Counts(), Changes: p.Changes(), Actions: p.Actions, Warnings: p.Warnings}
}

// WriteJSON prints the plan for machines.
func (p *Plan) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(p.doc())
}

// WriteYAML prints the plan as YAML (same fields as JSON).
func (p *Plan) WriteYAML(w io.Writer) error {
	b, err := yaml.Marshal(p.doc())
	if err != nil {
		return err
	}
	_, err = w.Write(b)
	return err
}
