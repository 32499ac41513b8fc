#!/usr/bin/env bash
# Checks the live-only read model exhaustively with spin: the model must be safe as written,
# and each mutant (one safety rule removed) must produce an assertion violation.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
run() {  # $1: mutant name or NONE; prints "errors N" and whether the search was complete
    local d="$work/$1"
    mkdir -p "$d" && cd "$d"
    spin -D"$1" -a "$here/liveonly.pml" >/dev/null
    gcc -O2 -DSAFETY -DCOLLAPSE -DMEMLIM=8000 -w -o pan pan.c
    ./pan -E -m200000 -w27 > out.txt 2>&1 || true
    local errors states
    errors=$(sed -n 's/.*errors: \([0-9]*\).*/\1/p' out.txt)
    states=$(sed -n 's/^ *\([0-9.e+]*\) states, stored.*/\1/p' out.txt)
    if grep -q "Search not completed" out.txt && [[ "$errors" == 0 ]]; then
        echo "$1: search not completed"; cat out.txt; return 1
    fi
    echo "$1 errors=$errors states=$states"
}
fail=0
pids=()
for m in NONE NO_JOIN_WAIT JOIN_WAIT_EQUAL EARLY_DEAD DROP_DEAD_AT_ONCE NO_VIEW_AGE; do
    run "$m" > "$work/$m.result" 2>&1 &
    pids+=($!)
    # Two at a time: the machine has two cores and each search wants memory.
    if (( ${#pids[@]} == 2 )); then wait "${pids[@]}" || true; pids=(); fi
done
wait "${pids[@]}" 2>/dev/null || true
for m in NONE NO_JOIN_WAIT JOIN_WAIT_EQUAL EARLY_DEAD DROP_DEAD_AT_ONCE NO_VIEW_AGE; do
    line=$(cat "$work/$m.result")
    echo "spin: $line"
    if [[ "$m" == NONE ]]; then
        [[ "$line" == "NONE errors=0 "* ]] || fail=1
    else
        [[ "$line" == "$m errors=1 "* ]] || { echo "spin: mutant $m was NOT caught"; fail=1; }
    fi
done
if (( fail )); then echo "spin model check FAILED"; exit 1; fi
echo "spin model check passed: the model is safe and all 5 mutants are caught"
