#!/usr/bin/env bash
# e2e-valgrind.sh — the end-to-end LAN copy with every n2p process under
# valgrind memcheck: the server, the session worker it starts (valgrind follows
# the exec of /proc/self/exe: --trace-children=yes) and the client.
#
#  +----------------------------------+  veth  +----------------------------------+
#  | netns ${P}ha                     |  LAN   | netns ${P}hc                     |
#  |  valgrind n2pctl server          |========|  valgrind n2pctl connect LONG    |
#  |    `- valgrind n2pctl __worker   |        |    -> $R/run/peer.sock           |
#  |  10.1.0.2                        |        |  10.1.0.3                        |
#  +------------|---------------------+        +------------^---------------------+
#               | $R/run/server.sock                        | nix copy --to unix:...
#        server nix-daemon ($R/server/nix)        client nix-daemon ($R/client/nix)
#
# Memcheck errors (invalid reads/writes, uses of uninitialised values, bad
# frees) fail the test, in any process; leaks are not checked (GLib and libnice
# keep one-time allocations to exit on purpose). tests/valgrind.supp holds the
# suppressions, all for third-party code, each with its reason.
#
# Valgrind needs a build without ASan: $N2P_VALGRIND_BUILD, else $N2P_BUILD when
# it has no sanitizer, else a plain build made here.
# Env: N2P_BUILD, N2P_SOURCE, N2P_VALGRIND_BUILD, E2E_KEEP=1, E2E_WATCHDOG (900 s).
# Prints one PASS/FAIL line per check, then "N passed, M failed".
set -euo pipefail

if [ -z "${N2P_E2E_UNDER_WATCHDOG:-}" ]; then
        export N2P_E2E_UNDER_WATCHDOG=1
        exec timeout -k 60 "${E2E_WATCHDOG:-900}" bash "$0" "$@"
fi

[ "$(id -u)" = 0 ] || { echo "e2e-valgrind: needs root (network and mount namespaces); skipped"; exit 77; }
command -v valgrind >/dev/null || { echo "e2e-valgrind: valgrind is missing (apt-get install -y valgrind); skipped"; exit 77; }

SRC=$(cd "${N2P_SOURCE:-$(dirname "$0")/..}" && pwd)
LIB=$SRC/tests/lib
SUPP=$SRC/tests/valgrind.supp
P=n2pv$$-
HA=${P}ha
HC=${P}hc
R=${TMPDIR:-/tmp}/n2p-e2e-valgrind.$$
HA_IP=10.1.0.2
HC_IP=10.1.0.3
PORT=7787
export R BIG_MB=${BIG_MB:-16}
N2P_COMM='n2pctl|n2p|n2pd|memcheck.*|valgrind.*'
SETUP_DONE=0
# Under memcheck everything runs 20-50 times slower: wider waits than e2e-lan's.
SLOW=60

H_NAME=e2e-valgrind
H_LOGDIR=$R/log
# shellcheck source=lib/harness.sh
. "$LIB/harness.sh"

TD=$LIB/two-daemons.sh
in_ha() { ip netns exec "$HA" "$@"; }
in_hc() { ip netns exec "$HC" "$@"; }

sanitized() { # BUILD_DIR: configured with any -Db_sanitize?
        local f=$1/meson-info/intro-buildoptions.json
        [ -f "$f" ] || return 1
        ! grep -q '"name": "b_sanitize", "value": "none"' "$f"
}

VG=(valgrind --tool=memcheck --error-exitcode=99 --trace-children=yes --track-fds=no
        --leak-check=no --num-callers=30 --suppressions="$SUPP")

# vg_start NAME HOST ARGS...: n2pctl ARGS under memcheck in HOST's netns; one
# memcheck log per process, $R/vg/NAME.PID.log (workers get their own). The exit
# status lands in $R/n2p/NAME.rc; $R/pids/n2p-NAME.pid is the memcheck process.
vg_start() {
        local name=$1 host=$2 w t c
        shift 2
        mkdir -p "$R/rt/$name"
        chmod 700 "$R/rt/$name"
        : >"$R/n2p/$name.out"
        : >"$R/n2p/$name.err"
        rm -f "$R/n2p/$name.rc"
        (
                rc=0
                ip netns exec "$P$host" env XDG_RUNTIME_DIR="$R/rt/$name" timeout -k 10 600 \
                        "${VG[@]}" --log-file="$R/vg/$name.%p.log" "$BIN" "$@" \
                        >"$R/n2p/$name.out" 2>"$R/n2p/$name.err" </dev/null || rc=$?
                echo "$rc" >"$R/n2p/$name.rc"
        ) &
        w=$!
        wait_for 10 eval 't=$(ps -o pid= --ppid "$w" | head -n1 | tr -d " "); [ -n "$t" ]' ||
                { echo "vg_start: $name did not start" >&2; return 1; }
        echo "$t" >"$R/pids/n2p-$name.wrap"
        wait_for 10 eval 'c=$(ps -o pid= --ppid "$t" | head -n1 | tr -d " "); [ -n "$c" ]' ||
                { echo "vg_start: $name did not start" >&2; return 1; }
        echo "$c" >"$R/pids/n2p-$name.pid"
}
n2p_pid() { cat "$R/pids/n2p-$1.pid"; }
n2p_wrap() { cat "$R/pids/n2p-$1.wrap"; }

