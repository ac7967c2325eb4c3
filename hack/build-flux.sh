#!/usr/bin/env bash
# Builds Flux's source-controller and kustomize-controller ${FLUX_VERSION} for
# gitca's Flux e2e test, through the wrapper modules in hack/flux/<controller>,
# into ${GITCA_CACHE_DIR:-$HOME/.cache/gitca}/bin/<controller>-${FLUX_VERSION},
# and copies their CRDs (config/crd/bases of each controller module) into
# ${GITCA_CACHE_DIR:-$HOME/.cache/gitca}/flux-${FLUX_VERSION}/crd/.
#
# The controllers' main packages live in modules with replace lines, which
# `go install module@version` refuses; each wrapper module copies those lines
# and names the controller as a `tool`, so `go build <controller>` from the
# wrapper builds exactly the controller's dependency graph. go.mod and go.sum
# are committed; -mod=readonly fails loudly on anything unpinned.
#
# What is already in the cache is reused; a cold build of both takes ~10 minutes
# on 2 idle cores (they share most of their dependencies through the Go build cache).
#
# Usage: hack/build-flux.sh          build what is missing
#        hack/build-flux.sh --force  rebuild both and copy the CRDs again
set -euo pipefail

FLUX_VERSION=v1.9.6
CONTROLLERS=(source-controller kustomize-controller)

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cache_dir="${GITCA_CACHE_DIR:-$HOME/.cache/gitca}"
bin_dir="$cache_dir/bin"
crd_dir="$cache_dir/flux-$FLUX_VERSION/crd"
GO=${GO:-go}

force=0
for arg in "$@"; do
	case "$arg" in
	--force) force=1 ;;
	-h | --help)
		sed -n '2,18p' "$0"
		exit 0
		;;
	*)
		echo "unknown argument: $arg" >&2
		exit 2
		;;
	esac
done

log() { echo "build-flux: $*" >&2; }

# moddir prints the module cache directory of the controller module the
# wrapper requires (downloading it if needed).
moddir() {
	(cd "$here/flux/$1" && "$GO" mod download -json "github.com/fluxcd/$1" |
		sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
}

mkdir -p "$bin_dir"
tmp=$(mktemp -d "$bin_dir/.build-flux.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

# CRDs first: cheap, and the e2e test needs both halves.
if [[ $force == 1 || ! -f $crd_dir/.complete ]]; then
	mkdir -p "$tmp/crd"
	for c in "${CONTROLLERS[@]}"; do
		dir=$(moddir "$c")
		[[ -d $dir/config/crd/bases ]] || {
			log "no config/crd/bases in github.com/fluxcd/$c@$FLUX_VERSION ($dir)"
			exit 1
		}
		cp "$dir"/config/crd/bases/*.yaml "$tmp/crd/"
	done
	chmod u+w "$tmp"/crd/*.yaml
	touch "$tmp/crd/.complete"
	rm -rf "$crd_dir"
	mkdir -p "$(dirname "$crd_dir")"
	mv "$tmp/crd" "$crd_dir"
	log "CRDs in $crd_dir: $(cd "$crd_dir" && ls *.yaml | tr '\n' ' ')"
else
	log "cached: $crd_dir"
fi

start=$(date +%s)
built=0
for c in "${CONTROLLERS[@]}"; do
	out="$bin_dir/$c-$FLUX_VERSION"
	if [[ $force == 0 && -x $out ]]; then
		log "cached: $out"
		continue
	fi
	log "building $c $FLUX_VERSION into $bin_dir (cold: ~5 min each)"
	t0=$(date +%s)
	(
		cd "$here/flux/$c"
		CGO_ENABLED=0 "$GO" build -mod=readonly -trimpath -ldflags "-s -w" -o "$tmp/$c" "github.com/fluxcd/$c"
	)
	mv -f "$tmp/$c" "$out"
	built=1
	log "built $out ($(du -h "$out" | cut -f1)) in $(($(date +%s) - t0))s"
done
if [[ $built == 1 ]]; then
	log "took $(($(date +%s) - start))s"
fi
