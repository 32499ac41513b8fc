#!/usr/bin/env bash
# Side-by-side benchmark: DiskLease (in process, live and full reads; `disklease direct` and
# diskleased as processes) against real sanlock (`sanlock direct` and its daemon) on the same
# files and loop devices, in one run. Writes docs/BENCHMARKS.md and the SVG plots in
# docs/bench/. `--quick` (CI) uses fewer runs, host counts and leases.
# Exact counts (bytes, submits) come from our device counters and from strace of sanlock's
# io_submit calls; latencies are medians with min–max over the runs. Images are written out
# in full (no holes), so every read reaches the device.
set -euo pipefail
cd "$(dirname "$0")/.."
quick=0
[[ "${1:-}" == "--quick" ]] && quick=1
bash Tools/install-deps.sh --test
command -v strace >/dev/null || { echo "installing strace"; apt-get install -y -qq strace >/dev/null; }
# Static binaries, as installed on hosts (README, "Installing"); sim-check.sh builds the same.
swift build -c release --static-swift-stdlib 2>&1 | tail -1
bin=$(swift build -c release --show-bin-path)/disklease
dbin=$(swift build -c release --show-bin-path)/diskleased
work=${BENCH_DIR:-.build/bench}
rm -rf "$work"; mkdir -p "$work"
out=${BENCH_OUT:-docs/BENCHMARKS.md}
plots=${BENCH_PLOTS:-$(dirname "$out")/bench}
mkdir -p "$plots"
runs=$(( quick ? 5 : 30 ))
hosts_list=$([[ $quick -eq 1 ]] && echo "1 4 16" || echo "1 4 16 64 250 2000")
proc_runs=$(( quick ? 3 : 15 ))
slow_runs=$(( quick ? 2 : 7 ))
storm=$(( quick ? 100 : 1000 ))
storm_runs=$(( quick ? 1 : 3 ))
loops=()
daemons=()
cleanup() {
    for p in "${daemons[@]}"; do kill -9 "$p" 2>/dev/null || true; done
    for l in "${loops[@]}"; do losetup -d "$l" 2>/dev/null || true; done
}
trap cleanup EXIT
# Slow storage: every io_submit of the preloaded process waits this long first (Tools/slowio).
cc=${CC:-$(command -v cc || command -v clang || true)}
[[ -n "$cc" ]] || { echo "bench: no C compiler (cc or clang) for Tools/slowio"; exit 1; }
"$cc" -O2 -shared -fPIC -o "$work/slowio.so" Tools/slowio/slowio.c -ldl

median() { sort -n | awk '{a[NR]=$1} END {m=a[int((NR+1)/2)]; printf "%.2f %.2f %.2f", m, a[1], a[NR]}'; }
ms() { awk "BEGIN {printf \"%.2f\", $1 / 1000}"; }
sum() { awk '{s += $1} END {printf "%.0f", s}'; }
# A lease image written out in full: a sparse file would answer reads of holes without I/O.
mkimg() { rm -f "$1"; dd if=/dev/zero of="$1" bs=1M count=$(( $2 / 1048576 )) oflag=direct status=none; }
# Bytes and submits of the io_submit calls in an strace log: "read write submits".
aio_bytes() {
    local r w n
    r=$(grep -o 'IOCB_CMD_PREAD[^}]*aio_nbytes=[0-9]*' "$1" | sed 's/.*aio_nbytes=//' | sum)
    w=$(grep -o 'IOCB_CMD_PWRITE[^}]*aio_nbytes=[0-9]*' "$1" | sed 's/.*aio_nbytes=//' | sum)
    n=$(grep -c 'io_submit(' "$1" || true)
    echo "$r $w $n"
}
# The same, leaving out every request at offset 0 (the lockspace area at the image's start)
# one by one, and counting the submits that still carry a request.
aio_bytes_resources() {
    local kept="$1.res"
    grep 'io_submit(' "$1" | grep -o '{[^}]*}' | grep -v 'aio_offset=0}' > "$kept.iocbs" || true
    grep 'io_submit(' "$1" | awk '{ line = $0; gsub(/\{[^}]*aio_offset=0\}/, "", line); if (line ~ /aio_offset=/) n++ } END { print n + 0 }' > "$kept.n"
    echo "$(aio_bytes "$kept.iocbs" | cut -d' ' -f1-2) $(cat "$kept.n")"
}
# Median, min and max in microseconds of RUNS timed acquires, each followed by an untimed
# release: timed_acquires RUNS ACQUIRE-COMMAND... -- RELEASE-COMMAND...
timed_acquires() {
    local n=$1 f="$work/timed.txt" t0 t1 acq=()
    shift
    while [[ $1 != -- ]]; do acq+=("$1"); shift; done
    shift
    : > "$f"
    for _ in $(seq "$n"); do
        t0=$(date +%s%N)
        "${acq[@]}" >/dev/null
        t1=$(date +%s%N)
        "$@" >/dev/null
        echo "$(( (t1 - t0) / 1000 ))" >> "$f"
    done
    median < "$f"
}
field() { echo "$1" | sed -E "s/.*\"$2\":([0-9.]+).*/\1/"; }
stat3() { echo "$1" | sed -E "s/.*\"$2\":\{\"median\":([0-9.]+),\"min\":([0-9.]+),\"max\":([0-9.]+)\}.*/\1 \2 \3/"; }