setup() {
        local t
        for t in ip nsenter unshare nix nix-daemon jq timeout meson ninja; do
                command -v "$t" >/dev/null || { echo "e2e-valgrind: missing $t" >&2; exit 1; }
        done
        mkdir -p "$R/log" "$R/n2p" "$R/run" "$R/pids" "$R/vg" "$R/rt"
        if [ -n "${N2P_VALGRIND_BUILD:-}" ]; then
                BUILD=$(cd "$N2P_VALGRIND_BUILD" && pwd)
                ! sanitized "$BUILD" || { echo "e2e-valgrind: $BUILD is built with sanitizers" >&2; exit 1; }
        elif [ -n "${N2P_BUILD:-}" ] && ! sanitized "$N2P_BUILD"; then
                BUILD=$(cd "$N2P_BUILD" && pwd)
        else
                BUILD=$R/build
                h_log "${N2P_BUILD:-no build} is sanitized: a plain build in $BUILD"
                meson setup "$BUILD" "$SRC" >"$R/log/build.log" 2>&1 &&
                        timeout 900 ninja -C "$BUILD" src/n2pctl >>"$R/log/build.log" 2>&1 ||
                        { tail -n 20 "$R/log/build.log" >&2; echo "e2e-valgrind: build failed" >&2; exit 1; }
        fi
        BIN=$BUILD/src/n2pctl
        [ -x "$BIN" ] || { echo "e2e-valgrind: $BIN not built" >&2; exit 1; }
        [ -f "$SUPP" ] || { echo "e2e-valgrind: no $SUPP" >&2; exit 1; }
        h_log "state $R, namespaces $HA $HC, build $BUILD"

        ns_setup "$HA"
        ns_setup "$HC"
        ip netns exec "$HA" ip link add eth0 type veth peer name eth0 netns "$HC"
        in_ha ip addr add "$HA_IP/24" dev eth0
        in_hc ip addr add "$HC_IP/24" dev eth0
        in_ha ip link set eth0 up
        in_hc ip link set eth0 up
        timeout 10 ip netns exec "$HC" sh -c "until ping -c1 -W1 $HA_IP >/dev/null 2>&1; do sleep 0.1; done"

        timeout 60 "$TD" up >"$R/log/daemons.log" 2>&1 || { cat "$R/log/daemons.log" >&2; exit 1; }
        timeout 300 "$TD" mkpaths closure big >>"$R/log/daemons.log" 2>&1
        SETUP_DONE=1
        h_log "setup done"
}

teardown() {
        local f
        trap - EXIT
        trap ':' TERM INT
        [ -d "$R/pids" ] && for f in "$R"/pids/n2p-*.pid; do
                [ -e "$f" ] || continue
                stop_checked "$(cat "$f")" "$N2P_COMM" 10
        done
        [ -d "$R/pids" ] && for f in "$R"/pids/n2p-*.wrap; do
                [ -e "$f" ] || continue
                stop_checked "$(cat "$f")" timeout 2
        done
        ns_teardown "$HA"
        ns_teardown "$HC"
        [ -d "$R/pids" ] && "$TD" down >>"$R/log/daemons.log" 2>&1 || true
        if [ "${E2E_KEEP:-0}" = 1 ]; then
                h_log "kept $R"
        elif { [ "$H_FAIL" -gt 0 ] || [ "$SETUP_DONE" = 0 ]; } && [ -d "$R" ]; then
                rm -rf "$R/client" "$R/server" "$R/gen" "$R/build"
                h_log "logs kept in $R/log, $R/n2p and $R/vg"
        elif [ -f "$R/.two-daemons" ] || [ -d "$R/n2p" ]; then
                rm -rf "$R"
        fi
}
on_signal() {
        trap ':' TERM INT
        H_FAIL=$((H_FAIL + 1))
        echo "FAIL: interrupted (watchdog ${E2E_WATCHDOG:-900} s, or a signal) during check $H_N"
        h_summary || true
        exit 143
}
trap teardown EXIT
trap on_signal TERM INT

