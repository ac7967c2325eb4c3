#!/usr/bin/env bash
# govulncheck on what we ship. Its database lives at vuln.go.dev; machines
# that cannot reach it (this project's CI sandbox reaches only the module
# proxy and Debian) say so and skip, rather than fail on a network error. The
# GitHub workflow, which has the network, runs the real check.
set -uo pipefail
out=$(govulncheck ./... 2>&1); rc=$?
if [ $rc -ne 0 ] && grep -q 'fetching vulnerabilities' <<<"$out"; then
	echo "govulncheck: skipped, the vulnerability database (vuln.go.dev) is unreachable from here:"
	grep 'fetching vulnerabilities' <<<"$out" | head -1
	exit 0
fi
echo "$out"
exit $rc
