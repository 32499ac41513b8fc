#!/usr/bin/env bash
# The simulator on the release build: at least 10,000 seeds with every fault kind must pass,
# the join-storm profile must pass, and every broken safety rule must be caught within its
# seed budget (exit 70 with the seed). joinWaitEqualsBound needs a view read, a join landing,
# a ballot starting exactly viewMaxAge later and deciding exactly ballotMaxDuration after, and
# the joiner's first ballot exactly at the join wait, all meeting at whole-second instants; the
# boundary profile (whole seconds, two hosts, leaves and rejoins, the seed's choices leaning
# towards the bounds) is what reaches it.
set -euo pipefail
cd "$(dirname "$0")/.."
# The release build every script shares (bench.sh too): static, as installed on hosts.
swift build -c release --static-swift-stdlib 2>&1 | tail -1
bin=$(swift build -c release --show-bin-path)/disklease
SEEDS=${SIM_SEEDS:-10000}

run_clean() {
    local start=$SECONDS
    "$bin" simulate --seed 1 --seeds "$1" "${@:2}" | tail -1
    echo "   ($(( SECONDS - start )) s)"
}
echo "== simulator: $SEEDS seeds, all fault kinds"
run_clean "$SEEDS"
echo "== simulator: 3000 seeds, join-storm profile, one contended resource"
run_clean 3000 --join-storm --resources 1
echo "== simulator: 3000 seeds, whole-second time (every bound met exactly, ties in seeded order)"
run_clean 3000 --coarse-clock

caught=0
expect_caught() {  # mutation budget profile...
    local m=$1 budget=$2
    shift 2
    set +e
    out=$("$bin" simulate --seed 1 --seeds "$budget" --mutation "$m" "$@")
    status=$?
    set -e
    if [[ $status -eq 70 ]]; then
        echo "caught $m: $(echo "$out" | head -1 | cut -c1-160)"
        caught=$((caught + 1))
    else
        echo "NOT caught within $budget seeds: $m"
        echo "$out" | tail -1
        exit 1
    fi
}
echo "== simulator: 3000 seeds, boundary profile (whole seconds, choices aimed at the bounds)"
run_clean 3000 --boundary

echo "== simulator: each broken rule must be caught"
expect_caught earlyDead 1000
expect_caught noViewAgeCheck 1000
expect_caught dropDeadBlocksAtOnce 2000 --join-storm --resources 1
expect_caught noJoinWait 2000 --join-storm --resources 1
expect_caught joinWaitEqualsBound 3000 --boundary
echo "simulator: $caught of 5 mutants caught; clean runs passed"
