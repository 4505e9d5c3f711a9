#!/usr/bin/env bash
# e2e-loss.sh — a 256 MiB nix copy through n2p over a path that loses 2 % of the
# packets each way (and delays them), verified on the receiving store.
#
#   n2p-ha 10.1.0.2 --- ra (delayq: 5 ms, 2 % loss) --- pub --- rb --- n2p-hb 10.2.0.2
#   n2pctl server                                                      n2pctl connect
#     -> nix-daemon (server store)                       nix copy --to unix:… (client store)
#
# tests/lib/topo.sh builds the path (routers in `none` mode: routed, no NAT); the
# daemons are tests/lib/two-daemons.sh's. Every packet between ha and hb crosses
# ra's delay line in both directions, so data and acknowledgements are both lost.
#
# Run by `meson test --suite e2e` (N2P_BUILD, N2P_SOURCE set) or by hand as root:
#   N2P_BUILD=build tests/e2e-loss.sh
# Env: E2E_KEEP=1 keeps the work directory, LOSS_MB (256), LOSS_PCT (2), E2E_WATCHDOG (1200 s).
set -euo pipefail

if [ -z "${N2P_E2E_UNDER_WATCHDOG:-}" ]; then
        export N2P_E2E_UNDER_WATCHDOG=1
        exec timeout -k 60 "${E2E_WATCHDOG:-1200}" bash "$0" "$@"
fi

[ "$(id -u)" = 0 ] || { echo "e2e-loss: needs root (network and mount namespaces); skipped"; exit 77; }

SRC=$(cd "${N2P_SOURCE:-$(dirname "$0")/..}" && pwd)
BUILD=$(cd "${N2P_BUILD:-$SRC/build}" && pwd)
LIB=$SRC/tests/lib
BIN=$BUILD/src/n2pctl
TOPO=$LIB/topo.sh
TD=$LIB/two-daemons.sh
export N2P_NS_PREFIX=n2pl$$-
R=${TMPDIR:-/tmp}/n2p-e2e-loss.$$
export N2P_TOPO_STATE=$R/topo
export R BIG_MB=${LOSS_MB:-256}
LOSS_PCT=${LOSS_PCT:-2}
HA_IP=10.1.0.2
N2P_COMM='n2pctl|n2p|n2pd'

H_NAME=e2e-loss
H_LOGDIR=$R/log
mkdir -p "$R/log" "$R/n2p" "$R/n2p-pids" "$R/run"
# shellcheck source=lib/harness.sh
. "$LIB/harness.sh"

td() { "$TD" "$@"; }

n2p_start() { # NAME HOST CMD...
        local name=$1 host=$2 w c
        shift 2
        ip netns exec "$N2P_NS_PREFIX$host" timeout -k 5 1100 "$@" \
                >"$R/n2p/$name.out" 2>"$R/n2p/$name.err" </dev/null &
        w=$!
        echo "$w" >"$R/n2p-pids/$name.wrap"
        wait_for 5 eval 'c=$(ps -o pid= --ppid "$w" | head -n1 | tr -d " "); [ -n "$c" ]' ||
                { echo "$name did not start" >&2; return 1; }
        echo "$c" >"$R/n2p-pids/$name.pid"
}

