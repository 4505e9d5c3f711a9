#!/usr/bin/env bash
# e2e-nat.sh — the NAT matrix: real `nix copy --to` through n2p between two
# home networks, behind cone and symmetric NATs, with a rendezvous service and
# coturn on the "internet" (tests/lib/topo.sh builds it).
#
#                          ${P}pub  ("the internet")
#   +----------------------------------------------------------------------+
#   |  10.200.0.1  n2p-rendezvous :7788, coturn TURN :3478 (user n2p:n2p)   |
#   |  10.200.0.2  coturn plain STUN :3478                                 |
#   +------------+-------------------------------------+-------------------+
#                |                                     |
#        wan 10.200.0.11                       wan 10.200.0.12
#   +------------+-------------+          +------------+-------------+
#   | ${P}ra  cone|sym NAT     |          | ${P}rb  cone|sym NAT     |
#   |         (delay line)     |          |   delay line (cell 5)    |
#   +--- lan 10.1.0.1/24 ------+          +--- lan 10.2.0.1/24 ------+
#         |              |                        |
#   10.1.0.2         10.1.0.3                 10.2.0.2
#   ${P}ha           ${P}hc                   ${P}hb
#   n2pctl connect   n2pctl server (cell 1)   n2pctl server (cells 2-6)
#         |                                       |
#   unix $R/run/cN.sock                     unix $R/run/server.sock
#         |                                       |
#   nix copy --to (client nix-daemon)       server nix-daemon (verifies)
#
# Both nix-daemons run in mount namespaces of their own (tests/lib/two-daemons.sh);
# unix sockets are paths, so they reach across the network namespaces.
#
# | cell | client (ha)   | server        | expected path                     |
# | 1    | same LAN (hc) | no servers    | host <-> host (LAN discovery)     |
# | 2    | cone          | cone          | direct (srflx/prflx)              |
# | 3    | symmetric     | cone          | relay                             |
# | 4    | symmetric     | symmetric     | relay                             |
# | 5    | cone          | cone, +50 ms  | direct                            |
# | 6    | cone          | cone, restart | a new session for the next copy   |
# plus: n2pctl status (pair, rtt, cipher: AES-256-GCM both ways, or ChaCha20-Poly1305
# both ways when one end sets N2P_NO_AES), dead peer noticed within 12 s, rendezvous down, wrong TURN
# password. Cells 2-6 use the SHORT address and --rendezvous on both sides.
#
# Run by `meson test --suite e2e e2e-nat` (N2P_BUILD, N2P_SOURCE set) or by hand
# as root:   N2P_BUILD=build tests/e2e-nat.sh
# Env: E2E_KEEP=1 keeps $R, E2E_WATCHDOG (600 s), NAT_BIG_MB (8) sizes the big
# path copied in every cell.
# Prints one PASS/FAIL line per check, the timing table, then "N passed,
# M failed"; exits 1 on failure, 77 when not root.
set -euo pipefail

if [ -z "${N2P_E2E_UNDER_WATCHDOG:-}" ]; then
        export N2P_E2E_UNDER_WATCHDOG=1
        exec timeout -k 60 "${E2E_WATCHDOG:-600}" bash "$0" "$@"
fi

[ "$(id -u)" = 0 ] || { echo "e2e-nat: needs root (network and mount namespaces); skipped"; exit 77; }

SRC=$(cd "${N2P_SOURCE:-$(dirname "$0")/..}" && pwd)
BUILD=$(cd "${N2P_BUILD:-$SRC/build}" && pwd)
LIB=$SRC/tests/lib
BIN=$BUILD/src/n2pctl
RVBIN=$BUILD/src/n2p-rendezvous
TOPO=$LIB/topo.sh
TD=$LIB/two-daemons.sh
export N2P_NS_PREFIX=n2pn$$-
P=$N2P_NS_PREFIX
R=${TMPDIR:-/tmp}/n2p-e2e-nat.$$
export N2P_TOPO_STATE=$R/topo N2P_TURN_VERBOSE=0
export R BIG_MB=${NAT_BIG_MB:-8} SMALL_N=200 WIDE_N=20
N2P_COMM='n2pctl|n2p|n2pd|n2p-rendezvous'
PROC_LIMIT=600
SETUP_DONE=0

