#!/usr/bin/env bash
# The simulator on the release build: every daemon host runs the host core diskleased runs.
# At least 10,000 seeds with every fault kind must pass, and so must the churn, join-storm,
# whole-second and races profiles; every broken rule of docs/AGREEMENT.md must be caught by a
# random search within its seed budget (exit 70 with the seed). The races profile aims its
# faults at the narrow moments membership rules guard (a ballot stalled while joiners ballot,
# lost commits of hosts that then die or leave, host ids far apart so read sets are exact).
# The same rules are pinned by directed schedules (Tests/ProtocolTests/InterleavingTests.swift),
# the host-core tests and the spin model (Model/check.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
# The release build every script shares (bench.sh too): static, as installed on hosts.
swift build -c release --static-swift-stdlib 2>&1 | tail -1
bin=$(swift build -c release --static-swift-stdlib --show-bin-path)/disklease
SEEDS=${SIM_SEEDS:-10000}
PROFILE_SEEDS=${SIM_PROFILE_SEEDS:-1000}
RACES_SEEDS=${SIM_RACES_SEEDS:-500}

run_clean() {
    local start=$SECONDS
    "$bin" simulate --seed 1 --seeds "$1" "${@:2}" | tail -1
    echo "   ($(( SECONDS - start )) s)"
}
# CI has two cores and the simulator is single-threaded: the long runs go in two halves
# side by side.
run_halves() {  # seeds profile...
    local start=$SECONDS n=$1 half=$(( $1 / 2 )) a b
    shift
    a=$(mktemp); b=$(mktemp)
    "$bin" simulate --seed 1 --seeds "$half" "$@" > "$a" &
    local pa=$!
    "$bin" simulate --seed $(( half + 1 )) --seeds $(( n - half )) "$@" > "$b" &
    local pb=$!
    local fa=0 fb=0
    wait $pa || fa=$?
    wait $pb || fb=$?
    tail -1 "$a"; tail -1 "$b"
    if [[ $fa -ne 0 || $fb -ne 0 ]]; then cat "$a" "$b" | grep -A1 VIOLATION; rm -f "$a" "$b"; exit 1; fi
    rm -f "$a" "$b"
    echo "   ($(( SECONDS - start )) s)"
}
echo "== simulator: $SEEDS seeds, all fault kinds, per-host timeouts, a direct host"
run_halves "$SEEDS"
echo "== simulator: $PROFILE_SEEDS seeds, churn profile (leaves, rejoins, ballots disrupted mid-way)"
run_clean "$PROFILE_SEEDS" --churn
echo "== simulator: $PROFILE_SEEDS seeds, join-storm profile, one contended resource"
run_clean "$PROFILE_SEEDS" --join-storm
echo "== simulator: $PROFILE_SEEDS seeds, whole-second time (every event on a one-second grid)"
run_clean "$PROFILE_SEEDS" --coarse-clock
echo "== simulator: $RACES_SEEDS seeds, races profile (aimed at membership races; 80,000 events each)"
run_halves "$RACES_SEEDS" --races

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
echo "== simulator: each broken rule it reaches must be caught"
expect_caught noEpochCheck 500
expect_caught convertRetractWithoutShared 500
expect_caught restartWithoutKillingLeftovers 500
expect_caught feedWatchdogWhileVictimLives 500
expect_caught noLverFloor 1000 --coarse-clock
expect_caught epochWithDelta 300 --join-storm
# Seeds of the races profile that caught them when the budgets were set: leaveDuringBallot 9,
# dropDeadBlocks 2, dropLeftAtOnce 2, epochCheckPhase1Only 47, buildInOneBatch 370,
# epochCounter 488.
expect_caught leaveDuringBallot 200 --races
expect_caught dropDeadBlocks 200 --races
expect_caught dropLeftAtOnce 200 --races
expect_caught epochCheckPhase1Only 400 --races
# The two that take a few hundred seeds, side by side.
expect_caught buildInOneBatch 1000 --races > "${TMPDIR:-/tmp}/sim-check-b.txt" &
pb=$!
expect_caught epochCounter 1000 --races
wait $pb || { cat "${TMPDIR:-/tmp}/sim-check-b.txt"; exit 1; }
cat "${TMPDIR:-/tmp}/sim-check-b.txt"
caught=$((caught + 1))  # counted in the background shell
echo "simulator: $caught of 12 mutants caught; clean runs passed"
