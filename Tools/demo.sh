#!/usr/bin/env bash
# The main job on an embedded default: a lockspace and three VM-disk resources on a local
# lease file, inspected the way an operator would.
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
set -x
"$bin" init lockspace "demo:0:$img:0"
"$bin" init resource "demo:vm-disk-1:$img:1048576"
"$bin" init resource "demo:vm-disk-2:$img:2097152" --num-hosts 8
"$bin" init resource "demo:vm-disk-3:$img:3145728"
"$bin" read-leader -r "demo:vm-disk-2:$img:2097152"
"$bin" dump "$img"
