package sign_test

import (
	"testing"

	"github.com/gitca-dev/gitca/sign"
	"github.com/gitca-dev/gitca/topology"
)

// BenchmarkGenerateKey measures the raw key generation floor per algorithm
// (ECDSA-P256 about 20 µs on the project machine; RSA is seconds and varies a lot).
func BenchmarkGenerateKey(b *testing.B) {
	for _, alg := range topology.KeyAlgorithms {
		b.Run(string(alg), func(b *testing.B) {
			for b.Loop() {
				if _, err := sign.GenerateKey(alg, nil); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkSignLeaf measures issuing one server certificate from an intermediate
// whose key is of the named algorithm (ECDSA-P256 about 240 µs on the project
// machine), the per-certificate cost of a full sign.
func BenchmarkSignLeaf(b *testing.B) {
	for _, alg := range topology.KeyAlgorithms {
		b.Run(string(alg), func(b *testing.B) {
			caKey := cachedKey(b, alg, 0)
			leafKey := cachedKey(b, alg, 1)
			ca, err := sign.SignCertificate(caSpec("bench CA", nil, years(10)), caKey.Public(), nil, caKey, nil)
			if err != nil {
				b.Fatal(err)
			}
			spec := sign.CertSpec{
				Subject:     topology.Subject{CommonName: "bench"},
				Profile:     topology.ProfileServer,
				DNSNames:    testDNS,
				IPAddresses: testIPs,
				NotBefore:   signNow.Add(-sign.Backdate),
				NotAfter:    signNow.Add(years(1)),
			}
			for b.Loop() {
				if _, err := sign.SignCertificate(spec, leafKey.Public(), ca, caKey, nil); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
