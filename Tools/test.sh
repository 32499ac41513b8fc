#!/usr/bin/env bash
# The whole test suite, from a fresh Debian machine: installs what is missing, builds, runs
# every test (unit, real O_DIRECT files and loop devices, real sanlock, protocol), the
# simulator (10,000 seeds and its mutants, release build), the spin model and its mutants,
# the fuzz targets for a bounded time, and the benchmarks (quick, exact byte counts checked).
set -euo pipefail
cd "$(dirname "$0")/.."
bash Tools/install-deps.sh --test
for tool in sanlock spin losetup; do
    command -v "$tool" >/dev/null || PATH="$PATH:/usr/sbin:/sbin"
    command -v "$tool" >/dev/null || { echo "missing $tool"; exit 1; }
done
export PATH
swift build
# Full log in .build/test.log; the console keeps failures, suites and the closing line,
# line by line (a buffered filter loses its tail if the run is cut short).
set +e
swift test 2>&1 | tee .build/test.log \
    | grep --line-buffered -v -E '^(◇|↳)|^✔ Test (".*"|[^ ]+\(.*\)) passed'
status=${PIPESTATUS[0]}
set -e
if [[ $status -ne 0 ]]; then
    # Repeat the failures last, where a log's tail shows them.
    echo "== swift test failed (exit $status); failures:"
    grep -E '^✘|recorded an issue|error:|Fatal error|signal' .build/test.log | tail -40 || true
    exit "$status"
fi
echo "== deterministic simulator (release build)"
bash Tools/sim-check.sh
echo "== spin model of live-only reads"
bash Model/check.sh
echo "== fuzzing: record and wire decoders (libFuzzer, ${FUZZ_SECONDS:-60} s each, committed corpus)"
bash Fuzz/run.sh
echo "== benchmarks build"
swift build --package-path Benchmarks 2>&1 | tail -1
echo "== side-by-side benchmark runner (quick; exact byte counts checked, timings not)"
quick=.build/bench/quick.md
BENCH_OUT=$quick BENCH_PLOTS=.build/bench/plots bash Tools/bench.sh --quick >/dev/null
# 3 round trips that read leader + request + own dblock + live hosts' dblocks + the epoch
# sector: 3·(N+2+1) sectors; full reads: 3·(area + epoch sector).
grep -q '| DiskLease in process, live | 4 | 10752 |' "$quick" || { echo "512/1M live bytes differ from 3·7·512"; exit 1; }
grep -q '| DiskLease in process, full | 4 | 3147264 |' "$quick" || { echo "512/1M full bytes differ from 3·(1 MiB+512)"; exit 1; }
grep -q '| DiskLease in process, live | 4 | 86016 |' "$quick" || { echo "4K/8M live bytes differ from 3·7·4096"; exit 1; }
grep -q '| DiskLease in process, full | 4 | 25178112 |' "$quick" || { echo "4K/8M full bytes differ from 3·(8 MiB+4096)"; exit 1; }
grep -q '| sanlock direct acquire (process) |' "$quick" || { echo "no sanlock row"; exit 1; }
grep -q '| disklease direct acquire (process, live) |' "$quick" || { echo "no disklease direct row"; exit 1; }
# Failover storm of 100 leases, batched: each lease reads 4 sectors (leader, request, ours,
# the old owner's) in each of 3 round trips and 1 in its release, plus one epoch sector per
# shared phase read: 100·13·512 + 3·512 bytes in 6 + 3 shared submits.
grep -Eq '^\| DiskLease, ballots batched \(live reads\) \| [^|]+ \| 667136 \| 9 \|' "$quick" \
    || { echo "failover storm bytes or submits differ from 100·13·512 + 3·512 in 9 submits"; exit 1; }
# Renewal with 4 live hosts: at most 2 KiB read per renewal (sanlock: the whole 1 MiB area).
renew=$(awk -F'|' '$2 ~ /^ diskleased $/ && $4 ~ /^ [0-9]+ $/ {print $4 + 0}' "$quick" | head -1)
[[ -n "$renew" ]] && (( renew <= 2048 )) || { echo "renewal reads ${renew:-?} bytes, above 2 KiB"; exit 1; }
grep -q 'permission=1000' "$quick" || { echo "the connection flood was not refused 1000 times"; exit 1; }
grep -q '| sanlock daemon, parallel clients of 8 leases |' "$quick" || { echo "no sanlock storm row"; exit 1; }
grep -q '| diskleased, parallel clients of 8 leases (live reads) |' "$quick" || { echo "no diskleased storm row"; exit 1; }
for plot in bytes-per-acquire acquire-latency slow-storage; do
    grep -q '</svg>' ".build/bench/plots/$plot.svg" || { echo "plot $plot missing"; exit 1; }
done
echo "benchmark runner ok: byte counts match their formulas"