RV=10.200.0.1:7788
STUN=10.200.0.2:3478            # plain STUN: not the TURN port (recipes/nat pitfall 3)
TURN=turn:n2p:n2p@10.200.0.1:3478
NET=(--rendezvous "$RV" --stun "$STUN" --turn "$TURN")

H_NAME=e2e-nat
H_LOGDIR=$R/log
# shellcheck source=lib/harness.sh
. "$LIB/harness.sh"

td() { timeout 300 "$TD" "$@"; }
topo() { timeout 60 "$TOPO" "$@" >>"$R/log/topo.log" 2>&1; }
now() { date +%s.%N; }
ms_since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%d", (b - a) * 1000 }'; }

# ------------------------------------------------------------------ processes
# n2p_start NAME HOST CMD...: CMD in HOST's netns under `timeout`, with
# XDG_RUNTIME_DIR of that host (control sockets for `n2pctl status` stay apart);
# stdout/stderr in $R/n2p/NAME.{out,err}; $R/pids/n2p-NAME.pid is CMD itself.
n2p_start() {
        local name=$1 host=$2 w c=
        shift 2
        mkdir -p "$R/xdg/$host"
        chmod 700 "$R/xdg/$host"
        : >"$R/n2p/$name.out"
        : >"$R/n2p/$name.err"
        # ip netns exec execs env, which execs timeout, which forks CMD
        ip netns exec "$P$host" env XDG_RUNTIME_DIR="$R/xdg/$host" timeout -k 5 "$PROC_LIMIT" "$@" \
                >"$R/n2p/$name.out" 2>"$R/n2p/$name.err" </dev/null &
        w=$!
        echo "$w" >"$R/pids/n2p-$name.wrap"
        wait_for 5 eval 'c=$(ps -o pid= --ppid "$w" | head -n1 | tr -d " "); [ -n "$c" ]' ||
                { echo "n2p_start: $name did not start" >&2; return 1; }
        echo "$c" >"$R/pids/n2p-$name.pid"
}
n2p_pid() { cat "$R/pids/n2p-$1.pid"; }
n2p_alive() { pid_is "$(n2p_pid "$1" 2>/dev/null)" "$N2P_COMM"; }
n2p_stop() {
        stop_checked "$(n2p_pid "$1" 2>/dev/null)" "$N2P_COMM" 5
        stop_checked "$(cat "$R/pids/n2p-$1.wrap" 2>/dev/null)" timeout 2
}

# A check that failed half-way leaves its processes behind: end them before the
# next check, so that one failure does not take the following checks with it.
fresh() {
        local f n
        for f in "$R"/pids/n2p-*.pid; do
                [ -e "$f" ] || continue
                n=$(basename "$f" .pid)
                n=${n#n2p-}
                [ "$n" = rendezvous ] || n2p_stop "$n"
        done
}

# rv_up / rv_down: the rendezvous service in pub
rv_up() {
        ! n2p_alive rendezvous || return 0
        n2p_start rendezvous pub "$RVBIN" --listen "$RV"
        # it is ready when it answers: give it a moment, then make sure it lives
        sleep 0.3
        n2p_alive rendezvous || { cat "$R/n2p/rendezvous.err" >&2; return 1; }
}
rv_down() { n2p_stop rendezvous; }

# server_up NAME HOST [OPTIONS...]: n2pctl server with the persistent key; waits
# for its addresses and, with --rendezvous, for the registration.
server_up() {
        local name=$1 host=$2
        shift 2
        n2p_start "$name" "$host" "$BIN" server --nix-daemon-socket "$R/run/server.sock" \
                --secret-key-file "$R/keys/server.key" "$@"
        wait_for 15 grep -q 'long address: *n2p1' "$R/n2p/$name.err" ||
                { cat "$R/n2p/$name.err"; fail "$name: no long address within 15 s"; }
        [ -n "${SERVER_NO_RV_WAIT:-}" ] ||
        case " $* " in *" --rendezvous "*)
                wait_for 15 grep -q 'registered with rendezvous' "$R/n2p/$name.err" ||
                        { cat "$R/n2p/$name.err"; fail "$name: not registered with the rendezvous within 15 s"; } ;;
        esac
        sed -n 's/.*short address: *\(n2p1[a-z2-7]*\).*/\1/p' "$R/n2p/$name.err" | head -n1 >"$R/server.short"
        sed -n 's/.*long address: *\(n2p1[a-z2-7]*\).*/\1/p' "$R/n2p/$name.err" | head -n1 >"$R/$name.long"
}

