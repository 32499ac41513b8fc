#!/usr/bin/env bash
# Side-by-side benchmark: DiskLease (in process, live and full reads; and `disklease direct`
# as a process) against real sanlock (`sanlock direct`, as a process) on the same file, in
# one run. Writes docs/BENCHMARKS.md. `--quick` (CI) uses fewer runs and host counts.
# Exact counts (bytes, submits) come from our device counters and from strace of sanlock's
# io_submit calls; latencies are medians with min–max over the runs.
set -euo pipefail
cd "$(dirname "$0")/.."
quick=0
[[ "${1:-}" == "--quick" ]] && quick=1
bash Tools/install-deps.sh --test
command -v strace >/dev/null || { echo "installing strace"; apt-get install -y -qq strace >/dev/null; }
swift build -c release --product disklease 2>&1 | tail -1
bin=$(swift build -c release --show-bin-path)/disklease
work=${BENCH_DIR:-.build/bench}
rm -rf "$work"; mkdir -p "$work"
out=${BENCH_OUT:-docs/BENCHMARKS.md}
runs=$(( quick ? 5 : 30 ))
hosts_list=$([[ $quick -eq 1 ]] && echo "1 4 16" || echo "1 4 16 64 250 2000")
proc_runs=$(( quick ? 3 : 15 ))

median() { sort -n | awk '{a[NR]=$1} END {m=a[int((NR+1)/2)]; printf "%.2f %.2f %.2f", m, a[1], a[NR]}'; }
ms() { awk "BEGIN {printf \"%.2f\", $1 / 1000}"; }

fs=$(df -T "$work" | awk 'NR==2 {print $2}')
dev=$(df "$work" | awk 'NR==2 {print $1}')
{
echo "# Benchmarks: DiskLease vs sanlock $(sanlock version 2>/dev/null | head -1 | awk '{print $NF}')"
echo
echo "Measured $(date -u +%Y-%m-%d) on $(uname -sr), $(nproc) cores, a file on $fs ($dev), by \`bash Tools/bench.sh$([[ $quick -eq 1 ]] && echo " --quick")\`."
echo "Bytes and submits are exact per operation; times are median (min–max) over the runs."
echo
} > "$out"