fs=$(df -T "$work" | awk 'NR==2 {print $2}')
dev=$(df "$work" | awk 'NR==2 {print $1}')
kernel=$(uname -r | cut -d- -f1)
today=$(date -u +%Y-%m-%d)
on_file="$fs file on $dev · Linux $kernel · $today"
on_loop="loop device (direct I/O) on that $fs · Linux $kernel · $today"
{
echo "# Benchmarks: DiskLease vs sanlock $(sanlock version 2>/dev/null | head -1 | awk '{print $NF}')"
echo
echo "Measured $today on $(uname -sr), $(nproc) cores, by \`bash Tools/bench.sh$([[ $quick -eq 1 ]] && echo " --quick")\`."
echo "Bytes and submits are exact per operation; times are median (min–max) over the runs."
echo "The last column of every row says where it was measured: device, kernel, date."
echo
} > "$out"
: > "$work/inproc.txt"

for geo in "512 1M 1048576" "4096 8M 8388608"; do
    set -- $geo
    ss=$1 align=$2 asz=$3
    img="$(pwd)/$work/lease-$ss.img"
    mkimg "$img" $((asz * 3))
    "$bin" init lockspace "LS:0:$img:0" -Z "$ss" -A "$align" --io-timeout 10 >/dev/null
    "$bin" init resource "LS:r1:$img:$asz" -Z "$ss" -A "$align" >/dev/null
    "$bin" init resource "LS:r2:$img:$((asz * 2))" -Z "$ss" -A "$align" >/dev/null
    echo "## $ss-byte sectors, $align areas" >> "$out"
    echo >> "$out"
    echo "| who | live hosts | bytes read / acquire | bytes written / acquire | submits / acquire | acquire (ms) | acquire+release (ms) | release: bytes read / written / submits | measured on |" >> "$out"
    echo "| --- | ---: | ---: | ---: | ---: | --- | --- | --- | --- |" >> "$out"
    for n in $hosts_list; do
        for mode in live full; do
            j=$("$bin" bench acquire -s "LS:1:$img:0" -r "LS:r1:$img:$asz" --live-hosts "$n" --mode "$mode" --runs "$runs")
            read am amin amax <<<"$(stat3 "$j" acquire_us)"
            read cm cmin cmax <<<"$(stat3 "$j" cycle_us)"
            echo "| DiskLease in process, $mode | $n | $(field "$j" acquire_bytes_read) | $(field "$j" acquire_bytes_written) | $(field "$j" acquire_submits) | $(ms $am) ($(ms $amin)–$(ms $amax)) | $(ms $cm) ($(ms $cmin)–$(ms $cmax)) | $(field "$j" release_bytes_read) / $(field "$j" release_bytes_written) / $(field "$j" release_submits) | $on_file |" >> "$out"
            echo "$ss $n $mode $(field "$j" acquire_bytes_read) $am" >> "$work/inproc.txt"
        done
    done
    # The daemonless paths as processes, like for like: one acquire and one release each, on a
    # fresh lockspace at io_timeout 1.
    img="$(pwd)/$work/direct-$ss.img"
    mkimg "$img" $((asz * 3))
    "$bin" init lockspace "LS:0:$img:0" -Z "$ss" -A "$align" --io-timeout 1 >/dev/null
    "$bin" init resource "LS:r1:$img:$asz" -Z "$ss" -A "$align" >/dev/null
    "$bin" init resource "LS:r2:$img:$((asz * 2))" -Z "$ss" -A "$align" >/dev/null
    sanlock direct acquire_id -s "LS:1:$img:0" -o 1 >/dev/null
    # Ours in a lockspace of its own: a sanlock host in ours would force full reads.
    dimg="$(pwd)/$work/direct-dl-$ss.img"
    mkimg "$dimg" $((asz * 3))
    "$bin" init lockspace "LS:0:$dimg:0" -Z "$ss" -A "$align" --io-timeout 1 >/dev/null
    "$bin" init resource "LS:r2:$dimg:$((asz * 2))" -Z "$ss" -A "$align" >/dev/null
    "$bin" direct join -s "LS:2:$dimg:0" --name dl:bench-direct >/dev/null
    "$bin" direct acquire -s "LS:2:$dimg:0" -r "LS:r2:$dimg:$((asz * 2))" >/dev/null   # warm-up
    "$bin" direct release -s "LS:2:$dimg:0" -r "LS:r2:$dimg:$((asz * 2))" >/dev/null
    sres="LS:r1:$img:$asz" dres="LS:r2:$dimg:$((asz * 2))"
    read sm smin smax <<<"$(timed_acquires "$proc_runs" sanlock direct acquire -r "$sres" -i 1 -g 1 -- sanlock direct release -r "$sres" -i 1 -g 1)"
    read dm dmin dmax <<<"$(timed_acquires "$proc_runs" "$bin" direct acquire -s "LS:2:$dimg:0" -r "$dres" -- "$bin" direct release -s "LS:2:$dimg:0" -r "$dres")"
    strace -f -e trace=io_submit -o "$work/strace.txt" sanlock direct acquire -r "LS:r1:$img:$asz" -i 1 -g 1 >/dev/null
    strace -f -e trace=io_submit -o "$work/strace-r.txt" sanlock direct release -r "LS:r1:$img:$asz" -i 1 -g 1 >/dev/null
    read sread swrite ssub <<<"$(aio_bytes "$work/strace.txt")"
    read srr srw srn <<<"$(aio_bytes "$work/strace-r.txt")"
    strace -f -e trace=io_submit -o "$work/strace-d.txt" "$bin" direct acquire -s "LS:2:$dimg:0" -r "$dres" >/dev/null
    strace -f -e trace=io_submit -o "$work/strace-dr.txt" "$bin" direct release -s "LS:2:$dimg:0" -r "$dres" >/dev/null
    read dread dwrite dsub <<<"$(aio_bytes "$work/strace-d.txt")"
    read drr drw drn <<<"$(aio_bytes "$work/strace-dr.txt")"
    echo "| sanlock direct acquire (process) | – | $sread | $swrite | $ssub | $(ms $sm) ($(ms $smin)–$(ms $smax)) | | $srr / $srw / $srn | $on_file |" >> "$out"
    echo "| disklease direct acquire (process, live) | – | $dread | $dwrite | $dsub | $(ms $dm) ($(ms $dmin)–$(ms $dmax)) | | $drr / $drw / $drn | $on_file |" >> "$out"
    echo "$ss sanlock $sread $sm" >> "$work/inproc.txt"

    # The same on a loop device with the area's sector size, opened for direct I/O.
    limg="$(pwd)/$work/loop-$ss.img"
    mkimg "$limg" $((asz * 3))
    loop=$(losetup -f --show --direct-io=on -b "$ss" "$limg")
    loops+=("$loop")
    "$bin" init lockspace "LS:0:$loop:0" -Z "$ss" -A "$align" --io-timeout 10 >/dev/null
    "$bin" init resource "LS:r1:$loop:$asz" -Z "$ss" -A "$align" >/dev/null
    "$bin" init resource "LS:r2:$loop:$((asz * 2))" -Z "$ss" -A "$align" >/dev/null
    for mode in live full; do
        j=$("$bin" bench acquire -s "LS:1:$loop:0" -r "LS:r1:$loop:$asz" --live-hosts 4 --mode "$mode" --runs "$runs")
        read am amin amax <<<"$(stat3 "$j" acquire_us)"
        read cm cmin cmax <<<"$(stat3 "$j" cycle_us)"
        echo "| DiskLease in process, $mode, loop device | 4 | $(field "$j" acquire_bytes_read) | $(field "$j" acquire_bytes_written) | $(field "$j" acquire_submits) | $(ms $am) ($(ms $amin)–$(ms $amax)) | $(ms $cm) ($(ms $cmin)–$(ms $cmax)) | $(field "$j" release_bytes_read) / $(field "$j" release_bytes_written) / $(field "$j" release_submits) | $on_loop |" >> "$out"
        echo "$ss $mode $am" >> "$work/loop.txt"
    done
    lres="LS:r2:$loop:$((asz * 2))"
    read lm lmin lmax <<<"$(timed_acquires "$proc_runs" sanlock direct acquire -r "$lres" -i 1 -g 1 -- sanlock direct release -r "$lres" -i 1 -g 1)"
    echo "| sanlock direct acquire (process), loop device | – | $sread | $swrite | $ssub | $(ms $lm) ($(ms $lmin)–$(ms $lmax)) | | $srr / $srw / $srn | $on_loop |" >> "$out"
    echo "$ss sanlock $lm" >> "$work/loop.txt"
    losetup -d "$loop"
    echo >> "$out"
    live4=$(awk -v s="$ss" '$1==s && $2==4 && $3=="live" {print $4, $5}' "$work/inproc.txt")
    full4=$(awk -v s="$ss" '$1==s && $2==4 && $3=="full" {print $4, $5}' "$work/inproc.txt")
    read lb lus <<<"$live4"
    read fb fus <<<"$full4"
    {
    echo "Ratios at 4 live hosts ($ss/$align): bytes read per acquire, DiskLease live / sanlock = $lb / $sread = $(awk "BEGIN {printf \"%.4f\", $lb / $sread}") (1/$(awk "BEGIN {printf \"%.0f\", $sread / $lb}")); in-process acquire latency live / full = $(awk "BEGIN {printf \"%.2f\", $lus / $fus}"); process-level acquire latency disklease direct / sanlock direct = $(awk "BEGIN {printf \"%.2f\", $dm / $sm}")."
    echo
    } >> "$out"

    # Slow storage: each io_submit waits 1 ms or 10 ms first, in our process and in sanlock's.
    {
    echo "### Slow storage ($ss/$align, 4 live hosts): every io_submit delayed, both sides (Tools/slowio)"
    echo
    echo "| who | delay per submit | submits / acquire | acquire (ms) | measured on |"
    echo "| --- | ---: | ---: | --- | --- |"
    } >> "$out"
    pimg="$(pwd)/$work/lease-$ss.img"
    for us in 1000 10000; do
        for mode in live full; do
            j=$(env SLOWIO_US="$us" LD_PRELOAD="$(pwd)/$work/slowio.so" "$bin" bench acquire -s "LS:1:$pimg:0" -r "LS:r1:$pimg:$asz" --live-hosts 4 --mode "$mode" --runs "$slow_runs")
            read am amin amax <<<"$(stat3 "$j" acquire_us)"
            echo "| DiskLease in process, $mode | $((us / 1000)) ms | $(field "$j" acquire_submits) | $(ms $am) ($(ms $amin)–$(ms $amax)) | $on_file |" >> "$out"
            echo "$ss $us $mode $am" >> "$work/slow.txt"
        done
        slow=(env SLOWIO_US="$us" LD_PRELOAD="$(pwd)/$work/slowio.so")
        pres="LS:r2:$pimg:$((asz * 2))"
        read sm3 smin3 smax3 <<<"$(timed_acquires "$slow_runs" "${slow[@]}" sanlock direct acquire -r "$pres" -i 1 -g 1 -- sanlock direct release -r "$pres" -i 1 -g 1)"
        echo "| sanlock direct acquire (process) | $((us / 1000)) ms | $ssub | $(ms $sm3) ($(ms $smin3)–$(ms $smax3)) | $on_file |" >> "$out"
        echo "$ss $us sanlock $sm3" >> "$work/slow.txt"
        # Like for like with the row above: our daemonless process (renewal, membership, live reads).
        # Joined again first: a direct delta lease not renewed for 8·io_timeout has lapsed.
        "$bin" direct join -s "LS:2:$dimg:0" --name dl:bench-direct >/dev/null
        read dm3 dmin3 dmax3 <<<"$(timed_acquires "$slow_runs" "${slow[@]}" "$bin" direct acquire -s "LS:2:$dimg:0" -r "$dres" -- "$bin" direct release -s "LS:2:$dimg:0" -r "$dres")"
        echo "| disklease direct acquire (process, live) | $((us / 1000)) ms | $dsub | $(ms $dm3) ($(ms $dmin3)–$(ms $dmax3)) | $on_file |" >> "$out"
    done
    echo >> "$out"
