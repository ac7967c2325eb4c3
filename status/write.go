package status

import (
	"encoding/json"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"sigs.k8s.io/yaml"
)

// expiresLayout is kubeadm's `certs check-expiration` format, so the two
// tables read alike side by side.
const expiresLayout = "Jan 02, 2006 15:04 MST"

// WriteText prints certificates, CAs and key pairs as three tables, the way
// `kubeadm certs check-expiration` prints certificates and CAs.
func (r *Report) WriteText(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "CERTIFICATE\tCLUSTER\tEXPIRES\tRESIDUAL TIME\tCERTIFICATE AUTHORITY\tRENEWS AT\tSTATUS\n")
	for _, row := range r.Certificates {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", row.Name, dash(row.Cluster), r.expires(row), r.residual(row), dash(row.Issuer), r.renews(row), row.Status)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(w)
	tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "CERTIFICATE AUTHORITY\tCLUSTER\tEXPIRES\tRESIDUAL TIME\tISSUER\tRENEWS AT\tPHASE\tSTATUS\n")
	for _, row := range r.CertificateAuthorities {
		issuer := dash(row.Issuer)
		if row.Imported {
			issuer = "(imported)"
		} else if row.Issuer == "" {
			issuer = "(self-signed)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", row.Name, dash(row.Cluster), r.expires(row), r.residual(row), issuer, r.renews(row), phase(row), row.Status)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if len(r.KeyPairs) > 0 {
		fmt.Fprintln(w)
		tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintf(tw, "KEY PAIR\tCLUSTER\tNAMESPACE\tALGORITHM\tPHASE\tSTATUS\n")
		for _, row := range r.KeyPairs {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", row.Name, dash(row.Cluster), dash(row.Namespace), dash(row.Algorithm), phase(row), row.Status)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	if r.Estimated {
		fmt.Fprintf(w, "\n* renewal time without --topology: gitca's default renewBefore (30 days for a CA, a third of the validity otherwise); pass --topology for the declared one.\n")
	}
	_, err := fmt.Fprintf(w, "\nStatus as of %s.\n", r.Now.Format(time.RFC3339))
	return err
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func (r *Report) expires(row Row) string {
	if row.NotAfter == nil {
		return "-"
	}
	return row.NotAfter.Format(expiresLayout)
}

func (r *Report) residual(row Row) string {
	if row.NotAfter == nil {
		return "-"
	}
	return ShortDuration(row.NotAfter.Sub(r.Now))
}

func (r *Report) renews(row Row) string {
	if row.RenewsAt == nil {
		return "-"
	}
	s := row.RenewsAt.Format(expiresLayout)
	if row.RenewsAtFrom == FromDefault {
		s += " *"
	}
	return s
}

// ShortDuration is kubeadm's residual time (apimachinery's
// ShortHumanDuration): seconds, minutes, hours up to two days, days up to two
// years, then years; "expired" where kubeadm prints "<invalid>".
func ShortDuration(d time.Duration) string {
	switch s := int64(d.Round(time.Second) / time.Second); {
	case s < 0:
		return "expired"
	case s < 60:
		return fmt.Sprintf("%ds", s)
	case s < 60*60:
		return fmt.Sprintf("%dm", s/60)
	case s < 48*60*60:
		return fmt.Sprintf("%dh", s/3600)
	case s < 2*365*24*60*60:
		return fmt.Sprintf("%dd", s/(24*3600))
	default:
		return fmt.Sprintf("%dy", s/(365*24*3600))
	}
}

// WriteJSON prints the report for machines; every time is RFC 3339 in UTC.
func (r *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// WriteYAML prints the report as YAML, with the same fields as JSON.
func (r *Report) WriteYAML(w io.Writer) error {
	b, err := yaml.Marshal(r)
	if err != nil {
		return err
	}
	_, err = w.Write(b)
	return err
}

// phase is a rotation in flight: "add since Jan 02, 2026 15:04 UTC", or "-".
func phase(row Row) string {
	switch {
	case row.Phase == "":
		return "-"
	case row.PhaseSince == nil:
		return row.Phase
	}
	return row.Phase + " since " + row.PhaseSince.Format(expiresLayout)
}