for geo in "512 1M 1048576" "4096 8M 8388608"; do
    set -- $geo
    ss=$1 align=$2 asz=$3
    img="$(pwd)/$work/lease-$ss.img"
    truncate -s $((asz * 3)) "$img"
    "$bin" init lockspace "LS:0:$img:0" -Z "$ss" -A "$align" --io-timeout 10 >/dev/null
    "$bin" init resource "LS:r1:$img:$asz" -Z "$ss" -A "$align" >/dev/null
    "$bin" init resource "LS:r2:$img:$((asz * 2))" -Z "$ss" -A "$align" >/dev/null
    echo "## $ss-byte sectors, $align areas" >> "$out"
    echo >> "$out"
    echo "| who | live hosts | bytes read / acquire | bytes written / acquire | submits / acquire | acquire (ms) | acquire+release (ms) |" >> "$out"
    echo "| --- | ---: | ---: | ---: | ---: | --- | --- |" >> "$out"
    for n in $hosts_list; do
        for mode in live full; do
            j=$("$bin" bench acquire -s "LS:1:$img:0" -r "LS:r1:$img:$asz" --live-hosts "$n" --mode "$mode" --runs "$runs")
            get() { echo "$j" | sed -E "s/.*\"$1\":([0-9.]+).*/\1/"; }
            stat() { echo "$j" | sed -E "s/.*\"$1\":\{\"median\":([0-9.]+),\"min\":([0-9.]+),\"max\":([0-9.]+)\}.*/\1 \2 \3/"; }
            read am amin amax <<<"$(stat acquire_us)"
            read cm cmin cmax <<<"$(stat cycle_us)"
            echo "| DiskLease in process, $mode | $n | $(get acquire_bytes_read) | $(get acquire_bytes_written) | $(get acquire_submits) | $(ms $am) ($(ms $amin)–$(ms $amax)) | $(ms $cm) ($(ms $cmin)–$(ms $cmax)) |" >> "$out"
            echo "$ss $n $mode $(get acquire_bytes_read) $am" >> "$work/inproc.txt"
        done
    done
    # The daemonless paths as processes, like for like: one acquire and one release each, on a
    # fresh lockspace (io_timeout 1 so the one-time join wait is short).
    img="$(pwd)/$work/direct-$ss.img"
    truncate -s $((asz * 3)) "$img"
    "$bin" init lockspace "LS:0:$img:0" -Z "$ss" -A "$align" --io-timeout 1 >/dev/null
    "$bin" init resource "LS:r1:$img:$asz" -Z "$ss" -A "$align" >/dev/null
    "$bin" init resource "LS:r2:$img:$((asz * 2))" -Z "$ss" -A "$align" >/dev/null
    sanlock direct acquire_id -s "LS:1:$img:0" -o 1 >/dev/null
    "$bin" direct join -s "LS:2:$img:0" --name dl:bench-direct >/dev/null
    "$bin" direct acquire -s "LS:2:$img:0" -r "LS:r2:$img:$((asz * 2))" --wait >/dev/null   # join wait once
    "$bin" direct release -s "LS:2:$img:0" -r "LS:r2:$img:$((asz * 2))" >/dev/null
    : > "$work/s.txt"; : > "$work/d.txt"
    for i in $(seq "$proc_runs"); do
        t0=$(date +%s%N)
        sanlock direct acquire -r "LS:r1:$img:$asz" -i 1 -g 1 >/dev/null
        t1=$(date +%s%N)
        sanlock direct release -r "LS:r1:$img:$asz" -i 1 -g 1 >/dev/null
        echo "$(( (t1 - t0) / 1000 ))" >> "$work/s.txt"
        t0=$(date +%s%N)
        "$bin" direct acquire -s "LS:2:$img:0" -r "LS:r2:$img:$((asz * 2))" >/dev/null
        t1=$(date +%s%N)
        "$bin" direct release -s "LS:2:$img:0" -r "LS:r2:$img:$((asz * 2))" >/dev/null
        echo "$(( (t1 - t0) / 1000 ))" >> "$work/d.txt"
    done
    strace -f -e trace=io_submit -o "$work/strace.txt" sanlock direct acquire -r "LS:r1:$img:$asz" -i 1 -g 1 >/dev/null
    sanlock direct release -r "LS:r1:$img:$asz" -i 1 -g 1 >/dev/null
    sread=$(grep -o 'IOCB_CMD_PREAD[^}]*aio_nbytes=[0-9]*' "$work/strace.txt" | sed 's/.*aio_nbytes=//' | paste -sd+ | bc)
    swrite=$(grep -o 'IOCB_CMD_PWRITE[^}]*aio_nbytes=[0-9]*' "$work/strace.txt" | sed 's/.*aio_nbytes=//' | paste -sd+ | bc)
    ssub=$(grep -c 'io_submit(' "$work/strace.txt")
    read sm smin smax <<<"$(median < "$work/s.txt")"
    read dm dmin dmax <<<"$(median < "$work/d.txt")"
    echo "| sanlock direct acquire (process) | – | $sread | $swrite | $ssub | $(ms $sm) ($(ms $smin)–$(ms $smax)) | |" >> "$out"
    echo "| disklease direct acquire (process, full) | – | (lockspace + full) | | | $(ms $dm) ($(ms $dmin)–$(ms $dmax)) | |" >> "$out"
    echo >> "$out"
    live4=$(awk -v s="$ss" '$1==s && $2==4 && $3=="live" {print $4, $5}' "$work/inproc.txt")
    full4=$(awk -v s="$ss" '$1==s && $2==4 && $3=="full" {print $4, $5}' "$work/inproc.txt")
    read lb lus <<<"$live4"
    read fb fus <<<"$full4"
    {
    echo "Ratios at 4 live hosts ($ss/$align): bytes read per acquire, DiskLease live / sanlock = $lb / $sread = $(awk "BEGIN {printf \"%.4f\", $lb / $sread}") (1/$(awk "BEGIN {printf \"%.0f\", $sread / $lb}")); in-process acquire latency live / full = $(awk "BEGIN {printf \"%.2f\", $lus / $fus}"); process-level acquire latency disklease direct / sanlock direct = $(awk "BEGIN {printf \"%.2f\", $dm / $sm}")."
    echo
    } >> "$out"