done

# The daemon path, like for like: a client process asks the running daemon for a lease and
# exits (which releases it); diskleased reads live-only, sanlock's daemon the whole area.
{
echo "## Acquire through the daemon (a client process per lease, 1 live host, io_timeout 1)"
echo
echo "| who | geometry | acquire (ms, client process included) | measured on |"
echo "| --- | --- | --- | --- |"
} >> "$out"
for geo in "512 1M 1048576" "4096 8M 8388608"; do
    set -- $geo
    ss=$1 align=$2 asz=$3
    for side in d s; do
        img="$(pwd)/$work/daemon-$side-$ss.img"
        mkimg "$img" $((asz * 2))
        "$bin" init lockspace "LS:0:$img:0" -Z "$ss" -A "$align" --io-timeout 1 >/dev/null
        "$bin" init resource "LS:r1:$img:$asz" -Z "$ss" -A "$align" >/dev/null
        rd="$(pwd)/$work/daemon-$side-$ss"
        mkdir -p "$rd"
        if [[ $side == d ]]; then
            "$dbin" --config /dev/null --run-dir "$rd" --io-timeout 1 --watchdog-fire-timeout 60 --watchdog-device none >"$rd.log" 2>&1 &
            pid=$!
            daemons+=("$pid")
            for _ in $(seq 100); do [[ -S "$rd/diskleased.sock" ]] && break; sleep 0.1; done
            "$bin" client add-lockspace --run-dir "$rd" -s "LS:1:$img:0" --wait >/dev/null
            read am amin amax <<<"$(timed_acquires "$proc_runs" "$bin" client acquire --run-dir "$rd" -r "LS:r1:$img:$asz" -- true)"
            who="diskleased (live reads), \`disklease client acquire\`"
        else
            SANLOCK_RUN_DIR="$rd" SANLOCK_PRIVILEGED=0 sanlock daemon -D -w 0 -U root -G root -o 1 >"$rd.log" 2>&1 &
            pid=$!
            daemons+=("$pid")
            for _ in $(seq 100); do SANLOCK_RUN_DIR="$rd" sanlock client status >/dev/null 2>&1 && break; sleep 0.1; done
            SANLOCK_RUN_DIR="$rd" sanlock client add_lockspace -s "LS:1:$img:0" -o 1 >/dev/null
            read am amin amax <<<"$(timed_acquires "$proc_runs" env SANLOCK_RUN_DIR="$rd" sanlock client command -r "LS:r1:$img:$asz" -c /bin/true -- true)"
            who="sanlock daemon, \`sanlock client command -c /bin/true\`"
        fi
        kill -9 "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
        echo "| $who | $ss/$align | $(ms $am) ($(ms $amin)–$(ms $amax)) | $on_file |" >> "$out"
        echo "$ss $side $am" >> "$work/daemon.txt"
    done
