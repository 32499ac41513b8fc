#!/usr/bin/env bash
# Installs the Debian packages DiskLease needs, only those missing: libaio-dev always;
# with --test also sanlock (compatibility tests), spin (model checking), curl (metrics test).
set -euo pipefail
want=(libaio-dev)
[[ "${1:-}" == "--test" ]] && want+=(sanlock spin curl)
missing=()
for p in "${want[@]}"; do
    dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
[[ ${#missing[@]} -eq 0 ]] && exit 0
SUDO=""
[[ $(id -u) -ne 0 ]] && SUDO="sudo"
echo "installing: ${missing[*]}"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
