#!/usr/bin/env bash
# make demo: render the embedded kubeadm example into a temporary state directory
# with a freshly generated age key, show the plan and the tree, prove a second
# run is a no-op, and decrypt one Secret with the real sops CLI.
set -euo pipefail
cd "$(dirname "$0")/.."
export SOPS_DISABLE_VERSION_CHECK=1
GITCA=${GITCA:-bin/gitca}
work=$(mktemp -d "${TMPDIR:-/tmp}/gitca-demo.XXXXXX")
echo "== working in $work"
state=$work/state

echo "== generating an age identity"
export SOPS_AGE_RECIPIENTS=$($GITCA keygen --out "$work/age.key")
export SOPS_AGE_KEY_FILE=$work/age.key
echo "recipient: $SOPS_AGE_RECIPIENTS"

echo; echo "== gitca plan (empty state: everything is created)"
$GITCA plan --topology examples/kubeadm --state "$state"

echo; echo "== gitca render"
$GITCA render --topology examples/kubeadm --state "$state"

echo; echo "== the state tree"
(cd "$state" && find . -type f | sort)

echo; echo "== a sealed Secret (certificates readable, keys encrypted)"
sed -n '1,40p' "$state/clusters/demo/kube-system/secret-demo-apiserver.yaml"

echo; echo "== the second run plans only keeps and writes nothing"
$GITCA render --topology examples/kubeadm --state "$state"

echo; echo "== a year later: the renewals"
$GITCA plan --topology examples/kubeadm --state "$state" --now "$(date -u -d '+1 year -3 days' +%Y-%m-%dT%H:%M:%SZ)"

if command -v sops >/dev/null; then
  echo; echo "== sops CLI decrypts it (key fingerprint only)"
  sops --decrypt "$state/clusters/demo/kube-system/secret-demo-apiserver.yaml" | grep -c "BEGIN PRIVATE KEY" | sed 's/^/private keys after decryption: /'
fi

echo; echo "== export kubeadm layout for node cp-0"
$GITCA export kubeadm --state "$state" --node cp-0 --out "$work/etc-kubernetes"
echo; echo "Done. Everything is in $work (delete it when finished)."