done
{
echo
for ss in 512 4096; do
    d=$(awk -v s="$ss" '$1 == s && $2 == "d" {print $3}' "$work/daemon.txt")
    l=$(awk -v s="$ss" '$1 == s && $2 == "s" {print $3}' "$work/daemon.txt")
    echo "Daemon acquire latency ratio ($ss): diskleased / sanlock daemon = $(awk "BEGIN {printf \"%.2f\", $d / $l}")."
done
echo
} >> "$out"

# Failover storm: host 2 owned $storm leases, rebooted (new generation), and host 1 takes them
# all over. DiskLease batches every ballot phase of every lease into shared submits; sanlock's
# daemon gets the leases from parallel clients of 8 resources each (its per-client maximum).
{
echo "## Failover storm: one host takes over $storm leases of a host that rebooted (512/1M)"
echo
echo "| who | acquire + release of all (ms, median, min–max) | bytes read | submits | measured on |"
echo "| --- | --- | ---: | ---: | --- |"
} >> "$out"
simg="$(pwd)/$work/storm.img"
mkimg "$simg" $(( (storm + 1) * 1048576 ))
"$bin" init lockspace "LS:0:$simg:0" --io-timeout 2 >/dev/null
for batch in batched one; do
    : > "$work/st.txt"
    n=$([[ $batch == batched ]] && echo "$storm_runs" || echo 1)
    for i in $(seq "$n"); do
        "$bin" bench failover -s "LS:1:$simg:0" --resources "$storm" --setup >/dev/null
        j=$("$bin" bench failover -s "LS:1:$simg:0" --resources "$storm" $([[ $batch == one ]] && echo --one-at-a-time))
        echo "$(field "$j" acquire_ms) $(field "$j" release_ms)" | awk '{printf "%d\n", ($1 + $2) * 1000}' >> "$work/st.txt"
        sb=$(( $(field "$j" acquire_bytes_read) + $(field "$j" release_bytes_read) ))
        sn=$(( $(field "$j" acquire_submits) + $(field "$j" release_submits) ))
    done
    read tm tmin tmax <<<"$(median < "$work/st.txt")"
    label=$([[ $batch == batched ]] && echo "DiskLease, ballots batched (live reads)" || echo "DiskLease, one lease after another (live reads)")
    echo "| $label | $(ms $tm) ($(ms $tmin)–$(ms $tmax)) | $sb | $sn | $on_file |" >> "$out"
    echo "$batch $tm" >> "$work/storm.txt"
