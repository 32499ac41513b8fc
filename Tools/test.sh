#!/usr/bin/env bash
# The whole test suite, from a fresh Debian machine: installs what is missing, builds, runs
# every test (unit, real O_DIRECT files and loop devices, real sanlock, protocol), the
# simulator (10,000 seeds and its mutants, release build), the spin model and its mutants,
# and checks that the benchmarks still build.
set -euo pipefail
cd "$(dirname "$0")/.."
bash Tools/install-deps.sh --test
for tool in sanlock spin losetup; do
    command -v "$tool" >/dev/null || PATH="$PATH:/usr/sbin:/sbin"
    command -v "$tool" >/dev/null || { echo "missing $tool"; exit 1; }
done
export PATH
swift build
# Full log in .build/test.log; the console keeps failures, suites and the closing line.
swift test 2>&1 | tee .build/test.log | awk '!/^(◇|↳)/ && !(/^✔ Test / && !/^✔ Test run/)'
status=${PIPESTATUS[0]}
[[ $status -eq 0 ]] || { echo "swift test failed ($status)"; exit "$status"; }
echo "== deterministic simulator (release build)"
bash Tools/sim-check.sh
echo "== spin model of live-only reads"
bash Model/check.sh
echo "== benchmarks build"
swift build --package-path Benchmarks 2>&1 | tail -1
