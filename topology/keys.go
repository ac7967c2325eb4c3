package topology

import (
	"bytes"
	"cmp"
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"

	"go.yaml.in/yaml/v3"
)

// The topology repo is read by every plan, often in CI on pull requests: a
// private key in it is exposed to everyone who can read the repo or the CI
// logs. These patterns find one without ever reporting its content.
var (
	// A PEM private key block of any label; its END marker must follow, so
	// prose that merely names the marker is not reported.
	pemKeyBegin = regexp.MustCompile(`-----BEGIN ((?:[A-Z0-9]+ )*PRIVATE KEY)-----`)
	// age X25519 and hybrid identities: the prefix, then bech32 data.
	ageSecretKey = regexp.MustCompile(`AGE-SECRET-KEY-(?:PQ-)?1[QPZRY9X8GF2TVDW0S3JN54KHCE6MUA7L]{20,}`)
	// Base64 of "-----BEGIN": a PEM key inside Secret data or kubeconfig client-key-data.
	base64PEMBegin = regexp.MustCompile(`LS0tLS1CRUdJTi[A-Za-z0-9+/]*={0,2}`)
	// A SOPS-encrypted value; ciphertext, blanked before scanning.
	sopsEncValue = regexp.MustCompile(`ENC\[AES256_GCM,[^\]]*\]`)
)

// encryptKeyHow is the fix for a plain key, in the two forms the renderer
// opens: a sops-encrypted PEM, or a Secret manifest with stringData.tls.key.
const encryptKeyHow = "encrypt it with sops and commit only the result: " +
	"sops --encrypt --age <recipient> --input-type binary key.pem > key.sops.pem, " +
	"or with the key under stringData.tls.key of a Secret manifest: sops --encrypt --age <recipient> key.yaml > key.sops.yaml; " +
	"then delete the plain file, and rotate the key if it was ever pushed"

type keyFinding struct {
	line int
	what string // "PEM EC PRIVATE KEY", "age secret key": never the key itself
}

// findPlainKeys reports the private keys in b that are not inside a sops ENC[...] value.
func findPlainKeys(b []byte) []keyFinding {
	if !bytes.Contains(b, []byte("PRIVATE KEY-----")) && !bytes.Contains(b, []byte("AGE-SECRET-KEY-")) &&
		!bytes.Contains(b, []byte("LS0tLS1CRUdJTi")) {
		return nil
	}
	// Blank sealed values in place (same length, so offsets and lines hold).
	text := sopsEncValue.ReplaceAllFunc(bytes.Clone(b), func(m []byte) []byte { return bytes.Repeat([]byte{' '}, len(m)) })
	lineAt := func(off int) int { return bytes.Count(text[:off], []byte{'\n'}) + 1 }
	var out []keyFinding
	for _, m := range pemKeyBegin.FindAllSubmatchIndex(text, -1) {
		label := string(text[m[2]:m[3]])
		if bytes.Contains(text[m[1]:], []byte("-----END "+label+"-----")) {
			out = append(out, keyFinding{lineAt(m[0]), "PEM " + label})
		}
	}
	for _, m := range ageSecretKey.FindAllIndex(text, -1) {
		out = append(out, keyFinding{lineAt(m[0]), "age secret key"})
	}
	for _, m := range base64PEMBegin.FindAllIndex(text, -1) {
		tok := text[m[0]:m[1]]
		dec := make([]byte, base64.StdEncoding.DecodedLen(len(tok)))
		// On malformed input (a token cut by a line wrap) Decode still returns
		// what it decoded before the fault, which is enough to judge.
		n, _ := base64.StdEncoding.Decode(dec, tok)
		if k := pemKeyBegin.FindSubmatchIndex(dec[:n]); k != nil {
			label := string(dec[k[2]:k[3]])
			if bytes.Contains(dec[k[1]:n], []byte("-----END "+label+"-----")) {
				out = append(out, keyFinding{lineAt(m[0]), "PEM " + label + " (base64)"})
			}
		}
	}
	return out
}