# client_up NAME ADDR [OPTIONS...]: n2pctl connect in ha; returns once it printed
# unix:, and writes the milliseconds from its start to that line to NAME.ready.
client_up() {
        local name=$1 addr=$2 t0
        shift 2
        t0=$(now)
        # CLIENT_ENV: VAR=VALUE words for the client only
        # shellcheck disable=SC2086
        n2p_start "$name" ha env ${CLIENT_ENV:-} "$BIN" connect "$addr" --socket "$R/run/$name.sock" --one-time-key "$@"
        local i
        for ((i = 0; i < 1000; i++)); do   # 20 s
                grep -q '^unix:' "$R/n2p/$name.out" && break
                n2p_alive "$name" || break
                sleep 0.02
        done
        grep -q '^unix:' "$R/n2p/$name.out" ||
                { sed 's/^/  client stderr: /' "$R/n2p/$name.err"; fail "$name: no unix: line within 20 s"; }
        ms_since "$t0" >"$R/n2p/$name.ready"
}
url_of() { echo "unix:$R/run/$1.sock"; }

# pair_of NAME [first|last]: "LOCAL REMOTE" candidate types from the client's
# "connected to n2p1... (LOCAL <-> REMOTE)" line
pair_of() {
        sed -n 's/.*connected to n2p1[a-z2-7]* (\([a-z]*\) <-> \([a-z]*\)).*/\1 \2/p' "$R/n2p/$1.err" |
                { if [ "${2:-first}" = last ]; then tail -n1; else head -n1; fi; }
}

# copy_verified NAME VAR: nix copy through client NAME, verified on the server;
# prints the seconds the copy took
copy_verified() {
        local out
        out=$(td copy "$(url_of "$1")" "$2" 2>&1) || { echo "$out"; fail "copy of $2 through $1 failed: $(grep -E 'ERROR|error' <<<"$out" | tail -n1)"; }
        echo "$out" >>"$R/log/copies.log"
        sed -n 's/.*copy OK in \([0-9.]*\) s.*/\1/p' <<<"$out"
}

