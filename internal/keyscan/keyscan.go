// Package keyscan finds private keys committed in plain text (PEM blocks,
// base64 PEM inside Secret data or kubeconfigs, age identities) without ever
// returning their content: the one scanner for the topology and the state.
package keyscan

import (
	"bytes"
	"encoding/base64"
	"regexp"
)

// Finding is one plain key: its line and what it is ("PEM EC PRIVATE KEY",
// "age secret key"), never the key itself.
type Finding struct {
	Line int
	What string
}

// AgeSecretKey is the What of an age identity.
const AgeSecretKey = "age secret key"

var (
	// A PEM private key block of any label (PRIVATE KEY, RSA/EC/OPENSSH
	// PRIVATE KEY, ENCRYPTED PRIVATE KEY); the matching END marker must follow
	// so that prose or code merely naming the marker is not reported.
	pemBegin = regexp.MustCompile(`-----BEGIN ((?:[A-Z0-9]+ )*PRIVATE KEY)-----`)
	// age X25519 and hybrid identities: the prefix, then bech32 data.
	ageSecret = regexp.MustCompile(`AGE-SECRET-KEY-(?:PQ-)?1[QPZRY9X8GF2TVDW0S3JN54KHCE6MUA7L]{20,}`)
	// Base64 of "-----BEGIN": how a PEM key looks inside a Secret's data: or a
	// kubeconfig's client-key-data.
	base64PEM = regexp.MustCompile(`LS0tLS1CRUdJTi[A-Za-z0-9+/]*={0,2}`)
	// A SOPS-encrypted value; its content is ciphertext and is blanked before scanning.
	sopsValue = regexp.MustCompile(`ENC\[AES256_GCM,[^\]]*\]`)
)

// Scan reports the private keys in b that are not inside a sops ENC[...] value.
func Scan(b []byte) []Finding {
	// The cheap test every state file goes through on every read. The needles
	// start with a byte that is rare in base64 and YAML ('-', 'P', 'L' after
	// "LS0t"): "AGE-SECRET-KEY-" would stop at every "AG" of a certificate.
	if !bytes.Contains(b, []byte("PRIVATE KEY-----")) && !bytes.Contains(b, []byte("-SECRET-KEY-")) &&
		!bytes.Contains(b, []byte("LS0tLS1CRUdJTi")) {
		return nil
	}
	// Blank sealed values in place (same length, so offsets and lines hold).
	text := sopsValue.ReplaceAllFunc(bytes.Clone(b), func(m []byte) []byte { return bytes.Repeat([]byte{' '}, len(m)) })
	var out []Finding
	for _, m := range pemBegin.FindAllSubmatchIndex(text, -1) {
		label := string(text[m[2]:m[3]])
		if bytes.Contains(text[m[1]:], []byte("-----END "+label+"-----")) {
			out = append(out, Finding{Line: lineAt(text, m[0]), What: "PEM " + label})
		}
	}
	for _, m := range ageSecret.FindAllIndex(text, -1) {
		out = append(out, Finding{Line: lineAt(text, m[0]), What: AgeSecretKey})
	}
	for _, m := range base64PEM.FindAllIndex(text, -1) {
		if label, ok := base64PrivateKey(text[m[0]:m[1]]); ok {
			out = append(out, Finding{Line: lineAt(text, m[0]), What: "PEM " + label + " (base64)"})
		}
	}
	return out
}

// base64PrivateKey decodes a base64 token and reports whether it holds a
// complete PEM private key block.
func base64PrivateKey(tok []byte) (string, bool) {
	dec := make([]byte, base64.StdEncoding.DecodedLen(len(tok)))
	// On malformed input (a token cut by a line wrap) Decode still returns
	// the bytes it decoded before the fault, which is enough to judge.
	n, _ := base64.StdEncoding.Decode(dec, tok)
	dec = dec[:n]
	m := pemBegin.FindSubmatchIndex(dec)
	if m == nil {
		return "", false
	}
	label := string(dec[m[2]:m[3]])
	return label, bytes.Contains(dec[m[1]:], []byte("-----END "+label+"-----"))
}

func lineAt(b []byte, off int) int { return bytes.Count(b[:off], []byte{'\n'}) + 1 }
