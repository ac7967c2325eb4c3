#!/usr/bin/env bash
# make demo: the whole GitOps loop on local repositories. A bare topology repo
# holding examples/kubeadm, an empty bare state repo, a fresh age key; then
# gitca reconcile three times: the first run lands one commit, the second
# none, a run a year later (minus a few days) only the renewals. Ends with the
# state repo's history and the kubeadm layout exported from a checkout.
set -euo pipefail
cd "$(dirname "$0")/.."
export SOPS_DISABLE_VERSION_CHECK=1
# Keep the demo's commits and clones away from the user's git configuration.
export GIT_CONFIG_NOSYSTEM=1 GIT_CONFIG_GLOBAL=/dev/null
export GIT_AUTHOR_NAME="Platform Team" GIT_AUTHOR_EMAIL=platform@example.test
export GIT_COMMITTER_NAME="$GIT_AUTHOR_NAME" GIT_COMMITTER_EMAIL="$GIT_AUTHOR_EMAIL"
unset SOPS_AGE_KEY SOPS_AGE_RECIPIENTS
GITCA=${GITCA:-bin/gitca}
GITCA=$(cd "$(dirname "$GITCA")" && pwd)/$(basename "$GITCA")
work=$(mktemp -d "${TMPDIR:-/tmp}/gitca-demo.XXXXXX")
echo "== working in $work"

echo; echo "== a topology repo (examples/kubeadm) and an empty state repo, both bare"
git init -q --bare -b main "$work/topology.git"
git init -q --bare -b main "$work/state.git"
git init -q -b main "$work/topology"
cp examples/kubeadm/*.yaml "$work/topology/"
git -C "$work/topology" add .
git -C "$work/topology" commit -q -m "kubeadm cluster demo"
git -C "$work/topology" push -q "$work/topology.git" HEAD:main
git -C "$work/topology.git" log --oneline main

echo; echo "== the reconciler's age identity (gitca keygen)"
recipient=$("$GITCA" keygen --out "$work/age.key")
export SOPS_AGE_KEY_FILE=$work/age.key
echo "recipient: $recipient (the topology names none, so gitca encrypts to this one)"

reconcile() {
  "$GITCA" reconcile --topology "file://$work/topology.git#main" --state "file://$work/state.git#main" \
    --cache-dir "$work/cache" "$@"
}

echo; echo "== gitca reconcile: everything is created, one commit"
reconcile

echo; echo "== gitca reconcile again: nothing to do, no commit"
reconcile

later=$(date -u -d '+1 year -5 days' +%Y-%m-%dT%H:%M:%SZ)
echo; echo "== gitca reconcile --now $later: only the renewals"
reconcile --now "$later"

echo; echo "== git log --stat of the state repo ($(git -C "$work/state.git" rev-list --count main) commits)"
git -C "$work/state.git" log --stat=100 main

echo; echo "== export kubeadm layout for node cp-0 from a checkout of the state"
git clone -q "$work/state.git" "$work/state"
"$GITCA" export kubeadm --state "$work/state" --node cp-0 --out "$work/etc-kubernetes"

echo; echo "== a pull request adds an auditor kubeconfig: what a reviewer sees (gitca plan -o markdown)"
cat >> "$work/topology/kubeadm.yaml" <<'YAML'
---
apiVersion: gitca.dev/v1alpha1
kind: Kubeconfig
metadata:
  name: auditor
spec:
  issuer: demo-ca
  username: auditor
  target: {server: "https://127.0.0.1:6443", ca: demo-ca}
  secret: {cluster: demo}
  authorization:
    clusterRoleBindings: {cluster: demo, clusterRoles: [view]}
YAML
rc=0
"$GITCA" plan --topology "$work/topology" --state "$work/state" -o markdown --detailed-exitcode || rc=$?
echo "(gitca plan --detailed-exitcode: $rc; 2 means a render would write, as a CI check would fail)"
echo; echo "Done. Everything is in $work (delete it when finished)."