# record CELL CLIENT SERVER EXPECTED PAIR READY_MS COPY_S
record() { printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$@" >>"$R/times.tsv"; }

assert_direct() { # LOCAL REMOTE
        [ -n "$1" ] || fail "no 'connected to ... (X <-> Y)' line"
        [ "$1" != relay ] && [ "$2" != relay ] || fail "pair $1 <-> $2 is relayed, expected direct"
}
assert_relay() {
        [ -n "$1" ] || fail "no 'connected to ... (X <-> Y)' line"
        [ "$1" = relay ] || [ "$2" = relay ] || fail "pair $1 <-> $2 is not relayed, expected relay"
}

# ------------------------------------------------------------------ topology
setup() {
        local t
        for t in ip iptables conntrack turnserver nsenter unshare nix nix-daemon jq timeout gcc; do
                command -v "$t" >/dev/null || { echo "e2e-nat: missing $t" >&2; exit 1; }
        done
        [ -x "$BIN" ] && [ -x "$RVBIN" ] || { echo "e2e-nat: $BIN or $RVBIN not built" >&2; exit 1; }
        mkdir -p "$R/log" "$R/n2p" "$R/run" "$R/pids" "$R/keys" "$R/xdg"
        : >"$R/times.tsv"
        h_log "state $R, namespaces ${P}*, build $BUILD"
        timeout 120 "$TOPO" up >>"$R/log/topo.log" 2>&1 || { tail -n 30 "$R/log/topo.log" >&2; exit 1; }
        topo turn start || { tail -n 30 "$R/log/topo.log" >&2; exit 1; }
        timeout 60 "$TD" up >"$R/log/daemons.log" 2>&1 || { cat "$R/log/daemons.log" >&2; exit 1; }
        h_log "making test paths (BIG_MB=$BIG_MB)"
        # every copy gets paths the server never saw
        timeout 300 "$TD" mkpaths closure=C1 big=B1 closure=C2 big=B2 closure=C3 big=B3 \
                closure=C4 big=B4 closure=C5 big=B5 closure=C6 big=B6 closure=C6B big=B6B \
                closure=DEAD closure=LONG >>"$R/log/daemons.log" 2>&1 ||
                { tail -n 20 "$R/log/daemons.log" >&2; exit 1; }
        timeout 15 "$BIN" keygen --secret-key-file "$R/keys/server.key" >/dev/null
        SETUP_DONE=1
        h_log "setup done"
}

teardown() {
        local f
        trap - EXIT
        trap ':' TERM INT
        [ -d "$R/pids" ] && for f in "$R"/pids/n2p-*.pid; do
                [ -e "$f" ] || continue
                stop_checked "$(cat "$f")" "$N2P_COMM" 3
        done
        [ -d "$R/pids" ] && for f in "$R"/pids/n2p-*.wrap; do
                [ -e "$f" ] || continue
                stop_checked "$(cat "$f")" timeout 2
        done
        # kills what is still inside the namespaces (workers, coturn, delayq)
        timeout 60 "$TOPO" down >>"$R/log/topo.log" 2>&1 || true
        [ -d "$R/pids" ] && timeout 60 "$TD" down >>"$R/log/daemons.log" 2>&1 || true
        if [ "${E2E_KEEP:-0}" = 1 ]; then
                h_log "kept $R"
        elif { [ "$H_FAIL" -gt 0 ] || [ "$SETUP_DONE" = 0 ]; } && [ -d "$R" ]; then
                rm -rf "$R/client" "$R/server" "$R/gen"
                h_log "logs kept in $R/log and $R/n2p"
        elif [ -d "$R/n2p" ]; then
                rm -rf "$R"
        fi
}
on_signal() {
        trap ':' TERM INT
        H_FAIL=$((H_FAIL + 1))
        echo "FAIL: interrupted (watchdog ${E2E_WATCHDOG:-600} s, or a signal) during check $H_N"
        h_summary || true
        exit 143
}
trap teardown EXIT
trap on_signal TERM INT

# ------------------------------------------------------------------ the cells
# cell_run CELL CLIENT_SITE SERVER_SITE EXPECT(direct|relay|host) SERVER_HOST ADDR_KIND [CLIENT OPTIONS...]
cell_run() {
        local cell=$1 csite=$2 ssite=$3 expect=$4 shost=$5 kind=$6 addr pair ready t1 t2
        shift 6
        local name=c$cell
        if [ "$expect" = host ]; then
                server_up "s$cell" "$shost"
        else
                server_up "s$cell" "$shost" "${NET[@]}"
        fi
        if [ "$kind" = short ]; then addr=$(cat "$R/server.short"); else addr=$(cat "$R/s$cell.long"); fi
        client_up "$name" "$addr" "$@"
        ready=$(cat "$R/n2p/$name.ready")
        read -r -a pair <<<"$(pair_of "$name")"
        case $expect in
        host) [ "${pair[0]:-}" = host ] && [ "${pair[1]:-}" = host ] ||
                fail "pair ${pair[*]:-none}, expected host <-> host" ;;
        direct) assert_direct "${pair[0]:-}" "${pair[1]:-}"
                [ "${pair[0]}" != host ] || [ "${pair[1]}" != host ] ||
                        fail "host <-> host across two NATs cannot be" ;;
        relay) assert_relay "${pair[0]:-}" "${pair[1]:-}" ;;
        esac
        t1=$(copy_verified "$name" "C$cell")
        t2=$(copy_verified "$name" "B$cell")
        record "$cell" "$csite" "$ssite" "$expect" "${pair[0]} <-> ${pair[1]}" "$ready" "$t1 / $t2"
        detail "${pair[0]} <-> ${pair[1]}; connect -> unix: ${ready} ms; copies ${t1} s + ${t2} s"
}
cell_end() { n2p_stop "c$1"; n2p_stop "s$1"; }

# SERVER_HOST: `n2pctl status` there, once the worker's report (every second)
# covers the copies: over 100 kB received
server_status_after_copies() {
        local i st=
        for ((i = 0; i < 40; i++)); do
                st=$(XDG_RUNTIME_DIR=$R/xdg/$1 timeout 10 "$BIN" status 2>&1) || { echo "$st"; fail "n2pctl status (server) failed"; }
                grep -qE 'received +[1-9][0-9]{5,} bytes' <<<"$st" && break
                sleep 0.1
        done
        echo "$st"
}

