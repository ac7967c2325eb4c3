package secrets

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
	"time"
)

// FuzzOpenSealed opens what a repository may hold as a sealed file: never a
// panic or a hang, and an error never quotes a decrypted value. Seeds sealed
// at run time open with the run's identity; the committed corpus
// (testdata/fuzz/FuzzOpenSealed, sealed to a throwaway identity) exercises
// the parsing before decryption, the hostile YAML of issue 11 among it.
func FuzzOpenSealed(f *testing.F) {
	k := newTestKey(f)
	seeds, key := openSeeds(f, k)
	for _, s := range seeds {
		f.Add(s)
	}
	secretLines := strings.Split(strings.TrimSpace(key), "\n")[1:]
	f.Fuzz(func(t *testing.T, in []byte) {
		done := make(chan struct{})
		go func() {
			select {
			case <-done:
			case <-time.After(5 * time.Second):
				panic(fmt.Sprintf("OpenSealed over 5s on %q", in))
			}
		}()
		op, err := OpenSealed(in, k.ids)
		close(done)
		if err != nil {
			for _, l := range secretLines {
				if strings.Contains(err.Error(), l) && !bytes.Contains(in, []byte(l)) {
					t.Fatalf("the error quotes a decrypted value: %v", err)
				}
			}
			return
		}
		op.StringData()
	})
}

// openSeeds are a file sealed to k and variants of it, and hostile YAML;
// key is the private key sealed in them.
func openSeeds(tb testing.TB, k testKey) (seeds [][]byte, key string) {
	crt, key := pemPair(tb, "fuzz")
	doc := Doc{"apiVersion": "v1", "kind": "Secret", "metadata": Doc{"name": "x"},
		"stringData": map[string]string{"tls.crt": crt, "tls.key": key}}
	sealed, err := SealDoc(doc, []string{k.recipient}, time.Now())
	if err != nil {
		tb.Fatal(err)
	}
	return [][]byte{
		sealed,
		bytes.Replace(sealed, []byte("tls.crt: |"), []byte("tls.crt: |-"), 1),
		bytes.Replace(sealed, []byte("kind: Secret"), []byte("kind: Secret # edited"), 1),
		bytes.Replace(sealed, []byte("    age:\n"), []byte("    pgp:\n        - fp: ABCD\n          created_at: x\n    age:\n"), 1),
		bytes.Replace(sealed, []byte("    mac: "), []byte("    shamir_threshold: 3\n    mac: "), 1),
		append(append([]byte{}, sealed...), "---\nkind: Secret\n"...),
		[]byte(`{"data":"ENC[AES256_GCM,data:x,iv:y,tag:z,type:str]","sops":{"mac":"x","version":"3"}}`),
		[]byte("a: &a [x, x]\nb: [*a, *a]\nsops: {mac: x}\n"),
		[]byte("d: &d\n  <<: *d\nsops: {mac: x}\n"),
		[]byte("x: " + strings.Repeat("[", 200) + strings.Repeat("]", 200) + "\nsops: {mac: x}\n"),
		[]byte(strings.Repeat("k: v\n", 300) + "sops: {mac: x}\n"),
	}, key
}