# ------------------------------------------------------------------ checks
t_server() {
        vg_start server ha server --listen "$HA_IP:$PORT" --nix-daemon-socket "$R/run/server.sock" --one-time-key
        wait_for "$SLOW" grep -q 'long address: *n2p1' "$R/n2p/server.err" ||
                { cat "$R/n2p/server.err" >&2; fail "no long address within $SLOW s"; }
        sed -n 's/.*long address: *\(n2p1[a-z2-7]*\).*/\1/p' "$R/n2p/server.err" | head -n1 >"$R/server.long"
        grep -q 'Memcheck' "$R"/vg/server.*.log || fail "the server is not running under memcheck"
}

t_client() {
        vg_start client hc connect "$(cat "$R/server.long")" --socket "$R/run/peer.sock" --one-time-key
        wait_for "$SLOW" grep -q '^unix:' "$R/n2p/client.out" ||
                { cat "$R/n2p/client.err" >&2; fail "no unix: line within $SLOW s"; }
}

t_copy() { # VAR
        local out
        out=$(timeout 600 "$TD" copy "unix:$R/run/peer.sock" "$1" 2>&1) || { echo "$out"; fail "copy of $1 failed"; }
        echo "$out"
        detail "$(grep -o 'copy OK in [0-9.]* s ([0-9]* paths sent)' <<<"$out")"
}

t_worker_traced() {
        local f n=0
        # the worker's memcheck log names its command line: "n2pctl __worker" or the
        # /proc/self/exe it was started as
        for f in "$R"/vg/server.*.log; do
                grep -q '__worker' "$f" && n=$((n + 1))
        done
        ls -l "$R"/vg/
        [ "$n" -ge 1 ] || fail "no memcheck log of a worker: valgrind did not follow the exec"
        detail "$n worker log(s)"
}

exit_status() { # NAME: the exit status once it is known (the wrapper wrote it)
        wait_for 10 test -s "$R/n2p/$1.rc" || { echo "no exit status"; return 0; }
        cat "$R/n2p/$1.rc"
}

t_stop() {
        local rc rs
        kill_checked TERM "$(n2p_pid client)" "$N2P_COMM"
        # --one-time-key: the server exits by itself once its one session ended
        timeout "$((SLOW * 2))" tail --pid="$(n2p_pid server)" -f /dev/null ||
                { kill_checked TERM "$(n2p_pid server)" "$N2P_COMM"; fail "server still running $((SLOW * 2)) s after its session ended"; }
        timeout "$SLOW" tail --pid="$(n2p_pid client)" -f /dev/null || fail "client still running $SLOW s after SIGTERM"
        rc=$(exit_status client)
        rs=$(exit_status server)
        [ "$rc" = 0 ] || fail "client exit status $rc (99: memcheck errors)"
        [ "$rs" = 0 ] || fail "server exit status $rs (99: memcheck errors)"
}

t_memcheck_clean() {
        local f bad="" n=0 summary
        for f in "$R"/vg/*.log; do
                n=$((n + 1))
                summary=$(grep 'ERROR SUMMARY:' "$f" | tail -n1)
                echo "$(basename "$f"): ${summary:-no summary (killed?)}"
                if ! grep -q 'ERROR SUMMARY: 0 errors' "$f"; then
                        bad="$bad $(basename "$f")"
                        grep -B2 -A25 -m3 -E '^==[0-9]+== (Invalid|Conditional|Use of|Syscall param|Mismatched|Source and destination)' "$f" || true
                fi
        done
        [ "$n" -ge 3 ] || fail "only $n memcheck logs (server, worker, client expected)"
        [ -z "$bad" ] || fail "memcheck errors or no summary in:$bad"
        detail "$n processes, 0 errors each"
}

# ------------------------------------------------------------------ run
setup

check "server under memcheck prints its long address" t_server
check "client under memcheck prints its unix: line" t_client
check "nix copy CLOSURE through n2p under memcheck, verified" t_copy CLOSURE
check "nix copy BIG ($BIG_MB MiB) through n2p under memcheck, verified" t_copy BIG
check "the session worker ran under memcheck too (trace-children)" t_worker_traced
check "client SIGTERM: both exit 0; the one-time server ends with its session" t_stop
check "memcheck: no errors in any process (server, worker, client)" t_memcheck_clean

h_summary