done
# Both daemons take the leases from parallel client processes of 8 resources each (sanlock's
# per-client maximum): storm_daemon SIDE(d|s) RUN-DIR STRACE-LOG-OR-EMPTY; prints microseconds.
storm_daemon() {
    local side=$1 rd=$2 trace=$3 spid t0 t1 c args clients=() cmd
    mkdir -p "$rd"
    "$bin" bench failover -s "LS:1:$simg:0" --resources "$storm" --setup >/dev/null
    if [[ $side == d ]]; then
        cmd=("$dbin" --config /dev/null --run-dir "$rd" --io-timeout 2 --watchdog-fire-timeout 60 --watchdog-device none)
    else
        cmd=(env SANLOCK_RUN_DIR="$rd" SANLOCK_PRIVILEGED=0 sanlock daemon -D -w 0 -U root -G root -o 2)
    fi
    if [[ -n "$trace" ]]; then
        strace -f -e trace=io_submit -o "$trace" "${cmd[@]}" >"$rd.log" 2>&1 &
    else
        "${cmd[@]}" >"$rd.log" 2>&1 &
    fi
    spid=$!
    daemons+=("$spid")
    if [[ $side == d ]]; then
        for _ in $(seq 100); do [[ -S "$rd/diskleased.sock" ]] && break; sleep 0.1; done
        "$bin" client add-lockspace --run-dir "$rd" -s "LS:1:$simg:0" --wait >/dev/null
    else
        for _ in $(seq 100); do SANLOCK_RUN_DIR="$rd" sanlock client status >/dev/null 2>&1 && break; sleep 0.1; done
        SANLOCK_RUN_DIR="$rd" sanlock client add_lockspace -s "LS:1:$simg:0" -o 2 >/dev/null
    fi
    # The daemon itself: env execs it; strace forks it (sanlock's own helper is its child).
    local dpid=$spid
    [[ -n "$trace" ]] && dpid=$(pgrep -P "$spid" | head -1)
    local r0=0
    [[ -z "$trace" ]] && r0=$(awk '/^read_bytes/ {print $2}' "/proc/$dpid/io")
    t0=$(date +%s%N)
    for c in $(seq 0 $(( (storm + 7) / 8 - 1 ))); do
        args=()
        for k in $(seq 0 7); do
            i=$((c * 8 + k))
            (( i < storm )) || break
            args+=(-r "LS:r$i:$simg:$(( (i + 1) * 1048576 ))")
        done
        if [[ $side == d ]]; then
            "$bin" client command --run-dir "$rd" "${args[@]}" -- /bin/true >/dev/null 2>&1 &
        else
            SANLOCK_RUN_DIR="$rd" sanlock client command "${args[@]}" -c /bin/true >/dev/null 2>&1 &
        fi
        clients+=($!)
    done
    wait "${clients[@]}" 2>/dev/null || true
    # Releases follow each client's exit; wait until the daemon holds nothing.
    for _ in $(seq 600); do
        if [[ $side == d ]]; then
            "$bin" client status --run-dir "$rd" | grep -q '^lease ' || break
        else
            SANLOCK_RUN_DIR="$rd" sanlock client status | grep -q '^r ' || break
        fi
        sleep 0.01
    done
    t1=$(date +%s%N)
    # What the kernel counted for the daemon (the image has no holes, so every read is real).
    [[ -z "$trace" ]] && echo $(( $(awk '/^read_bytes/ {print $2}' "/proc/$dpid/io") - r0 )) > "$work/storm-procio-$side.txt"
    # sanlock's helper is the daemon's child; leave none behind.
    kill -9 $(pgrep -P "$dpid") "$dpid" "$spid" 2>/dev/null || true
    wait "$spid" 2>/dev/null || true
    local taken
    taken=$(sanlock direct dump "$simg:1048576" | awk 'NR > 1 && $5 == "0001" && $7 == 2' | wc -l)
    [[ $taken -eq $storm ]] || { echo "bench: $side took over $taken of $storm leases" >&2; exit 1; }
    echo $(( (t1 - t0) / 1000 ))
}
for side in d s; do
    : > "$work/sst.txt"
    for i in $(seq "$storm_runs"); do storm_daemon "$side" "$(pwd)/$work/storm-$side$i" "" >> "$work/sst.txt"; done
    storm_daemon "$side" "$(pwd)/$work/storm-$side-strace" "$(pwd)/$work/storm-strace-$side.txt" >/dev/null
    read tm tmin tmax <<<"$(median < "$work/sst.txt")"
    # The traced daemon's resource I/O: requests at offset 0 (whole-lockspace reads, our own
    # delta lease) are left out, request by request, since diskleased may share a submit
    # between them and ballots; the owner checks' reads of host 2's delta lease stay in.
    read srb swb ssn <<<"$(aio_bytes_resources "$work/storm-strace-$side.txt")"
    label=$([[ $side == d ]] && echo "diskleased, parallel clients of 8 leases (live reads)" || echo "sanlock daemon, parallel clients of 8 leases")
    echo "| $label | $(ms $tm) ($(ms $tmin)–$(ms $tmax)) | $srb (strace); $(cat "$work/storm-procio-$side.txt") (/proc/PID/io) | $ssn | $on_file |" >> "$out"
    echo "$side $tm" >> "$work/storm.txt"
