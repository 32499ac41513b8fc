#!/usr/bin/env bash
# The main job on an embedded default: a lockspace and three VM-disk resources on a local
# lease file; two hosts join it and contend for a disk with the daemonless commands; then a
# short run of the deterministic simulator.
set -euo pipefail
cd "$(dirname "$0")/.."
bash Tools/install-deps.sh
swift build --product disklease 2>&1 | tail -1
bin=$(swift build --show-bin-path)/disklease
dir=${DEMO_DIR:-.build/demo}
mkdir -p "$dir"
img="$dir/leases.img"
rm -f "$img"
truncate -s 4M "$img"
t="--view-max-age 1 --ballot-max 1 --watchdog 4"   # small bounds so the demo is quick
set -x
"$bin" init lockspace "demo:0:$img:0" --io-timeout 1
"$bin" init resource "demo:vm-disk-1:$img:1048576" --num-hosts 8
"$bin" init resource "demo:vm-disk-2:$img:2097152" --num-hosts 8
"$bin" init resource "demo:vm-disk-3:$img:3145728"
"$bin" direct join -s "demo:1:$img:0" --name dl:host-a $t
"$bin" direct join -s "demo:2:$img:0" --name dl:host-b $t
"$bin" direct acquire -s "demo:1:$img:0" -r "demo:vm-disk-1:$img:1048576" --wait $t
"$bin" direct acquire -s "demo:2:$img:0" -r "demo:vm-disk-1:$img:1048576" --wait $t || echo "host B refused: exit $?"
"$bin" direct release -s "demo:1:$img:0" -r "demo:vm-disk-1:$img:1048576" $t
"$bin" direct acquire -s "demo:2:$img:0" -r "demo:vm-disk-1:$img:1048576" $t
"$bin" dump "$img"
"$bin" simulate --seed 1 --seeds 20
