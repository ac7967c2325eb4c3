package apply

import (
	"crypto/rand"
	"crypto/x509"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/gitca-dev/gitca/sign"
	"github.com/gitca-dev/gitca/topology"
)

// FuzzKeyFromKubeconfig reads a kubeconfig as a record's opened value holds
// it: never a panic or a hang, never the key in an error.
func FuzzKeyFromKubeconfig(f *testing.F) {
	seeds, keyPEM := kubeconfigSeeds(f)
	for _, s := range seeds {
		f.Add(s)
	}
	secretLines := strings.Split(strings.TrimSpace(string(keyPEM)), "\n")[1:]
	f.Fuzz(func(t *testing.T, in []byte) {
		done := make(chan struct{})
		go func() {
			select {
			case <-done:
			case <-time.After(5 * time.Second):
				panic(fmt.Sprintf("KeyFromKubeconfig over 5s on %q", in))
			}
		}()
		_, err := KeyFromKubeconfig(in)
		close(done)
		if err != nil {
			for _, l := range secretLines {
				if strings.Contains(err.Error(), l) {
					t.Fatalf("the error quotes the key: %v", err)
				}
			}
		}
	})
}

// kubeconfigSeeds are a kubeconfig as gitca builds it and hostile ones;
// keyPEM is the key embedded in the first.
func kubeconfigSeeds(tb testing.TB) (seeds [][]byte, keyPEM []byte) {
	key, err := sign.GenerateKey(topology.ECDSAP256, rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	ca, err := sign.SignCertificate(sign.CertSpec{Subject: topology.Subject{CommonName: "ca"}, CA: true, NotBefore: t0, NotAfter: t0.AddDate(1, 0, 0)}, key.Public(), nil, key, rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	k := &topology.Kubeconfig{Metadata: topology.ObjectMeta{Name: "ops"},
		Spec: topology.KubeconfigSpec{Username: "alice", Target: topology.KubeconfigTarget{Server: "https://api.example.com:6443", CA: "ca"}}}
	raw, err := buildKubeconfig(k, &Material{Key: key, Cert: ca}, []*x509.Certificate{ca})
	if err != nil {
		tb.Fatal(err)
	}
	keyPEM, _ = sign.EncodePrivateKeyPEM(key)
	return [][]byte{
		raw,
		[]byte("apiVersion: v1\nkind: Config\nusers:\n- name: a\n  user:\n    client-key-data: bm90IGEga2V5\n"),
		[]byte("apiVersion: v1\nkind: Config\nusers:\n- name: a\n  user:\n    client-key-data: LS0tLS1CRUdJTiBQUklWQVRFIEtFWS0tLS0tCk1JSUIKLS0tLS1FTkQgUFJJVkFURSBLRVktLS0tLQo=\n"),
		[]byte("a: &a [x, x, x, x]\nb: &b [*a, *a, *a, *a]\nusers: [*b, *b, *b]\n"),
		[]byte("d: &d\n  <<: *d\n"),
		[]byte("users: " + strings.Repeat("[", 5000) + strings.Repeat("]", 5000) + "\n"),
		[]byte("{}"),
	}, keyPEM
}
