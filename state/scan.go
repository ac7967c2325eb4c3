package state

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"os"
	"regexp"
	"sort"
)

// Finding is one plaintext secret found by ScanPlaintextKeys. It locates the
// secret and says what kind it is; it never carries the secret itself.
type Finding struct {
	Path string // slash-separated, relative to the scanned directory
	Line int    // 1-based line where the secret starts
	What string
}

func (f Finding) String() string { return fmt.Sprintf("%s:%d: %s", f.Path, f.Line, f.What) }

var (
	// A PEM private key block of any label (PRIVATE KEY, RSA/EC/OPENSSH
	// PRIVATE KEY, ENCRYPTED PRIVATE KEY); the matching END marker must follow
	// so that prose or code merely naming the marker is not reported.
	pemBegin = regexp.MustCompile(`-----BEGIN ((?:[A-Z0-9]+ )*PRIVATE KEY)-----`)
	// age X25519 and hybrid identities: the prefix, then bech32 data.
	ageSecret = regexp.MustCompile(`AGE-SECRET-KEY-(?:PQ-)?1[QPZRY9X8GF2TVDW0S3JN54KHCE6MUA7L]{20,}`)
	// Base64 of "-----BEGIN" — how a PEM key looks inside a Secret's data: or a
	// kubeconfig's client-key-data.
	base64PEM = regexp.MustCompile(`LS0tLS1CRUdJTi[A-Za-z0-9+/]*={0,2}`)
	// A SOPS-encrypted value; its content is ciphertext and is blanked before scanning.
	sopsValue = regexp.MustCompile(`ENC\[AES256_GCM,[^\]]*\]`)
)

// maxScanSize bounds how much of one file is read; state files are small.
const maxScanSize = 32 << 20

// ScanPlaintextKeys walks dir (skipping .git) and reports every file that
// contains a PEM private key or an age secret key ("AGE-SECRET-KEY-") outside
// a SOPS ENC[...] value, PEM keys also when base64-encoded (Secret data:,
// kubeconfig client-key-data). Findings are sorted by path and line.
// Symbolic links and special files are not followed or opened; the first
// maxScanSize bytes of each file are scanned.
func ScanPlaintextKeys(dir string) ([]Finding, error) {
	return ScanPlaintextKeysContext(context.Background(), dir)
}

// ScanPlaintextKeysContext is ScanPlaintextKeys, stopped by ctx.
func ScanPlaintextKeysContext(ctx context.Context, dir string) ([]Finding, error) {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, fmt.Errorf("scanning %s for plaintext keys: %w", dir, err)
	}
	defer root.Close()
	tr := newTreeReader(root)
	defer tr.Close()
	var out []Finding
	err = walkTree(ctx, root, func(name string) bool { return name == ".git" }, true, nil, func(rel string) error {
		b, err := readHead(tr, rel, maxScanSize)
		if err != nil {
			return err
		}
		for _, f := range scanBytes(b) {
			f.Path = rel
			out = append(out, f)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("scanning %s for plaintext keys: %w", dir, err)
	}
	sort.SliceStable(out, func(i, j int) bool {
		if out[i].Path != out[j].Path {
			return out[i].Path < out[j].Path
		}
		return out[i].Line < out[j].Line
	})
	return out, nil
}

func readHead(tr *treeReader, rel string, limit int64) ([]byte, error) {
	f, _, err := tr.open(rel)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var b bytes.Buffer
	_, err = b.ReadFrom(io.LimitReader(f, limit))
	return b.Bytes(), err
}

// scanBytes finds secrets in one file's content; Path is left empty.
func scanBytes(b []byte) []Finding {
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
		out = append(out, Finding{Line: lineAt(text, m[0]), What: "age secret key"})
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