t_cell1() {
        fresh
        # hc and ha share ra's LAN; no rendezvous, STUN or TURN given to anyone
        # the client keeps to ChaCha20-Poly1305 (as on a CPU without AES-NI): so
        # must the server's worker, which would otherwise use AES-256-GCM
        CLIENT_ENV=N2P_NO_AES=1 cell_run 1 "same LAN" "same LAN, no servers" host hc short
        local ready; ready=$(cat "$R/n2p/c1.ready")
        [ "$ready" -lt 3000 ] || fail "LAN connection took $ready ms (defaults must not add seconds)"
        local st
        st=$(XDG_RUNTIME_DIR=$R/xdg/ha timeout 10 "$BIN" status 2>&1) || { echo "$st"; fail "n2pctl status failed"; }
        grep -qE 'cipher +chacha20-poly1305' <<<"$st" || { echo "$st"; fail "client with N2P_NO_AES=1 is not on chacha20-poly1305"; }
        st=$(server_status_after_copies hc)
        grep -qE 'cipher +chacha20-poly1305' <<<"$st" || { echo "$st"; fail "server seals with something else than its peer opens"; }
        detail "connect -> unix: $ready ms; N2P_NO_AES=1 on the client: both ends on chacha20-poly1305"
        cell_end 1
}

t_cell2() {
        fresh
        topo nat ra cone; topo nat rb cone
        cell_run 2 cone cone direct hb short "${NET[@]}"
        # n2pctl status on the client side: the session, its pair and its RTT
        local st
        st=$(XDG_RUNTIME_DIR=$R/xdg/ha timeout 10 "$BIN" status 2>&1) || { echo "$st"; fail "n2pctl status failed"; }
        echo "$st"
        grep -qE "pair +$(pair_of c2 | sed 's/ / <-> /')" <<<"$st" || fail "status shows no pair line matching '$(pair_of c2)'"
        grep -qE 'rtt +[0-9.]+ ms' <<<"$st" || fail "status shows no rtt"
        grep -qE 'sent +[1-9][0-9]* bytes' <<<"$st" || fail "status shows no bytes sent"
        grep -qE 'streams +[0-9]+' <<<"$st" || fail "status shows no streams line"
        grep -q "client of $(cat "$R/server.short")" <<<"$st" || fail "status does not name the peer's key"
        # both CPUs are this one: AES-256-GCM when it has AES-NI and PCLMUL (libsodium's test)
        local cipher=chacha20-poly1305
        grep -qw aes /proc/cpuinfo && grep -qw pclmulqdq /proc/cpuinfo && cipher=aes-256-gcm
        grep -qE "cipher +$cipher" <<<"$st" || fail "client status shows no 'cipher $cipher'"
        # and on the server side: the session with this client's key, and its pair
        local ck
        ck=$(sed -n 's/.*handshake from \(n2p1[a-z2-7]*\).*/\1/p' "$R/n2p/s2.err" | tail -n1)
        # the worker reports to the server once its own side of ICE is done
        local i
        for ((i = 0; i < 50; i++)); do
                st=$(XDG_RUNTIME_DIR=$R/xdg/hb timeout 10 "$BIN" status 2>&1) || { echo "$st"; fail "n2pctl status (server) failed"; }
                grep -q 'pair ' <<<"$st" && break
                sleep 0.1
        done
        echo "$st"
        grep -q "session $ck" <<<"$st" || fail "server status shows no session with $ck"
        grep -qE 'pair +(host|srflx|prflx) <-> (host|srflx|prflx)' <<<"$st" || fail "server status shows no direct pair"
        st=$(server_status_after_copies hb)
        grep -qE "cipher +$cipher" <<<"$st" || { echo "$st"; fail "server status shows no 'cipher $cipher'"; }
        detail "server status:$(grep -E 'pair ' <<<"$st" | head -n1 | tr -s ' ')"
        cell_end 2
}

t_cell3() {
        fresh
        topo nat ra sym; topo nat rb cone
        cell_run 3 symmetric cone relay hb short "${NET[@]}"
        cell_end 3
}

