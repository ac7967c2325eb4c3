package plan

import (
	"cmp"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"sigs.k8s.io/yaml"

	"github.com/gitca-dev/gitca/graph"
	"github.com/gitca-dev/gitca/topology"
)

// ActionKinds are every kind of action, most invasive first: the order
// summaries list them in, and the set metrics report (zero included).
var ActionKinds = []ActionKind{ActionCreate, ActionRequest, ActionRekey, ActionReissue, ActionRenew, ActionUpdateChain, ActionReencrypt, ActionDelete, ActionWait, ActionKeep}

// Summary is the one-line count of a plan: "3 create, 1 renew, 20 keep; 7
// files written, 1 deleted". It counts files too, so a run that changes only
// a bundle or a binding never reads as "nothing but keep".
func (p *Plan) Summary() string {
	c := p.Counts()
	var parts []string
	for _, k := range ActionKinds {
		if c[k] > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", c[k], k))
		}
	}
	objects := strings.Join(parts, ", ")
	if objects == "" {
		objects = "nothing declared"
	}
	w, d := p.fileCounts()
	switch {
	case w == 0 && d == 0:
		return objects + "; no file changes"
	case d == 0:
		return fmt.Sprintf("%s; %d file(s) written", objects, w)
	case w == 0:
		return fmt.Sprintf("%s; %d file(s) deleted", objects, d)
	}
	return fmt.Sprintf("%s; %d file(s) written, %d deleted", objects, w, d)
}

func (p *Plan) fileCounts() (written, deleted int) {
	for _, f := range p.Files {
		if f.Action == FileDelete {
			deleted++
		} else {
			written++
		}
	}
	return written, deleted
}

// TrustFiles are the changes a reviewer must not miss: trust bundles and
// client-CA files, RBAC, and who can decrypt.
func (p *Plan) TrustFiles() []*File {
	var out []*File
	for _, f := range p.Files {
		if f.TrustChange() {
			out = append(out, f)
		}
	}
	return out
}

func fmtTime(t *time.Time) string {
	if t == nil {
		return "-"
	}
	return t.UTC().Format("2006-01-02")
}

func reasonsText(rs []Reason) string {
	if len(rs) == 0 {
		return "-"
	}
	s := make([]string, len(rs))
	for i, r := range rs {
		s[i] = r.String()
	}
	return strings.Join(s, "; ")
}

// trustText is what a trust change grants or takes away, in one line.
func trustText(f *File) string {
	var parts []string
	if f.Trust != nil {
		parts = append(parts, "trust: "+f.Trust.String())
	}
	if f.RBAC != nil {
		parts = append(parts, "rbac: "+f.RBAC.String())
	}
	if f.Recipients != nil {
		parts = append(parts, "can decrypt: "+f.Recipients.String())
	}
	return strings.Join(parts, "; ")
}

// Lines are the plan's changes, one per file, as the commit message and the
// text output list them: "<action> <path>: <reasons>".
func (p *Plan) Lines() []string {
	out := make([]string, 0, len(p.Files))
	for _, f := range p.Files {
		l := fmt.Sprintf("%s %s: %s", f.Action, f.Path, reasonsText(f.Reasons))
		if f.TrustChange() {
			l += " [" + trustText(f) + "]"
		}
		out = append(out, l)
	}
	return out
}

