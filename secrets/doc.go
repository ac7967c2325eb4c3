package secrets

import (
	"fmt"
	"sort"
	"unicode"

	"github.com/getsops/sops/v3"
)

// A Doc is a manifest to seal, held as data: every value is a string, a Doc,
// a map[string]string or nil. Sealing a Doc writes the same bytes as sealing
// sigs.k8s.io/yaml's rendering of it, without rendering and re-parsing YAML
// for every file: for a full render that round trip cost more than the
// encryption itself.
type Doc = map[string]any

// docBranches turns a Doc into the sops tree that parsing its YAML rendering
// would give.
func docBranches(d Doc) (sops.TreeBranches, error) {
	b, err := docBranch(d)
	if err != nil {
		return nil, err
	}
	return sops.TreeBranches{b}, nil
}

func docBranch(d map[string]any) (sops.TreeBranch, error) {
	keys := sortedKeys(d)
	br := make(sops.TreeBranch, 0, len(keys))
	for _, k := range keys {
		var v any
		switch x := d[k].(type) {
		case nil, string:
			v = x
		case map[string]any:
			b, err := docBranch(x)
			if err != nil {
				return nil, fmt.Errorf("%s.%w", k, err)
			}
			v = b
		case map[string]string:
			b := make(sops.TreeBranch, 0, len(x))
			for _, kk := range sortedKeys(x) {
				b = append(b, sops.TreeItem{Key: kk, Value: x[kk]})
			}
			v = b
		default:
			return nil, fmt.Errorf("%s: a Doc holds strings and maps, not %T", k, x)
		}
		br = append(br, sops.TreeItem{Key: k, Value: v})
	}
	return br, nil
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return yamlKeyLess(keys[i], keys[j]) })
	return keys
}

// yamlKeyLess is the order in which go-yaml (v2, which sigs.k8s.io/yaml
// renders with, and v3 alike) writes the string keys of a map: letters after
// other characters, runs of digits compared as numbers. It is their keyList.Less
// for string keys, which is unexported; TestDocMatchesSigsYAML holds the two
// to the same order.
func yamlKeyLess(a, b string) bool {
	ar, br := []rune(a), []rune(b)
	for i := 0; i < len(ar) && i < len(br); i++ {
		if ar[i] == br[i] {
			continue
		}
		al, bl := unicode.IsLetter(ar[i]), unicode.IsLetter(br[i])
		if al && bl {
			return ar[i] < br[i]
		}
		if al || bl {
			return bl
		}
		var ai, bi int
		var an, bn int64
		if ar[i] == '0' || br[i] == '0' {
			for j := i - 1; j >= 0 && unicode.IsDigit(ar[j]); j-- {
				if ar[j] != '0' {
					an, bn = 1, 1
					break
				}
			}
		}
		for ai = i; ai < len(ar) && unicode.IsDigit(ar[ai]); ai++ {
			an = an*10 + int64(ar[ai]-'0')
		}
		for bi = i; bi < len(br) && unicode.IsDigit(br[bi]); bi++ {
			bn = bn*10 + int64(br[bi]-'0')
		}
		if an != bn {
			return an < bn
		}
		if ai != bi {
			return ai < bi
		}
		return ar[i] < br[i]
	}
	return len(ar) < len(br)
}
