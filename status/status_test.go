package status

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

func TestShortDuration(t *testing.T) {
	for d, want := range map[time.Duration]string{
		-time.Second:                    "expired",
		0:                               "0s",
		59 * time.Second:                "59s",
		90 * time.Minute:                "1h",
		47 * time.Hour:                  "47h",
		48 * time.Hour:                  "2d",
		729 * 24 * time.Hour:            "729d",
		3651 * 24 * time.Hour:           "10y",
		30*time.Minute + 29*time.Second: "30m",
	} {
		assert.Equal(t, want, ShortDuration(d), d.String())
	}
}

// TestWarnings: what --warn-within reports, and what it leaves alone.
func TestWarnings(t *testing.T) {
	now := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	at := func(days int) *time.Time { x := now.AddDate(0, 0, days); return &x }
	row := func(id string, renew, expire int, st Status) Row {
		return Row{ID: id, RenewsAt: at(renew), NotAfter: at(expire), NotBefore: at(-300), Status: st}
	}
	r := &Report{Now: now,
		Certificates: []Row{
			row("Certificate/expired", -20, -1, Expired),
			row("Certificate/expiring", 5, 20, OK), // inside 30 days, renewal not due yet: still warned
			row("Certificate/overdue", -2, 60, Overdue),
			row("Certificate/fine", 40, 100, OK),
			{ID: "Certificate/missing", Status: Missing},
		},
		CertificateAuthorities: []Row{{ID: "CertificateAuthority/imported", Imported: true, RenewsAt: at(-1), NotAfter: at(200), Status: Overdue}},
		KeyPairs:               []Row{{ID: "KeyPair/sa", Status: OK}},
	}
	var got []string
	for _, w := range r.Warnings(30 * 24 * time.Hour) {
		got = append(got, w.ID+": "+w.Why)
	}
	assert.Equal(t, []string{
		"Certificate/expired: expired 2026-05-31T00:00:00Z",
		"Certificate/expiring: expires 2026-06-21T00:00:00Z, within 720h",
		"Certificate/overdue: renewal overdue since 2026-05-30T00:00:00Z",
		"CertificateAuthority/imported: an imported CA: gitca cannot renew it, import a new one before 2026-12-18T00:00:00Z",
	}, got)
	assert.Len(t, r.Warnings(0), 3, "a zero window still reports the expired and the overdue")
}
