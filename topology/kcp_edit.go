package topology

import (
	"fmt"
	"strings"

	"go.yaml.in/yaml/v3"
)

// RemoveKCPKubeconfig deletes the entry name of spec.kcp.kubeconfigs from
// the Preset document preset in a topology file's text, with the comment
// lines right above it, and leaves every other line as it was: a kcp
// kubeconfig is declared there, not as a document of its own, and its
// revocation is reviewed as that one removal.
func RemoveKCPKubeconfig(data []byte, preset, name string) ([]byte, error) {
	spec, err := findSpec(data, RotationTarget{Kind: KindPreset, Name: preset})
	if err != nil {
		return nil, err
	}
	kcpKey, kcp := lookupKey(spec.val, "kcp")
	if kcpKey == nil || kcp.Kind != yaml.MappingNode {
		return nil, fmt.Errorf("Preset %q has no spec.kcp mapping", preset)
	}
	listKey, list := lookupKey(kcp, "kubeconfigs")
	switch {
	case listKey == nil || list.Kind != yaml.SequenceNode:
		return nil, fmt.Errorf("Preset %q has no spec.kcp.kubeconfigs list", preset)
	case list.Style&yaml.FlowStyle != 0:
		return nil, fmt.Errorf("line %d: spec.kcp.kubeconfigs is written in flow style ([...]); write it as a block sequence, or edit it by hand", listKey.Line)
	}
	lines := strings.Split(string(data), "\n")
	// dashLine is the index of the line holding an entry's "-".
	dashLine := func(item *yaml.Node) int {
		i := item.Line - 1
		for i > 0 && !strings.HasPrefix(strings.TrimSpace(lines[i]), "-") {
			i--
		}
		return i
	}
	isComment := func(l string) bool { return strings.HasPrefix(strings.TrimSpace(l), "#") }
	for i, item := range list.Content {
		if item.Kind != yaml.MappingNode {
			continue
		}
		if _, n := lookupKey(item, "name"); n == nil || n.Value != name {
			continue
		}
		start := dashLine(item)
		dashCol := len(lines[start]) - len(strings.TrimLeft(lines[start], " "))
		var end int // exclusive
		if i+1 < len(list.Content) {
			end = dashLine(list.Content[i+1])
		} else {
			end = start + 1
			for end < len(lines) {
				l := lines[end]
				indent := len(l) - len(strings.TrimLeft(l, " "))
				if strings.TrimSpace(l) != "" && indent <= dashCol {
					break
				}
				end++
			}
		}
		// Comments and blank lines before the next entry are the next entry's.
		for end > start+1 && (strings.TrimSpace(lines[end-1]) == "" || isComment(lines[end-1])) {
			end--
		}
		for start > 0 && isComment(lines[start-1]) {
			start--
		}
		out := append(append([]string{}, lines[:start]...), lines[end:]...)
		if len(list.Content) == 1 {
			at := listKey.Line - 1
			out[at] = replaceValue(out[at], listKey.Column-1, "kubeconfigs", "[]")
		}
		return []byte(strings.Join(out, "\n")), nil
	}
	return nil, fmt.Errorf("Preset %q declares no kubeconfig %q in spec.kcp.kubeconfigs", preset, name)
}