done
bt=$(awk '$1 == "batched" {print $2}' "$work/storm.txt")
ot=$(awk '$1 == "one" {print $2}' "$work/storm.txt")
dt=$(awk '$1 == "d" {print $2}' "$work/storm.txt")
tm=$(awk '$1 == "s" {print $2}' "$work/storm.txt")
{
echo
echo "Failover storm ratios: DiskLease batched / sanlock daemon = $(awk "BEGIN {printf \"%.2f\", $bt / $tm}") in time; diskleased / sanlock daemon = $(awk "BEGIN {printf \"%.2f\", $dt / $tm}") (both daemons, same clients); batched / one at a time = $(awk "BEGIN {printf \"%.2f\", $bt / $ot}")."
echo
} >> "$out"
# Join to first lease, daemon against daemon: a fresh lockspace per side, the daemon already
# running, timed from add_lockspace to an acquired lease. Prints microseconds.
join_once() {  # side io_timeout tag
    local side=$1 io=$2 tag=$3 img rd pid t0 t1
    img="$(pwd)/$work/join-$side-$tag.img"
    rd="$(pwd)/$work/jrun-$side-$tag"
    mkimg "$img" $((3 * 1048576))
    "$bin" init lockspace "LS:0:$img:0" --io-timeout "$io" >/dev/null
    "$bin" init resource "LS:r1:$img:1048576" >/dev/null
    mkdir -p "$rd"
    if [[ $side == d ]]; then
        "$dbin" --config /dev/null --run-dir "$rd" --io-timeout "$io" --watchdog-fire-timeout 60 --watchdog-device none >"$rd.log" 2>&1 &
        pid=$!
        for _ in $(seq 50); do [[ -S "$rd/diskleased.sock" ]] && break; sleep 0.1; done
        t0=$(date +%s%N)
        "$bin" client add-lockspace --run-dir "$rd" -s "LS:1:$img:0" --wait >/dev/null
        "$bin" client acquire --run-dir "$rd" -r "LS:r1:$img:1048576" >/dev/null
        t1=$(date +%s%N)
        kill -TERM "$pid"; wait "$pid" || true
    else
        SANLOCK_RUN_DIR="$rd" SANLOCK_PRIVILEGED=0 sanlock daemon -D -w 0 -U root -G root -o "$io" >"$rd.log" 2>&1 &
        pid=$!
        for _ in $(seq 50); do SANLOCK_RUN_DIR="$rd" sanlock client status >/dev/null 2>&1 && break; sleep 0.1; done
        t0=$(date +%s%N)
        SANLOCK_RUN_DIR="$rd" sanlock client add_lockspace -s "LS:1:$img:0" -o "$io" >/dev/null
        SANLOCK_RUN_DIR="$rd" sanlock client command -r "LS:r1:$img:1048576" -c /bin/true >/dev/null
        t1=$(date +%s%N)
        kill -9 "$pid"; wait "$pid" 2>/dev/null || true
    fi
    echo $(( (t1 - t0) / 1000 ))
}
echo "## Join to first acquired lease (daemons)" >> "$out"
echo >> "$out"
echo "| who | io_timeout | seconds (median, min–max) | what it waits for | measured on |" >> "$out"
echo "| --- | ---: | --- | --- | --- |" >> "$out"
join_runs=$(( quick ? 1 : 3 ))
: > "$work/jd.txt"; : > "$work/js.txt"
for i in $(seq "$join_runs"); do
    join_once d 2 "$i" >> "$work/jd.txt"
    join_once s 2 "$i" >> "$work/js.txt"
done
read jm jmin jmax <<<"$(median < "$work/jd.txt")"
read sm2 smin2 smax2 <<<"$(median < "$work/js.txt")"
sec() { awk "BEGIN {printf \"%.1f\", $1 / 1000000}"; }
echo "| diskleased | 2 | $(sec $jm) ($(sec $jmin)–$(sec $jmax)) | delta lease (2·io_timeout), epoch write, one area read, then a ballot (no join wait) | $on_file |" >> "$out"
echo "| sanlock daemon | 2 | $(sec $sm2) ($(sec $smin2)–$(sec $smax2)) | delta lease (2·io_timeout), then a ballot | $on_file |" >> "$out"
if [[ $quick -eq 0 ]]; then
    # Default timeouts (io_timeout 10, watchdog 60), once per side, both at the same time:
    # the time is almost all waiting, so they do not disturb each other.
    join_once d 10 default > "$work/jd10.txt" &
    jp=$!
    join_once s 10 default > "$work/js10.txt"
    wait "$jp"
    echo "| diskleased | 10 | $(sec "$(cat "$work/jd10.txt")") | delta lease (2·io_timeout), epoch write, one area read, then a ballot | $on_file |" >> "$out"
    echo "| sanlock daemon | 10 | $(sec "$(cat "$work/js10.txt")") | delta lease (2·io_timeout), then a ballot | $on_file |" >> "$out"
