#!/usr/bin/env bash
# fuzz-ci.sh — every libFuzzer target in fuzz/ for a bounded time, as CI does it.
#
# Each target starts from its corpus in the repository, which is only READ: new
# inputs go to a temporary directory listed first (libFuzzer writes there), so a
# run never changes the checkout. Any crash, leak, timeout or out-of-memory fails
# the target; its input is kept under $ART and named in the output, to be added
# to fuzz/corpus/TARGET/ as a regression input once the bug is fixed.
#
# The fuzzers come from a clang build with -Dfuzz=true: $N2P_FUZZ_BUILD, else
# $N2P_BUILD when it is one, else a fresh one made here (ASan + UBSan).
#
# Env: N2P_SOURCE, N2P_BUILD (set by meson), N2P_FUZZ_BUILD, FUZZ_SECONDS (30 per
# target), FUZZ_TARGETS (default: every fuzz/fuzz-*.c), N2P_FUZZ_ARTIFACTS (where
# failing inputs are kept; default a directory under ${TMPDIR:-/tmp}).
# Prints one PASS/FAIL line per target, then "N passed, M failed".
set -euo pipefail

SRC=$(cd "${N2P_SOURCE:-$(dirname "$0")/..}" && pwd)
SECONDS_EACH=${FUZZ_SECONDS:-30}
case $SECONDS_EACH in '' | *[!0-9]*) echo "fuzz-ci: FUZZ_SECONDS must be a number" >&2; exit 2 ;; esac
WORK=$(mktemp -d "${TMPDIR:-/tmp}/n2p-fuzz-ci.XXXXXX")
ART=${N2P_FUZZ_ARTIFACTS:-$WORK/artifacts}
mkdir -p "$ART"
PASS=0
FAIL=0

cleanup() {
        # keep what failed; the rest (temporary corpora, a private build) goes
        if [ "$FAIL" -gt 0 ] && [ "$ART" = "$WORK/artifacts" ]; then
                find "$WORK" -mindepth 1 -maxdepth 1 ! -name artifacts ! -name logs -exec rm -rf {} +
                echo "fuzz-ci: failing inputs and logs kept in $WORK" >&2
        else
                rm -rf "$WORK"
        fi
}
trap cleanup EXIT

is_fuzz_build() { # DIR: configured with -Dfuzz=true?
        [ -f "$1/meson-info/intro-buildoptions.json" ] || return 1
        grep -q '"name": "fuzz", "value": true' "$1/meson-info/intro-buildoptions.json" 2>/dev/null ||
                meson introspect "$1" --buildoptions 2>/dev/null |
                python3 -c 'import json,sys; sys.exit(0 if any(o["name"] == "fuzz" and o["value"] is True for o in json.load(sys.stdin)) else 1)'
}

if [ -n "${N2P_FUZZ_BUILD:-}" ]; then
        BUILD=$(cd "$N2P_FUZZ_BUILD" && pwd)
        is_fuzz_build "$BUILD" || { echo "fuzz-ci: $BUILD is not a -Dfuzz=true build" >&2; exit 1; }
elif [ -n "${N2P_BUILD:-}" ] && is_fuzz_build "$N2P_BUILD"; then
        BUILD=$(cd "$N2P_BUILD" && pwd)
else
        command -v clang >/dev/null || { echo "SKIP: fuzz-ci needs clang and libFuzzer (apt-get install -y clang libclang-rt-14-dev)"; exit 77; }
        BUILD=$WORK/build
        echo "fuzz-ci: building the fuzzers in $BUILD (clang, ASan + UBSan)" >&2
        mkdir -p "$WORK/logs"
        if ! CC=clang meson setup "$BUILD" "$SRC" -Dfuzz=true -Db_sanitize=address,undefined \
                -Db_lundef=false >"$WORK/logs/setup.log" 2>&1; then
                tail -n 20 "$WORK/logs/setup.log" >&2
                echo "fuzz-ci: meson setup failed" >&2
                exit 1
        fi
fi

if [ -n "${FUZZ_TARGETS:-}" ]; then
        read -r -a targets <<<"$FUZZ_TARGETS"
else
        targets=()
        for f in "$SRC"/fuzz/fuzz-*.c; do
                t=${f##*/}
                targets+=("${t%.c}")
        done
fi
[ "${#targets[@]}" -gt 0 ] || { echo "fuzz-ci: no fuzz targets in $SRC/fuzz" >&2; exit 1; }

mkdir -p "$WORK/logs"
ninja_targets=()
for t in "${targets[@]}"; do ninja_targets+=("fuzz/$t"); done
if ! timeout 900 ninja -C "$BUILD" "${ninja_targets[@]}" >"$WORK/logs/build.log" 2>&1; then
        tail -n 30 "$WORK/logs/build.log" >&2
        echo "fuzz-ci: building the fuzz targets failed" >&2
        exit 1
fi

# UBSan only reports by default; a report must fail the run like a crash does.
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:abort_on_error=1:print_stacktrace=1}
export ASAN_OPTIONS=${ASAN_OPTIONS:-abort_on_error=1:detect_leaks=1}

echo "fuzz-ci: ${#targets[@]} targets, $SECONDS_EACH s each, from $BUILD" >&2
for t in "${targets[@]}"; do
        bin=$BUILD/fuzz/$t
        seed=$SRC/fuzz/corpus/$t
        new=$WORK/new/$t
        log=$WORK/logs/$t.log
        art=$ART/$t/
        mkdir -p "$new" "$art"
        rc=0
        if [ ! -x "$bin" ]; then
                FAIL=$((FAIL + 1))
                echo "FAIL: $t (no binary $bin)"
                continue
        fi
        [ -d "$seed" ] || { echo "fuzz-ci: $t has no corpus in $seed; starting empty" >&2; seed=; }
        # -timeout: one input running longer than this is a hang (a failure);
        # the outer timeout bounds the whole target whatever libFuzzer does.
        timeout -k 10 $((SECONDS_EACH + 120)) "$bin" \
                -max_total_time="$SECONDS_EACH" -timeout=10 -rss_limit_mb=2048 \
                -print_final_stats=1 -artifact_prefix="$art" "$new" ${seed:+"$seed"} \
                </dev/null >"$log" 2>&1 || rc=$?
        found=$(find "$art" -type f | sort)
        runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n1)
        cov=$(grep -oE 'cov: [0-9]+' "$log" | tail -n1 | cut -d' ' -f2)
        if [ "$rc" = 0 ] && [ -z "$found" ]; then
                PASS=$((PASS + 1))
                echo "PASS: $t (${runs:-?} runs, coverage ${cov:-?}, $(find "$new" -type f | wc -l) new inputs)"
        else
                FAIL=$((FAIL + 1))
                echo "FAIL: $t (exit $rc; log $log)"
                grep -E '^(==[0-9]+==ERROR|SUMMARY|.*runtime error)' "$log" | head -n 5 | sed 's/^/    | /' || true
                for f in $found; do echo "    input: $f"; done
                [ -n "$found" ] || tail -n 10 "$log" | sed 's/^/    | /'
        fi
done

echo "$PASS passed, $FAIL failed"
[ "$FAIL" = 0 ]
