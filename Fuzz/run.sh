#!/usr/bin/env bash
# Builds the libFuzzer targets (swiftc -sanitize=fuzzer) from the sources they exercise and
# runs each for a bounded time on its committed corpus (Fuzz/corpus/*). A crash fails the
# script; libFuzzer leaves the input as .build/fuzz/crash-* (add it to the corpus once fixed).
# FUZZ_SECONDS (default 60) bounds each target.
set -euo pipefail
cd "$(dirname "$0")/.."
out=.build/fuzz
mkdir -p "$out/records" "$out/wire"
secs=${FUZZ_SECONDS:-60}
swiftc -O -sanitize=fuzzer -parse-as-library -module-name RecordFuzz \
    Sources/LeaseFormat/*.swift Fuzz/RecordFuzz.swift -o "$out/record-fuzz"
swiftc -O -sanitize=fuzzer -parse-as-library -module-name WireFuzz \
    Sources/DiskLeaseClient/Wire.swift Sources/DiskLeaseClient/LockspaceSpec.swift Fuzz/WireFuzz.swift \
    -o "$out/wire-fuzz"
for t in record:records wire:wire; do
    name=${t%%:*} corpus=${t##*:}
    # New inputs go to .build (the committed corpus stays as it is); crashes to $out.
    "$out/$name-fuzz" -max_total_time="$secs" -max_len=8200 -print_final_stats=1 \
        -artifact_prefix="$out/" "$out/$corpus" "Fuzz/corpus/$corpus" 2>&1 | tail -4
    echo "fuzz $name: ${secs}s, no crash"
done