fi
echo >> "$out"
echo "There is no join wait: agreement rests on the membership epoch (docs/AGREEMENT.md), so a host ballots as soon as its delta lease is verified, as sanlock does." >> "$out"
echo >> "$out"
# Renewal with 4 live hosts: four daemons per side on one image (io_timeout 1), host 1 traced.
# A renewal's bytes are the reads between two consecutive writes of host 1's slot (offset 0),
# the join's window left out.
start_side() {  # side host run-dir image [trace]
    local side=$1 h=$2 rd=$3 img=$4 tr=${5:-} pre=()
    mkdir -p "$rd"
    [[ -n $tr ]] && pre=(strace -f -e trace=io_submit -o "$tr")
    if [[ $side == s ]]; then
        SANLOCK_RUN_DIR="$rd" SANLOCK_PRIVILEGED=0 "${pre[@]}" sanlock daemon -D -w 0 -U root -G root -o 1 >/dev/null 2>&1 &
        daemons+=("$!")
        for _ in $(seq 100); do SANLOCK_RUN_DIR="$rd" sanlock client status >/dev/null 2>&1 && break; sleep 0.1; done
        SANLOCK_RUN_DIR="$rd" sanlock client add_lockspace -s "LS:$h:$img:0" -o 1 >/dev/null &
    else
        "${pre[@]}" "$dbin" --config /dev/null --run-dir "$rd" --io-timeout 1 --watchdog-fire-timeout 60 \
            --watchdog-device none --host-name "bench$h" --lockspace "LS:$h:$img:0" >/dev/null 2>&1 &
        daemons+=("$!")
    fi
}
renewal_windows() {  # trace -> "renewals bytes-read-per-renewal"
    grep 'io_submit(' "$1" | awk '
        { line = $0; r = 0
          while (match(line, /IOCB_CMD_PREAD[^}]*aio_nbytes=[0-9]+/)) { s = substr(line, RSTART, RLENGTH); sub(/.*aio_nbytes=/, "", s); r += s; line = substr(line, RSTART + RLENGTH) }
          acc += r
          if ($0 ~ /IOCB_CMD_PWRITE[^}]*aio_nbytes=(512|4096), aio_offset=0}/) { w++; if (w >= 3) { total += acc; n++ } acc = 0 } }
        END { if (n > 0) printf "%d %.0f", n, total / n; else print "0 0" }'
}
{
echo "## Renewal with 4 live hosts (daemons, io_timeout 1, 512/1M)"
echo
echo "| who | renewals seen | bytes read / renewal | bytes written / renewal | measured on |"
echo "| --- | ---: | ---: | ---: | --- |"
} >> "$out"
for side in d s; do
    img="$(pwd)/$work/renew-$side.img"
    mkimg "$img" 1048576
    "$bin" init lockspace "LS:0:$img:0" --io-timeout 1 >/dev/null
    first=${#daemons[@]}
    # The other three join first: a join changes the epoch, and the traced host then reads the
    # slots again, which is a membership change, not a renewal.
    for h in 2 3 4; do start_side "$side" "$h" "$(pwd)/$work/renew-$side-$h" "$img"; done
    sleep 8
    start_side "$side" 1 "$(pwd)/$work/renew-$side-1" "$img" "$(pwd)/$work/renew-$side.txt"
    sleep $(( quick ? 16 : 30 ))
    for p in "${daemons[@]:$first}"; do kill -9 $(pgrep -P "$p") "$p" 2>/dev/null || true; done
    read n per <<<"$(renewal_windows "$work/renew-$side.txt")"
    (( n >= 2 )) || { echo "bench: too few renewals seen for $side" >&2; exit 1; }
    who=$([[ $side == d ]] && echo diskleased || echo "sanlock daemon")
    echo "| $who | $n | $per | 512 | $on_file |" >> "$out"
    echo "$side $per" >> "$work/renew.txt"
done
echo >> "$out"
echo "diskleased reads its own slot and the epoch sector each renewal, the slots of owners it watches, and every present slot on every third renewal (host status, release requests); sanlock reads the whole lockspace area (1 MiB) every renewal." >> "$out"
echo >> "$out"

# Rejoin after a crash: a daemon holding a lease is killed (SIGKILL) or stopped (SIGTERM),
# then started again with the same host name; timed from the new start to a lease acquired.
wait_joined() {  # run-dir
    for _ in $(seq 1200); do
        "$bin" client status --run-dir "$1" 2>/dev/null | grep -q " joined " && return 0
        sleep 0.05
    done
    echo "bench: $1 did not join" >&2; return 1
}
rejoin_once() {  # signal tag -> microseconds
    local sig=$1 tag=$2 img rd pid holder t0 t1
    img="$(pwd)/$work/rejoin-$tag.img"
    rd="$(pwd)/$work/rejoin-$tag"
    mkimg "$img" $((2 * 1048576))
    "$bin" init lockspace "LS:0:$img:0" --io-timeout 1 >/dev/null
    "$bin" init resource "LS:r1:$img:1048576" >/dev/null
    mkdir -p "$rd"
    local args=(--config /dev/null --run-dir "$rd" --io-timeout 1 --watchdog-fire-timeout 4 --kill-grace 1
                --term-grace 1 --watchdog-device none --host-name rejoin --lockspace "LS:1:$img:0")
    "$dbin" "${args[@]}" >"$rd.log" 2>&1 &
    pid=$!
    wait_joined "$rd"
    "$bin" client command --run-dir "$rd" -r "LS:r1:$img:1048576" -- sleep 600 >/dev/null 2>&1 &
    holder=$!
    for _ in $(seq 100); do "$bin" client status --run-dir "$rd" 2>/dev/null | grep -q "lease LS:r1" && break; sleep 0.1; done
    kill "-$sig" "$pid"; wait "$pid" 2>/dev/null || true
    # After SIGKILL the holder is left running: the new incarnation must stop it first.
    t0=$(date +%s%N)
    "$dbin" "${args[@]}" >>"$rd.log" 2>&1 &
    pid=$!
    wait_joined "$rd"
    local got=0
    for _ in $(seq 1200); do
        "$bin" client acquire --run-dir "$rd" -r "LS:r1:$img:1048576" >/dev/null 2>&1 && { got=1; break; }
        sleep 0.05
    done
    t1=$(date +%s%N)
    (( got )) || { echo "bench: rejoin after SIG$sig never acquired; see $rd.log" >&2; return 1; }
    kill -9 "$holder" "$pid" 2>/dev/null || true; wait "$holder" "$pid" 2>/dev/null || true
    echo $(( (t1 - t0) / 1000 ))
}
: > "$work/rk.txt"; : > "$work/rt.txt"
for i in $(seq $(( quick ? 1 : 3 ))); do
    rejoin_once KILL "k$i" >> "$work/rk.txt"
    rejoin_once TERM "t$i" >> "$work/rt.txt"
done
read km kmin kmax <<<"$(median < "$work/rk.txt")"
read tm2 tmin2 tmax2 <<<"$(median < "$work/rt.txt")"
{
echo "## Restart to first lease (diskleased, io_timeout 1, same host name)"
echo
echo "| previous incarnation ended by | seconds (median, min–max) | measured on |"
echo "| --- | --- | --- |"
echo "| SIGKILL (leftover holder stopped first, then the same-name fast path) | $(sec $km) ($(sec $kmin)–$(sec $kmax)) | $on_file |"
echo "| SIGTERM (clean leave) | $(sec $tm2) ($(sec $tmin2)–$(sec $tmax2)) | $on_file |"
echo
echo "Restart after SIGKILL / after SIGTERM = $(awk "BEGIN {printf \"%.2f\", $km / $tm2}"); difference $(awk "BEGIN {printf \"%.1f\", ($km - $tm2) / 1000000}") s."
echo
} >> "$out"

# A flood of connections from a uid the daemon refuses: its thread count before and during.
fdir=$(mktemp -d /tmp/disklease-bench-flood.XXXXXX)
chmod 0777 "$fdir"
fimg="$(pwd)/$work/flood.img"
mkimg "$fimg" 1048576
"$bin" init lockspace "LS:0:$fimg:0" --io-timeout 1 >/dev/null
"$dbin" --config /dev/null --run-dir "$fdir/run" --io-timeout 1 --watchdog-fire-timeout 60 --watchdog-device none \
    --socket-group 65534 --lockspace "LS:1:$fimg:0" >/dev/null 2>&1 &
fpid=$!
daemons+=("$fpid")
for _ in $(seq 100); do [[ -S "$fdir/run/diskleased.sock" ]] && break; sleep 0.1; done
chmod 0755 "$fdir/run"
cp "$bin" "$fdir/disklease"; chmod 0755 "$fdir/disklease"
sleep 3
threads() { awk '/^Threads:/ {print $2}' "/proc/$1/status"; }
before=$(threads "$fpid")
setpriv --reuid=65534 --regid=65534 --clear-groups "$fdir/disklease" client flood --connections 1000 --hold 3 \
    --ready-file "$fdir/ready" --run-dir "$fdir/run" > "$work/flood.txt" &
flood=$!
for _ in $(seq 600); do [[ -e "$fdir/ready" ]] && break; sleep 0.1; done
during=$(threads "$fpid")
wait "$flood" || true
kill -9 "$fpid" 2>/dev/null || true
rm -rf "$fdir"
{
echo "## 1000 connections from a refused uid (diskleased)"
echo
echo "| threads before | threads while 1000 refused connections are open | replies | measured on |"
echo "| ---: | ---: | --- | --- |"
echo "| $before | $during | $(sed 's/connections 1000: //' "$work/flood.txt") | $on_file |"
echo
} >> "$out"

# Plots (SVG, drawn by `disklease bench plot`).
for ss in 512 4096; do
    g=$([[ $ss == 512 ]] && echo "512/1M" || echo "4K/8M")
    sb=$(awk -v s="$ss" '$1 == s && $2 == "sanlock" {print $3}' "$work/inproc.txt")
    {
    awk -v s="$ss" -v g="$g" '$1 == s && $2 != "sanlock" {printf "DiskLease %s %s\t%s\t%s\n", $3, g, $2, $4}' "$work/inproc.txt"
    for n in $hosts_list; do printf "sanlock %s\t%s\t%s\n" "$g" "$n" "$sb"; done
    } > "$work/plot-bytes-$ss.tsv"
done
cat "$work/plot-bytes-512.tsv" "$work/plot-bytes-4096.tsv" | "$bin" bench plot --title "Bytes read per acquire" \
    --x-label "live hosts" --y-label "bytes" --log-x --log-y -o "$plots/bytes-per-acquire.svg"
awk '$2 != "sanlock" {g = ($1 == 512 ? "512/1M" : "4K/8M"); printf "%s %s\t%s\t%s\n", $3, g, $2, $5 / 1000}' "$work/inproc.txt" \
    | "$bin" bench plot --title "Acquire latency in process (median)" --x-label "live hosts" --y-label "ms" \
    --log-x --log-y -o "$plots/acquire-latency.svg"
awk '{g = ($1 == 512 ? "512/1M" : "4K/8M"); w = ($3 == "sanlock" ? "sanlock direct (process)" : "DiskLease " $3); printf "%s %s\t%s\t%s\n", w, g, $2 / 1000, $4 / 1000}' "$work/slow.txt" \
    | "$bin" bench plot --title "Acquire on slow storage (4 live hosts)" --x-label "delay per io_submit (ms)" \
    --y-label "acquire (ms)" --log-x --log-y -o "$plots/slow-storage.svg"
echo "Plots: $plots/bytes-per-acquire.svg, $plots/acquire-latency.svg, $plots/slow-storage.svg." >> "$out"
cat "$out"