func plainKeyError(file string, f keyFinding) *FieldError {
	msg := fmt.Sprintf("plain private key (%s): a private key must never be committed unencrypted", f.what)
	allowed := encryptKeyHow
	if f.what == "age secret key" {
		msg = "plain age secret key: an age identity must never be committed"
		allowed = "remove it and rotate it; gitca reads its identity from SOPS_AGE_KEY_FILE, and the topology holds only recipients (age1...)"
	}
	return &FieldError{Pos: Position{File: file, Line: f.line, Col: 1}, Msg: msg, Allowed: allowed}
}

// scanPlainKeys looks at the first MaxFileSize bytes of every regular file
// under root, not only the YAML documents, since a key committed next to the
// topology (key.pem, a README) is as exposed. Symlinks are not followed and
// .git is skipped: its objects are compressed and the working tree is what
// the repo shows.
func scanPlainKeys(ctx context.Context, root string) (ErrorList, error) {
	r, err := os.OpenRoot(root)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	var errs ErrorList
	err = fs.WalkDir(r.FS(), ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if d.IsDir() {
			if d.Name() == ".git" {
				return fs.SkipDir
			}
			return nil
		}
		if !d.Type().IsRegular() {
			return nil
		}
		b, err := readHead(r, p, MaxFileSize)
		if err != nil {
			return err
		}
		for _, f := range findPlainKeys(b) {
			errs = append(errs, plainKeyError(p, f))
		}
		return nil
	})
	return errs, err
}

func readHead(r *os.Root, p string, limit int64) ([]byte, error) {
	f, err := r.Open(p)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(io.LimitReader(f, limit))
}

// readRepoFile reads a file that repoFile has accepted, bounded like every topology file.
func (v *validator) readRepoFile(p string) ([]byte, error) {
	r, err := os.OpenRoot(cmp.Or(v.t.Root, "."))
	if err != nil {
		return nil, err
	}
	defer r.Close()
	b, err := readHead(r, filepath.FromSlash(p), MaxFileSize+1)
	if err == nil && len(b) > MaxFileSize {
		return nil, fmt.Errorf("file is larger than %d bytes", MaxFileSize)
	}
	return b, err
}

// importedKey checks that an imported CA's key is SOPS-encrypted. Opening it
// needs the reconciler's identity, which a plan does not have, so only its
// form is checked here; the renderer checks that it matches the certificate.
func (v *validator) importedKey(o object, field, p string) {
	b, err := v.readRepoFile(p)
	if err != nil {
		v.add(o, field, fmt.Sprintf("cannot read %q: %v", p, err), allowedFile)
		return
	}
	if found := findPlainKeys(b); len(found) > 0 {
		v.add(o, field, fmt.Sprintf("%s holds a plain private key (%s); it must be SOPS-encrypted", p, found[0].what), encryptKeyHow)
		return
	}
	if !isSOPSEncrypted(p, b) {
		v.add(o, field, fmt.Sprintf("%s is not a SOPS-encrypted file (it has no top-level sops metadata)", p), encryptKeyHow)
	}
}

// isSOPSEncrypted reports whether b is a sops-encrypted YAML or JSON file (the
// forms the renderer opens): a mapping with a top-level "sops" mapping. It
// parses with the loader's limits, since the file comes from the same repo.
func isSOPSEncrypted(file string, b []byte) bool {
	if checkFileText(file, b) != nil {
		return false
	}
	ok := false
	guard(file, func() ErrorList {
		var doc yaml.Node
		if yaml.NewDecoder(bytes.NewReader(b)).Decode(&doc) != nil || len(doc.Content) == 0 {
			return nil
		}
		// Only the top-level keys are looked at, so aliases are never followed.
		if m := doc.Content[0]; m.Kind == yaml.MappingNode {
			for i := 0; i+1 < len(m.Content); i += 2 {
				if m.Content[i].Value == "sops" && m.Content[i+1].Kind == yaml.MappingNode {
					ok = true
				}
			}
		}
		return nil
	})
	return ok
}
