#!/usr/bin/env bash
# Issue 20.4's check: the whole suite three times in a row, in a clean clone of this repository's
# HEAD, while two `yes` processes keep both cores busy; stops at the first failing run. Logs go
# to ${LOGDIR:-/tmp}/suite_under_load_<k>.log. Takes about an hour on the 2-core CI machine.
set -u
src="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
logdir="${LOGDIR:-/tmp}"
clone="$(mktemp -d)/clone"
git clone -q "$src" "$clone" && cd "$clone" || exit 1
git log --oneline -1
yes > /dev/null & h1=$!
yes > /dev/null & h2=$!
trap 'kill $h1 $h2 2>/dev/null' EXIT
for i in 1 2 3; do
    echo "=== run $i start $(date -u +%H:%M:%S)"
    s=$(date +%s)
    CI=true bash .ci/run > "$logdir/suite_under_load_$i.log" 2>&1
    rc=$?
    echo "=== run $i rc=$rc $(( $(date +%s) - s )) s; $(grep -E 'passed|failed' "$logdir/suite_under_load_$i.log" | tail -1)"
    if (( rc != 0 )); then exit "$rc"; fi
done
