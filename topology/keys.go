package topology

import (
	"bytes"
	"cmp"
	"context"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/gitca-dev/gitca/internal/keyscan"
	"go.yaml.in/yaml/v3"
)

// encryptKeyHow is the fix for a plain key, in the two forms the renderer
// opens: a sops-encrypted PEM, or a Secret manifest with stringData.tls.key.
const encryptKeyHow = "encrypt it with sops and commit only the result: " +
	"sops --encrypt --age <recipient> --input-type binary key.pem > key.sops.pem, " +
	"or with the key under stringData.tls.key of a Secret manifest: sops --encrypt --age <recipient> key.yaml > key.sops.yaml; " +
	"then delete the plain file, and rotate the key if it was ever pushed"

func plainKeyError(file string, f keyscan.Finding) *FieldError {
	msg := fmt.Sprintf("plain private key (%s): a private key must never be committed unencrypted", f.What)
	allowed := encryptKeyHow
	if f.What == keyscan.AgeSecretKey {
		msg = "plain age secret key: an age identity must never be committed"
		allowed = "remove it and rotate it; gitca reads its identity from SOPS_AGE_KEY_FILE, and the topology holds only recipients (age1...)"
	}
	return &FieldError{Pos: Position{File: file, Line: f.Line, Col: 1}, Msg: msg, Allowed: allowed}
}

// The topology repo is read by every plan, often in CI on pull requests: a
// private key in it is exposed to everyone who can read the repo or the CI
// logs. scanPlainKeys looks at the first MaxFileSize bytes of every regular file
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
		for _, f := range keyscan.Scan(b) {
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
	if found := keyscan.Scan(b); len(found) > 0 {
		v.add(o, field, fmt.Sprintf("%s holds a plain private key (%s); it must be SOPS-encrypted", p, found[0].What), encryptKeyHow)
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