done
# Join to first lease, daemon against daemon, at io_timeout 2: a fresh lockspace per side,
# the daemon already running, timed from add_lockspace to an acquired lease.
echo "## Join to first acquired lease (daemons, io_timeout 2)" >> "$out"
echo >> "$out"
echo "| who | seconds (median, min–max) | what it waits for |" >> "$out"
echo "| --- | --- | --- |" >> "$out"
swift build -c release --product diskleased 2>&1 | tail -1
dbin=$(swift build -c release --show-bin-path)/diskleased
join_runs=$(( quick ? 1 : 3 ))
: > "$work/jd.txt"; : > "$work/js.txt"
for i in $(seq "$join_runs"); do
    for side in d s; do
        img="$(pwd)/$work/join-$side-$i.img"
        truncate -s $((3 * 1048576)) "$img"
        "$bin" init lockspace "LS:0:$img:0" --io-timeout 2 >/dev/null
        "$bin" init resource "LS:r1:$img:1048576" >/dev/null
    done
    rd="$(pwd)/$work/jrun-$i"; mkdir -p "$rd"
    "$dbin" --config /dev/null --run-dir "$rd" --io-timeout 2 --watchdog-fire-timeout 60 --watchdog-device none >"$work/jd-$i.log" 2>&1 &
    dpid=$!
    for _ in $(seq 50); do [[ -S "$rd/diskleased.sock" ]] && break; sleep 0.1; done
    t0=$(date +%s%N)
    "$bin" client add-lockspace --run-dir "$rd" -s "LS:1:$(pwd)/$work/join-d-$i.img:0" --wait >/dev/null
    "$bin" client acquire --run-dir "$rd" -r "LS:r1:$(pwd)/$work/join-d-$i.img:1048576" >/dev/null
    t1=$(date +%s%N)
    echo "$(( (t1 - t0) / 1000 ))" >> "$work/jd.txt"
    kill -TERM "$dpid"; wait "$dpid" || true
    sd="$(pwd)/$work/srun-$i"; mkdir -p "$sd"
    SANLOCK_RUN_DIR="$sd" SANLOCK_PRIVILEGED=0 sanlock daemon -D -w 0 -U root -G root -o 2 >/dev/null 2>&1 &
    spid=$!
    for _ in $(seq 50); do SANLOCK_RUN_DIR="$sd" sanlock client status >/dev/null 2>&1 && break; sleep 0.1; done
    t0=$(date +%s%N)
    SANLOCK_RUN_DIR="$sd" sanlock client add_lockspace -s "LS:1:$(pwd)/$work/join-s-$i.img:0" -o 2 >/dev/null
    SANLOCK_RUN_DIR="$sd" sanlock client command -r "LS:r1:$(pwd)/$work/join-s-$i.img:1048576" -c /bin/true >/dev/null
    t1=$(date +%s%N)
    echo "$(( (t1 - t0) / 1000 ))" >> "$work/js.txt"
    kill -9 "$spid"; wait "$spid" 2>/dev/null || true
done
read jm jmin jmax <<<"$(median < "$work/jd.txt")"
read sm2 smin2 smax2 <<<"$(median < "$work/js.txt")"
sec() { awk "BEGIN {printf \"%.1f\", $1 / 1000000}"; }
echo "| diskleased | $(sec $jm) ($(sec $jmin)–$(sec $jmax)) | join wait: viewMaxAge + ballotMax + 1 = 3·2 + 4·2 + 1 = 15 s from the delta-lease write (which itself waits 2·io_timeout), then a ballot |" >> "$out"
echo "| sanlock daemon | $(sec $sm2) ($(sec $smin2)–$(sec $smax2)) | delta lease (2·io_timeout), then a ballot |" >> "$out"
echo >> "$out"
echo "The join wait is the price of live-only reads (DESIGN.md rule 5): at the default io_timeout 10 a new host waits 71 s before its first ballot, where sanlock waits 20 s. Renewals read the whole lockspace area (1 MiB, 8 MiB on 4K/8M) and write one sector every 2·io_timeout on both sides." >> "$out"
echo >> "$out"
cat "$out"
