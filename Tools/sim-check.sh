#!/usr/bin/env bash
# The simulator on the release build: every daemon host runs the host core diskleased runs.
# At least 10,000 seeds with every fault kind must pass, and so must the churn, join-storm and
# whole-second profiles; every broken rule the random search reaches must be caught within
# its seed budget (exit 70 with the seed). The rules it reaches only rarely are pinned by
# directed schedules (Tests/ProtocolTests/InterleavingTests.swift) and the host-core tests,
# and all of them by the spin model (Model/check.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
# The release build every script shares (bench.sh too): static, as installed on hosts.
swift build -c release --static-swift-stdlib 2>&1 | tail -1
bin=$(swift build -c release --static-swift-stdlib --show-bin-path)/disklease
SEEDS=${SIM_SEEDS:-10000}
PROFILE_SEEDS=${SIM_PROFILE_SEEDS:-2000}

run_clean() {
    local start=$SECONDS
    "$bin" simulate --seed 1 --seeds "$1" "${@:2}" | tail -1
    echo "   ($(( SECONDS - start )) s)"
}
echo "== simulator: $SEEDS seeds, all fault kinds, per-host timeouts, a direct host"
run_clean "$SEEDS"
echo "== simulator: $PROFILE_SEEDS seeds, churn profile (leaves, rejoins, ballots disrupted mid-way)"
run_clean "$PROFILE_SEEDS" --churn
echo "== simulator: $PROFILE_SEEDS seeds, join-storm profile, one contended resource"
run_clean "$PROFILE_SEEDS" --join-storm
echo "== simulator: $PROFILE_SEEDS seeds, whole-second time (every event on a one-second grid)"
run_clean "$PROFILE_SEEDS" --coarse-clock

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
echo "simulator: $caught of 6 mutants caught; clean runs passed"
