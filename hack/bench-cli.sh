#!/usr/bin/env bash
# Measures the gitca CLI end to end on a generated topology: N leaf certificates
# under a three-level CA tree (root → 2 intermediates → 4 issuing CAs), every
# hundredth leaf living 720h so a clock 500h later renews exactly 1%.
# Prints wall time, CPU time and peak RSS (GNU time) for: full render, no-op
# plan, no-op render, and the 1% renewal. Usage: hack/bench-cli.sh [N]
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-10000}
export SOPS_DISABLE_VERSION_CHECK=1
go build -o bin/gitca ./cmd/gitca
work=$(mktemp -d "${TMPDIR:-/tmp}/gitca-bench.XXXXXX")
trap 'rm -rf "$work"' EXIT
topo=$work/topology state=$work/state
mkdir -p "$topo"
{
  printf 'apiVersion: gitca.dev/v1alpha1\nkind: Config\nmetadata: {name: bench}\nspec:\n  clusters: [{name: prod, namespace: pki}]\n'
  printf -- '---\napiVersion: gitca.dev/v1alpha1\nkind: CertificateAuthority\nmetadata: {name: root}\nspec: {validity: 87600h}\n'
  for i in 0 1; do
    printf -- '---\napiVersion: gitca.dev/v1alpha1\nkind: CertificateAuthority\nmetadata: {name: inter-%d}\nspec: {issuer: root, validity: 43800h}\n' "$i"
    for j in 0 1; do
      printf -- '---\napiVersion: gitca.dev/v1alpha1\nkind: CertificateAuthority\nmetadata: {name: issuing-%d-%d}\nspec: {issuer: inter-%d, validity: 26280h, pathLen: 0}\n' "$i" "$j" "$i"
    done
  done
} > "$topo/cas.yaml"
awk -v n="$N" 'BEGIN {
  for (i = 0; i < n; i++) {
    f = sprintf("'"$topo"'/leafs-%02d.yaml", int(i / 1000))
    v = (i % 100 == 0) ? "720h" : "8760h"
    printf "---\napiVersion: gitca.dev/v1alpha1\nkind: Certificate\nmetadata: {name: leaf-%05d}\nspec:\n  issuer: issuing-%d-%d\n  profile: server\n  dnsNames: [leaf-%05d.svc.example.com]\n  validity: %s\n  secret: {cluster: prod}\n", i, i % 2, int(i / 2) % 2, i, v > f
  }
}'
export SOPS_AGE_RECIPIENTS=$(bin/gitca keygen --out "$work/age.key")
export SOPS_AGE_KEY_FILE=$work/age.key
t0=$(date -u +%Y-%m-%dT%H:%M:%SZ)
later=$(date -u -d "$t0 + 500 hours" +%Y-%m-%dT%H:%M:%SZ)
measure() { # label, command...
  local label=$1; shift
  /usr/bin/time -f "$label: %e s wall, %U s user, %S s sys, %M KiB peak RSS" "$@" > "$work/out.txt" 2> "$work/time.txt" || { cat "$work/out.txt" "$work/time.txt"; exit 1; }
  tail -1 "$work/time.txt"
}
echo "gitca CLI, $N leafs, $(nproc) cores, $(go version | cut -d' ' -f3), load average $(cut -d' ' -f1-3 /proc/loadavg)"
measure "full render        " bin/gitca render --topology "$topo" --state "$state" --now "$t0"
measure "no-op plan         " bin/gitca plan --topology "$topo" --state "$state" --now "$t0"
measure "no-op render (no identity)" env -u SOPS_AGE_KEY_FILE bin/gitca render --topology "$topo" --state "$state" --now "$t0"
measure "renew 1%%          " bin/gitca render --topology "$topo" --state "$state" --now "$later"
grep -E '^Plan' "$work/out.txt" || true