teardown() {
        local f
        trap - EXIT
        trap ':' TERM INT
        for f in "$R"/n2p-pids/*.pid; do
                [ -e "$f" ] || continue
                stop_checked "$(cat "$f")" "$N2P_COMM" 5
        done
        for f in "$R"/n2p-pids/*.wrap; do
                [ -e "$f" ] || continue
                stop_checked "$(cat "$f")" timeout 2
        done
        "$TOPO" down >/dev/null 2>&1 || true
        td down >>"$R/log/daemons.log" 2>&1 || true
        if [ "${E2E_KEEP:-0}" = 1 ]; then
                h_log "kept $R"
        elif [ "$H_FAIL" -gt 0 ]; then
                rm -rf "$R/client" "$R/server" "$R/gen"
                h_log "logs kept in $R/log and $R/n2p"
        else
                rm -rf "$R"
        fi
}
trap teardown EXIT
trap 'H_FAIL=$((H_FAIL + 1)); echo "FAIL: interrupted"; exit 143' TERM INT

# Not a check: the daemons must outlive it (a check runs in a subshell).
setup() {
        local t
        for t in ip iptables nsenter nix nix-daemon jq socat timeout cc; do
                command -v "$t" >/dev/null || { echo "e2e-loss: missing $t" >&2; exit 1; }
        done
        [ -x "$BIN" ] || { echo "e2e-loss: $BIN not built" >&2; exit 1; }
        "$TOPO" up >"$R/log/topo.log" 2>&1 || { tail -n 5 "$R/log/topo.log" >&2; exit 1; }
        "$TOPO" nat ra none >>"$R/log/topo.log"
        "$TOPO" nat rb none >>"$R/log/topo.log"
        timeout 120 "$TD" up >"$R/log/daemons.log" 2>&1 || { tail -n 5 "$R/log/daemons.log" >&2; exit 1; }
        timeout 600 "$TD" mkpaths big closure >>"$R/log/daemons.log" 2>&1 || { tail -n 5 "$R/log/daemons.log" >&2; exit 1; }
}

t_server_and_client() {
        n2p_start server ha "$BIN" server --listen "$HA_IP:7787" --nix-daemon-socket "$R/run/server.sock" --one-time-key
        wait_for 15 grep -q 'long address: *n2p1' "$R/n2p/server.err" || fail "no long address from the server"
        sed -n 's/.*long address: *\(n2p1[a-z2-7]*\).*/\1/p' "$R/n2p/server.err" | head -n1 >"$R/server.long"
        # the loss starts before the session does: the handshake and ICE live with it too
        "$TOPO" delay ra 5 "$LOSS_PCT" >>"$R/log/topo.log" || fail "delay line did not start"
        n2p_start client hb "$BIN" connect "$(cat "$R/server.long")" --socket "$R/run/c.sock" --one-time-key
        wait_for 30 grep -q '^unix:' "$R/n2p/client.out" ||
                fail "no unix: line within 30 s: $(tail -n 2 "$R/n2p/client.err")"
}

t_copy_big() {
        local t0 t1
        t0=$(date +%s)
        timeout 900 "$TD" copy "unix://$R/run/c.sock" BIG >"$R/log/copy-big.log" 2>&1 ||
                fail "copy failed: $(tail -n 3 "$R/log/copy-big.log")"
        t1=$(date +%s)
        grep -q 'VERIFY OK' "$R/log/copy-big.log" || fail "not verified"
        td valid BIG || fail "path not valid on the server"
        detail "$BIG_MB MiB in $((t1 - t0)) s through ${LOSS_PCT} % loss, narHash and 'nix store verify' clean"
}

t_copy_closure() {
        timeout 300 "$TD" copy "unix://$R/run/c.sock" CLOSURE >"$R/log/copy-closure.log" 2>&1 ||
                fail "copy failed: $(tail -n 3 "$R/log/copy-closure.log")"
        grep -q 'VERIFY OK' "$R/log/copy-closure.log" || fail "not verified"
}

t_loss_happened() {
        local lost
        "$TOPO" delay ra off >>"$R/log/topo.log"
        lost=$(grep -o 'lost=[0-9]*\|lost [0-9]*' "$R/topo/delayq-ra.log" | tail -n1 | tr -dc 0-9)
        [ -n "$lost" ] || lost=$(tail -n 3 "$R/topo/delayq-ra.log" | tr '\n' ' ')
        detail "delayq: $(tail -n 1 "$R/topo/delayq-ra.log")"
        [ -n "$lost" ] && [ "$lost" != 0 ] || fail "the delay line lost nothing: $(tail -n 2 "$R/topo/delayq-ra.log")"
}

h_log "state $R, prefix $N2P_NS_PREFIX, build $BUILD"
h_log "topology, nix daemons, a ${BIG_MB} MiB path"
setup
check "n2p server in ha, client in hb across the lossy path" t_server_and_client
[ "$H_FAIL" = 0 ] && check "nix copy of ${BIG_MB} MiB through ${LOSS_PCT} % loss, verified" t_copy_big
[ "$H_FAIL" = 0 ] && check "nix copy of a closure through the same session, verified" t_copy_closure
[ "$H_FAIL" = 0 ] && check "the delay line really dropped packets" t_loss_happened
h_summary