t_cell4() {
        fresh
        topo nat ra sym; topo nat rb sym
        cell_run 4 symmetric symmetric relay hb short "${NET[@]}"
        cell_end 4
}

cell5_body() {
        local st rtt
        cell_run 5 cone "cone, +50 ms RTT" direct hb short "${NET[@]}"
        st=$(XDG_RUNTIME_DIR=$R/xdg/ha timeout 10 "$BIN" status 2>&1 || true)
        echo "$st"
        rtt=$(sed -n 's/.*rtt *\([0-9.]*\) ms.*/\1/p' <<<"$st" | head -n1)
        [ -n "$rtt" ] || fail "status shows no rtt"
        awk -v r="$rtt" 'BEGIN { exit !(r >= 45) }' || fail "rtt $rtt ms, but the delay line adds 50 ms"
        detail "status rtt $rtt ms"
}

t_cell5() {
        local rc=0
        fresh
        topo nat ra cone; topo nat rb cone
        topo delay rb 25 || fail "topo.sh delay rb 25 failed"
        # the delay line comes off even when the cell fails
        ( cell5_body ) || rc=$?
        cell_end 5
        topo delay rb off
        [ "$rc" = 0 ] || exit "$rc"
}

t_cell6() {
        fresh
        topo nat ra cone; topo nat rb cone
        cell_run 6 cone "cone, restarted mid-session" direct hb short "${NET[@]}"
        local t0 t3 ready2 pair2 spid
        spid=$(n2p_pid s6)
        # the server stops while the session is up; the client is told (GOAWAY)
        stop_checked "$spid" "$N2P_COMM" 5
        wait_for 10 grep -q 'stopped or restarted' "$R/n2p/c6.err" ||
                { cat "$R/n2p/c6.err"; fail "the client was not told of the server's stop (GOAWAY) within 10 s"; }
        n2p_alive c6 || fail "n2pctl connect exited when the server stopped"
        server_up s6b hb "${NET[@]}"
        t0=$(now)
        t3=$(copy_verified c6 C6B)
        ready2=$(ms_since "$t0")
        copy_verified c6 B6B >/dev/null
        [ "$(grep -c 'connected to n2p1' "$R/n2p/c6.err")" -ge 2 ] || fail "no second 'connected to' line"
        pair2=$(pair_of c6 last)
        # shellcheck disable=SC2086
        assert_direct $pair2
        record 6b cone "restarted server, same connect" direct "${pair2/ / <-> }" "-" "$t3 (new session + copy: $ready2 ms)"
        detail "after restart: new session ${pair2/ / <-> }, first copy incl. session setup $ready2 ms"
        n2p_stop c6
        n2p_stop s6b
}

t_dead_peer() {
        fresh
        topo nat ra cone; topo nat rb cone
        server_up sd hb "${NET[@]}"
        client_up cd "$(cat "$R/server.short")" "${NET[@]}"
        timeout 30 "$TD" cnix nix store ping --store "$(url_of cd)" >/dev/null 2>&1 || fail "store ping failed"
        local w t0 dt
        w=$({ ps -o pid= --ppid "$(n2p_pid sd)" --sort=start_time || true; } | tail -n1 | tr -d ' ')
        [ -n "$w" ] || fail "server has no worker process"
        : >"$R/log/dead.mark"
        t0=$(now)
        kill -KILL "$w"
        local i
        for ((i = 0; i < 150; i++)); do   # 15 s
                grep -q 'lost the connection' "$R/n2p/cd.err" && break
                sleep 0.1
        done
        dt=$(ms_since "$t0")
        cat "$R/n2p/cd.err"
        grep -q 'lost the connection' "$R/n2p/cd.err" ||
                fail "the client did not notice the dead peer within 15 s"
        [ "$dt" -le 12000 ] || fail "the client noticed the dead peer only after $dt ms (limit 12 s)"
        n2p_alive cd || fail "n2pctl connect exited"
        # and the next Nix connection gets a new session, with the same n2pctl connect
        copy_verified cd DEAD >/dev/null
        detail "worker killed, client noticed after $dt ms; next copy made a new session"
        n2p_stop cd
        n2p_stop sd
}

