package apply

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sort"
	"sync"

	"github.com/gitca-dev/gitca/secrets"
	"github.com/gitca-dev/gitca/sign"
	"github.com/gitca-dev/gitca/state"
)

// Verify opens records to check what planning otherwise takes on trust:
// the SOPS MAC (a value edited without re-sealing it), and that the private
// key belongs to the certificate or public key beside it. A record that fails
// gets a Problem, which the plan turns into a "damaged" rekey naming it.
//
// Without all, only the records the state index does not vouch for are opened
// (state.Unvouched: edited by hand, or merged): what gitca wrote is sealed
// and matched by construction, and a no-op plan stays free of decryption.
// With no identity nothing can be opened; all is then an error, and the
// records left unverified are named by the plan's warnings.
func Verify(st *state.State, ids *secrets.Identities, all bool) error {
	return VerifyContext(context.Background(), st, ids, all)
}

// VerifyContext is Verify, stopped by ctx between records: opening ten
// thousand of them takes seconds.
func VerifyContext(ctx context.Context, st *state.State, ids *secrets.Identities, all bool) error {
	var recs []*state.Object
	if all {
		for _, o := range st.Primary {
			recs = append(recs, o)
		}
		for _, o := range st.Copies {
			recs = append(recs, o)
		}
	} else {
		for _, p := range st.Unvouched {
			recs = append(recs, st.At(p))
		}
	}
	if len(recs) == 0 {
		return nil
	}
	if ids == nil {
		if all {
			return fmt.Errorf("%w to verify the state (set SOPS_AGE_KEY_FILE or SOPS_AGE_KEY)", ErrNeedIdentity)
		}
		return nil
	}
	sort.Slice(recs, func(i, j int) bool { return recs[i].Path < recs[j].Path })
	problems := make([]string, len(recs))
	var wg sync.WaitGroup
	next := make(chan int)
	for range runtime.GOMAXPROCS(0) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				if ctx.Err() == nil {
					problems[i] = verifyRecord(recs[i], *ids)
				}
			}
		}()
	}
	for i := range recs {
		next <- i
	}
	close(next)
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return err
	}
	for i, o := range recs {
		o.Verified = true
		if problems[i] != "" {
			o.Problems = append(o.Problems, problems[i])
		}
	}
	return nil
}

// verifyRecord says what is wrong with a record once opened, or "". The
// messages never quote a private value.
func verifyRecord(o *state.Object, ids secrets.Identities) string {
	if len(o.Problems) > 0 {
		return "" // already damaged: it is re-made from scratch, unopened
	}
	op, err := secrets.OpenSealed(o.Raw, ids)
	switch {
	case errors.Is(err, secrets.ErrMACMismatch):
		return "sops MAC mismatch: edited without re-sealing"
	case errors.Is(err, secrets.ErrNoMatchingIdentity):
		return "cannot be opened with the given age identity"
	case err != nil:
		return "cannot be opened: " + err.Error()
	}
	data := op.StringData()
	key, err := KeyOf(data, o.Path)
	if errors.Is(err, errNoKey) {
		return "" // an offline root, imported without its key: recorded for trust only
	}
	if err != nil {
		return "private key unreadable"
	}
	if c := o.Cert(); c != nil {
		if !sign.KeyMatches(key, c.PublicKey) {
			return "private key does not match the certificate in tls.crt"
		}
		return ""
	}
	if pub, ok := data["tls.pub"]; ok {
		own, err := sign.EncodePublicKeyPEM(key.Public())
		if err != nil || string(own) != pub {
			return "tls.key does not match tls.pub"
		}
	}
	return ""
}