// WriteText prints the plan: trust changes first, then objects (changes
// first; kept objects are counted, not listed, unless all is set), then every
// file written or deleted.
func (p *Plan) WriteText(w io.Writer, all bool) error {
	if tf := p.TrustFiles(); len(tf) > 0 {
		fmt.Fprintf(w, "Trust changes (review these first):\n")
		for _, f := range tf {
			fmt.Fprintf(w, "  %s %s (%s): %s\n", f.Action, f.Path, f.Owner, trustText(f))
		}
		fmt.Fprintln(w)
	}
	var listed []*Action
	for _, a := range p.Objects {
		if a.Action != ActionKeep || all {
			listed = append(listed, a)
		}
	}
	if len(listed) == 0 {
		fmt.Fprintf(w, "No object changes: every certificate and key is kept.\n")
	} else {
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintf(tw, "OBJECT\tACTION\tNOT AFTER\tREASONS\n")
		for _, a := range listed {
			fmt.Fprintf(tw, "%s\t%s\t%s → %s\t%s\n", a.ID, a.Action, fmtTime(a.Before), fmtTime(a.After), reasonsText(a.Reasons))
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	if len(p.Files) > 0 {
		fmt.Fprintln(w)
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintf(tw, "FILE\tACTION\tKIND\tREASONS\n")
		for _, f := range p.Files {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", f.Path, f.Action, f.Kind, reasonsText(f.Reasons))
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	for _, a := range p.Objects {
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

// WriteMarkdown prints the plan for a pull-request comment, trust changes in
// their own section at the top.
func (p *Plan) WriteMarkdown(w io.Writer) error {
	fmt.Fprintf(w, "### gitca plan\n\n**%s** (as of %s)\n\n", p.Summary(), p.Now.Format(time.RFC3339))
	if !p.Changes() {
		fmt.Fprintf(w, "No changes. The state matches the topology.\n\n")
	}
	if tf := p.TrustFiles(); len(tf) > 0 {
		fmt.Fprintf(w, "#### Trust changes\n\nWho is trusted, who may do what, who can decrypt. Review these first.\n\n")
		fmt.Fprintf(w, "| File | Action | Owner | Change |\n|---|---|---|---|\n")
		for _, f := range tf {
			fmt.Fprintf(w, "| `%s` | %s | `%s` | %s |\n", f.Path, f.Action, f.Owner, mdEscape(trustText(f)))
		}
		fmt.Fprintln(w)
	}
	var changed []*Action
	for _, a := range p.Objects {
		if a.Action != ActionKeep {
			changed = append(changed, a)
		}
	}
	if err := p.writeGraph(w); err != nil {
		return err
	}
	if len(changed) > 0 {
		fmt.Fprintf(w, "#### Objects\n\n| Object | Action | Not after | Reasons |\n|---|---|---|---|\n")
		for _, a := range changed {
			fmt.Fprintf(w, "| `%s` | %s | %s → %s | %s |\n", a.ID, a.Action, fmtTime(a.Before), fmtTime(a.After), mdEscape(reasonsText(a.Reasons)))
		}
		fmt.Fprintln(w)
	}
	if len(p.Files) > 0 {
		wr, del := p.fileCounts()
		fmt.Fprintf(w, "#### Files\n\n<details><summary>%d written, %d deleted</summary>\n\n", wr, del)
		fmt.Fprintf(w, "| File | Action | Kind | Reasons |\n|---|---|---|---|\n")
		for _, f := range p.Files {
			fmt.Fprintf(w, "| `%s` | %s | %s | %s |\n", f.Path, f.Action, f.Kind, mdEscape(reasonsText(f.Reasons)))
		}
		fmt.Fprintf(w, "\n</details>\n\n")
	}
	for _, a := range p.Objects {
		for _, n := range a.Notes {
			fmt.Fprintf(w, "> **Note** `%s`: %s\n\n", a.ID, mdEscape(n))
		}
	}
	for _, warn := range p.Warnings {
		fmt.Fprintf(w, "> **Warning** %s\n\n", mdEscape(warn))
	}
	return nil
}

// writeGraph draws what changes as a Mermaid chart (GitHub renders it in the
// comment): the changed objects, bundles and grants, the CAs they hang from,
// changed nodes outlined, every certificate with its days left after the run.
// Deleted objects are not in the topology any more; the table lists them.
func (p *Plan) writeGraph(w io.Writer) error {
	if p.Topology == nil {
		return nil
	}
	only, notAfter := map[string]bool{}, map[string]time.Time{}
	for _, a := range p.Objects {
		if a.Action != ActionKeep && a.Action != ActionDelete && a.Action != ActionWait {
			only[a.ID] = true
		}
		if t := cmp.Or(a.After, a.Before); t != nil {
			notAfter[a.ID] = *t
		}
	}
	// A bundle's content and a kubeconfig's grants change without an object
	// action; they are what a reviewer must see first. Owners that are no
	// object ("State", "Cluster/<name>") are not in the topology and not drawn.
	for _, f := range p.Files {
		if f.TrustChange() || strings.HasPrefix(f.Owner, topology.KindTrustBundle+"/") {
			only[f.Owner] = true
		}
	}
	if len(only) == 0 {
		return nil
	}
	g, err := graph.New(p.Topology, graph.Options{Only: only, Changed: only, NotAfter: notAfter, Now: p.Now})
	if err != nil {
		return err
	}
	if len(g.Nodes) == 0 {
		return nil
	}
	fmt.Fprintf(w, "#### What changes\n\nChanged objects are outlined in red, with what they hang from; days left are counted from %s, after the run.\n\n```mermaid\n", p.Now.Format("2006-01-02"))
	if err := g.Mermaid(w); err != nil {
		return err
	}
	_, err = fmt.Fprintf(w, "```\n\n")
	return err
}

func mdEscape(s string) string {
	return strings.NewReplacer("|", `\|`, "\n", " ", "<", "&lt;", ">", "&gt;").Replace(s)
}

type planDoc struct {
	Now      time.Time          `json:"now"`
	Summary  map[ActionKind]int `json:"summary"`
	Changes  bool               `json:"changes"`
	Objects  []*Action          `json:"objects"`
	Files    []*File            `json:"files"`
	Warnings []string           `json:"warnings,omitempty"`
}

func (p *Plan) doc() planDoc {
	files := p.Files
	if files == nil {
		files = []*File{}
	}
	return planDoc{Now: p.Now, Summary: p.Counts(), Changes: p.Changes(), Objects: p.Objects, Files: files, Warnings: p.Warnings}
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
