package state

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"sort"

	"github.com/gitca-dev/gitca/internal/keyscan"
)

// Finding is one plaintext secret found by ScanPlaintextKeys. It locates the
// secret and says what kind it is; it never carries the secret itself.
type Finding struct {
	Path string // slash-separated, relative to the scanned directory
	Line int    // 1-based line where the secret starts
	What string
}

func (f Finding) String() string { return fmt.Sprintf("%s:%d: %s", f.Path, f.Line, f.What) }

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
	var out []Finding
	for _, f := range keyscan.Scan(b) {
		out = append(out, Finding{Line: f.Line, What: f.What})
	}
	return out
}
