#!/usr/bin/env bash
# The main job on an embedded default: three hosts, each a real diskleased with its own run
# directory, share one local lease file. A "VM" on host A holds a disk lease; host B is
# refused; host A crashes (daemon SIGKILLed); host B takes the lease over once A is dead,
# with a higher fencing token. Small timeouts (io_timeout 1, watchdog 4) keep it to ~40 s.
set -euo pipefail
cd "$(dirname "$0")/.."
bash Tools/install-deps.sh
swift build --product disklease 2>&1 | tail -1
swift build --product diskleased 2>&1 | tail -1
bin=$(swift build --show-bin-path)
dir=${DEMO_DIR:-.build/demo}
rm -rf "$dir"
mkdir -p "$dir"
img="$(cd "$dir" && pwd)/leases.img"
truncate -s 4M "$img"
say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
dl() { "$bin/disklease" "$@"; }
pids=()
cleanup() { for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done; }
trap cleanup EXIT

say "one lease file: lockspace 'demo' and three VM-disk leases (sanlock's on-disk format)"
dl init lockspace "demo:0:$img:0" --io-timeout 1
for i in 1 2 3; do dl init resource "demo:vm-disk-$i:$img:$((i * 1048576))" --num-hosts 8; done

say "three hosts: a diskleased each (logs in $dir/host-*.log)"
for h in 1 2 3; do
    name=$(echo "x a b c" | cut -d' ' -f$((h + 1)))
    "$bin/diskleased" --config /dev/null --run-dir "$dir/host-$name" --io-timeout 1 --watchdog-fire-timeout 4 \
        --kill-grace 1 --term-grace 1 --watchdog-device none --host-name "host-$name" \
        --lockspace "demo:$h:$img:0" >"$dir/host-$name.log" 2>&1 &
    pids+=($!)
done
A="--run-dir $dir/host-a"; B="--run-dir $dir/host-b"; C="--run-dir $dir/host-c"
sleep 0.5
dl client add-lockspace -s "demo:1:$img:0" $A
say "joining: delta lease (2·io_timeout), the membership epoch, then ballots at once"
for h in a b c; do dl client add-lockspace -s "demo:$(( $(printf '%d' "'$h") - 96 )):$img:0" --wait --run-dir "$dir/host-$h"; done
dl client host-status demo $B

say "host A starts a VM: the process holding vm-disk-1 is the lease owner"
"$bin/disklease" client command $A -r "demo:vm-disk-1:$img:1048576" -- sleep 600 &
vm=$!   # the process that execs into the VM ("sleep"): the lease holder itself
pids+=($vm)
sleep 1
dl client status $A

say "host B tries the same disk without waiting: refused at once"
dl client acquire $B -r "demo:vm-disk-1:$img:1048576" --no-wait || echo "(exit $?)"

say "host A crashes: its daemon is SIGKILLed (no release, no leave)"
kill -9 "${pids[0]}" "$vm"
wait "${pids[0]}" "$vm" 2>/dev/null || true
date +"crashed at %T"

say "host B waits for the disk: only once host A is DEAD (8·io_timeout + watchdog = 12 s after its last renewal)"
dl client command $B -r "demo:vm-disk-1:$img:1048576" -- sh -c 'date +"host B holds vm-disk-1 at %T with fencing token $DISKLEASE_LVER"'
dl client host-status demo $C

say "host A's daemon log"
grep -E "joined|acquired" "$dir/host-a.log" | sed 's/^[^ ]* //' | cut -c1-150
say "host B's daemon log"
grep -E "joined|acquired|released" "$dir/host-b.log" | sed 's/^[^ ]* //' | cut -c1-150

say "stopping B and C cleanly (SIGTERM: leases released, lockspace left)"
kill -TERM "${pids[1]}" "${pids[2]}"
wait "${pids[1]}" "${pids[2]}" || true
dl dump "$img" | head -12

say "and the deterministic simulator (20 seeds, faults on)"
dl simulate --seed 1 --seeds 20
