#!/bin/sh
# Builds faultio.so and its self-test into $1 (default /tmp/faultio) and checks every
# behaviour, one PASS/FAIL line per check; exits non-zero if any check failed. The test file
# goes in $FAULTIO_SELFTEST_DIR (default /tmp), which must be a real disk filesystem (ext4),
# not tmpfs: O_DIRECT and libaio behave differently there.
set -u
out=${1:-/tmp/faultio}
here=$(cd "$(dirname "$0")" && pwd)
dir=${FAULTIO_SELFTEST_DIR:-/tmp}
mkdir -p "$out" || exit 1

# Start from nothing set, whatever the caller's environment holds.
for v in $(env | sed -n 's/^\(FAULTIO_[A-Z_]*\)=.*/\1/p'); do
    [ "$v" = FAULTIO_SELFTEST_DIR ] || unset "$v"
done

gcc -O2 -shared -fPIC -o "$out/faultio.so" "$here/faultio.c" -ldl -lpthread ||
    { echo "FAIL build faultio.so"; exit 1; }
gcc -O2 -o "$out/selftest" "$here/selftest.c" -laio -lpthread ||
    { echo "FAIL build selftest"; exit 1; }
echo "test file system: $dir is $(stat -f -c %T "$dir")"

status=0
run() {   # run MODE [VAR=value...]
    mode=$1
    shift
    env "$@" LD_PRELOAD="$out/faultio.so" "$out/selftest" "$mode" "$dir" >"$out/$mode.log" 2>&1
    rc=$?
    cat "$out/$mode.log"
    if [ $rc -ne 0 ]; then
        status=1
        grep -q '^FAIL' "$out/$mode.log" || echo "FAIL $mode: exited with status $rc"
    fi
}

run off
run delay FAULTIO_DELAY_US=200000
run hang FAULTIO_HANG_FILE="$out/hang"
run late FAULTIO_LATE_OFFSET=8192 FAULTIO_LATE_MS=1000
run fail FAULTIO_FAIL_OFFSET=4096 FAULTIO_FAIL_COUNT=3
run clock FAULTIO_REALTIME_SHIFT_FILE="$out/shift"
rm -f "$out/hang" "$out/shift" "$out/shift.tmp"

[ $status -eq 0 ] && echo "all faultio self-tests passed" || echo "some faultio self-tests FAILED"
exit $status