# expect_error REGEX NAME CMD...: CMD exits non-zero within 15 s, with an error
# line on stderr that matches REGEX
expect_error() {
        local re=$1 name=$2 rc=0 t0 dt
        shift 2
        t0=$(now)
        timeout -k 5 30 "$@" >"$R/n2p/$name.out" 2>"$R/n2p/$name.err" </dev/null || rc=$?
        dt=$(ms_since "$t0")
        cat "$R/n2p/$name.err"
        detail "exit $rc after $dt ms: \"$(grep 'error' "$R/n2p/$name.err" | head -n1 | head -c 200)\""
        [ "$rc" != 124 ] && [ "$rc" != 137 ] || fail "still running after 30 s"
        [ "$rc" != 0 ] || fail "exit status 0"
        [ "$dt" -lt 15000 ] || fail "took $dt ms, limit 15 s"
        grep -qiE "error: .*($re)" "$R/n2p/$name.err" || fail "the error does not name the problem (/$re/)"
        ! grep -q '^unix:' "$R/n2p/$name.out" || fail "printed a unix: line although it failed"
}

t_rv_down_short() {
        fresh
        topo nat ra cone; topo nat rb cone
        server_up sr hb "${NET[@]}"
        rv_down
        expect_error 'rendezvous' rvdown ip netns exec "${P}ha" "$BIN" connect "$(cat "$R/server.short")" \
                --socket "$R/run/rvdown.sock" --one-time-key "${NET[@]}"
        n2p_stop sr
}

t_rv_down_long() {
        fresh
        # the rendezvous is still down (so no registration to wait for): the long
        # address reaches the node on the LAN
        SERVER_NO_RV_WAIT=1 server_up sl hc "${NET[@]}"
        client_up cl "$(cat "$R/sl.long")" "${NET[@]}"
        copy_verified cl LONG >/dev/null
        detail "connected in $(cat "$R/n2p/cl.ready") ms ($(pair_of cl | sed 's/ / <-> /')), copy verified"
        n2p_stop cl
        n2p_stop sl
}

t_wrong_turn() {
        fresh
        local badnet=(--rendezvous "$RV" --stun "$STUN" --turn turn:n2p:WRONG@10.200.0.1:3478)
        rv_up
        topo nat ra sym; topo nat rb sym
        server_up sw hb "${badnet[@]}"
        expect_error 'TURN' badturn ip netns exec "${P}ha" "$BIN" connect "$(cat "$R/server.short")" \
                --socket "$R/run/badturn.sock" --one-time-key "${badnet[@]}"
        n2p_stop sw
}

t_no_sanitizer_reports() {
        local f bad=""
        for f in "$R"/n2p/*.err; do
                grep -qE 'ERROR: (Address|Leak)Sanitizer|runtime error:' "$f" && bad="$bad $(basename "$f")"
        done
        [ -z "$bad" ] || fail "sanitizer reports in:$bad"
}

print_table() {
        echo
        echo "| cell | client site | server site | expected | selected pair (client <-> server) | connect -> unix: (ms) | copy closure / ${BIG_MB} MiB (s) |"
        echo "|---|---|---|---|---|---|---|"
        awk -F'\t' '{ printf "| %s | %s | %s | %s | %s | %s | %s |\n", $1, $2, $3, $4, $5, $6, $7 }' "$R/times.tsv"
        echo
}

# ------------------------------------------------------------------ run
setup
check "rendezvous service starts in pub" rv_up
check "cell 1: same LAN, short address, no servers: host <-> host" t_cell1
check "cell 2: cone / cone: direct; n2pctl status shows the pair" t_cell2
check "cell 3: symmetric / cone: relay" t_cell3
check "cell 4: symmetric / symmetric: relay" t_cell4
check "cell 5: cone / cone with +50 ms RTT: direct" t_cell5
check "cell 6: server restarted mid-session: new session for the next copy" t_cell6
check "dead peer (worker killed) noticed within 12 s, next copy works" t_dead_peer
check "rendezvous down: short address fails within 15 s naming the rendezvous" t_rv_down_short
check "rendezvous down: a long address still works on the LAN" t_rv_down_long
check "wrong TURN password (sym / sym): the error names TURN" t_wrong_turn
check "no sanitizer reports from any n2p process" t_no_sanitizer_reports
print_table
h_summary
