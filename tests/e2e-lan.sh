#!/usr/bin/env bash
# e2e-lan.sh — n2p end to end on one LAN, with two real nix-daemons.
#
#  +----------------------------------+          +----------------------------------+
#  | netns ${P}ha   "server host"     |          | netns ${P}hc   "client host"     |
#  |                                  |   veth   |                                  |
#  |  n2pctl server                   |  (LAN)   |  n2pctl connect LONGADDR         |
#  |    --listen 10.1.0.2:7787        |          |    --socket $R/run/NAME.sock     |
#  |  eth0 10.1.0.2/24 ================================ eth0 10.1.0.3/24           |
#  |          |                       |          |            ^                     |
#  +----------|-----------------------+          +------------|---------------------+
#             | unix $R/run/server.sock                       | unix $R/run/NAME.sock
#  +----------v-----------------------+          +------------|---------------------+
#  | mount ns: nix-daemon --store     |          | mount ns: nix-daemon --store     |
#  |   local, /nix = $R/server/nix    |          |   local, /nix = $R/client/nix    |
#  |   (verification runs here)       |          |   nix copy --to unix:NAME.sock   |
#  +----------------------------------+          +----------------------------------+
#
# Nothing on the LAN but these two hosts; 10.1.0.9 is an address where nobody is.
# Unix sockets are file system paths, so they reach across network namespaces.
#
# Run by `meson test --suite e2e` (N2P_BUILD, N2P_SOURCE set) or by hand as root:
#   N2P_BUILD=build tests/e2e-lan.sh
# Env: E2E_KEEP=1 keeps $R, BIG_MB (256) sizes the big paths, E2E_WATCHDOG (1500 s).
# Prints one PASS/FAIL line per check, then "N passed, M failed"; exit 1 on failure.
set -euo pipefail

if [ -z "${N2P_E2E_UNDER_WATCHDOG:-}" ]; then
        # The whole run is bounded; on expiry the EXIT trap below still tears down.
        export N2P_E2E_UNDER_WATCHDOG=1
        exec timeout -k 120 "${E2E_WATCHDOG:-1500}" bash "$0" "$@"
fi

[ "$(id -u)" = 0 ] || { echo "e2e-lan: needs root (network and mount namespaces); skipped"; exit 77; }

SRC=$(cd "${N2P_SOURCE:-$(dirname "$0")/..}" && pwd)
BUILD=$(cd "${N2P_BUILD:-$SRC/build}" && pwd)
LIB=$SRC/tests/lib
BIN=$BUILD/src/n2pctl
ALIAS=$BUILD/src/n2p
P=n2pe$$-
HA=${P}ha
HC=${P}hc
R=${TMPDIR:-/tmp}/n2p-e2e-lan.$$
HA_IP=10.1.0.2
HC_IP=10.1.0.3
NOBODY_IP=10.1.0.9
PORT=7787
ALIAS_PORT=7788
export R BIG_MB=${BIG_MB:-256}
N2P_COMM='n2pctl|n2p|n2pd'
PROC_LIMIT=1500         # no n2p process we start lives longer than this
SETUP_DONE=0

H_NAME=e2e-lan
H_LOGDIR=$R/log
# shellcheck source=lib/harness.sh
. "$LIB/harness.sh"

TD=$LIB/two-daemons.sh
td() { "$TD" "$@"; }
pathof() { sed -n "s|^$1=||p" "$R/paths.env"; }
in_ha() { ip netns exec "$HA" "$@"; }
in_hc() { ip netns exec "$HC" "$@"; }

# ------------------------------------------------------------------ processes
# n2p_start NAME HOST CMD...: CMD in HOST's netns under `timeout`, stdout/stderr in
# $R/n2p/NAME.{out,err}; $R/pids/n2p-NAME.pid is the n2p process itself.
n2p_start() {
        local name=$1 host=$2 w c
        shift 2
        : >"$R/n2p/$name.out"
        : >"$R/n2p/$name.err"
        # ip netns exec execs timeout, which forks the program: our n2p process
        # is timeout's only child.
        ip netns exec "$P$host" timeout -k 5 "$PROC_LIMIT" "$@" \
                >"$R/n2p/$name.out" 2>"$R/n2p/$name.err" </dev/null &
        w=$!
        echo "$w" >"$R/pids/n2p-$name.wrap"
        wait_for 5 eval 'c=$(ps -o pid= --ppid "$w" | head -n1 | tr -d " "); [ -n "$c" ]' ||
                { echo "n2p_start: $name did not start" >&2; return 1; }
        echo "$c" >"$R/pids/n2p-$name.pid"
}
n2p_pid() { cat "$R/pids/n2p-$1.pid"; }
n2p_wrap() { cat "$R/pids/n2p-$1.wrap"; }
n2p_alive() { pid_is "$(n2p_pid "$1" 2>/dev/null)" "$N2P_COMM"; }
n2p_stop() {
        stop_checked "$(n2p_pid "$1" 2>/dev/null)" "$N2P_COMM" 5
        stop_checked "$(n2p_wrap "$1" 2>/dev/null)" timeout 2
}

# client_up NAME [ADDR [PROGRAM SUBCOMMAND]]: n2pctl connect in hc with a socket
# at $R/run/NAME.sock; returns once it printed its unix: line.
client_up() {
        local name=$1 addr=${2:-$(cat "$R/server.long")} prog=${3:-$BIN} sub=${4:-connect}
        local sock=$R/run/$name.sock
        n2p_start "$name" hc "$prog" "$sub" "$addr" --socket "$sock" --one-time-key
        if ! wait_for 15 grep -q '^unix:' "$R/n2p/$name.out"; then
                sed 's/^/  client stderr: /' "$R/n2p/$name.err" >&2
                fail "$name: no unix: line on stdout within 15 s"
        fi
}
client_url() { echo "unix:$R/run/$1.sock"; }

# ------------------------------------------------------------------ topology
setup() {
        local t
        for t in ip iptables nsenter unshare nix nix-daemon jq socat timeout tc; do
                command -v "$t" >/dev/null || { echo "e2e-lan: missing $t" >&2; exit 1; }
        done
        [ -x "$BIN" ] || { echo "e2e-lan: $BIN not built" >&2; exit 1; }
        mkdir -p "$R/log" "$R/n2p" "$R/run" "$R/pids" "$R/keys"
        h_log "state $R, namespaces $HA $HC, build $BUILD"

        ns_setup "$HA"
        ns_setup "$HC"
        ip netns exec "$HA" ip link add eth0 type veth peer name eth0 netns "$HC"
        in_ha ip addr add "$HA_IP/24" dev eth0
        in_hc ip addr add "$HC_IP/24" dev eth0
        in_ha ip link set eth0 up
        in_hc ip link set eth0 up
        timeout 10 ip netns exec "$HC" sh -c "until ip -4 -o addr show dev eth0 | grep -q $HC_IP; do sleep 0.1; done"

        timeout 60 "$TD" up >"$R/log/daemons.log" 2>&1 || { cat "$R/log/daemons.log" >&2; exit 1; }
        h_log "making test paths (BIG_MB=$BIG_MB)"
        # The paths every check copies: each check gets paths the server never saw.
        timeout 600 "$TD" mkpaths closure wide small big >>"$R/log/daemons.log" 2>&1
        BIG_MB=32 SMALL_N=2000 timeout 300 "$TD" mkpaths big=PAR1 big=PAR2 small=PAR3 closure=PAR4 \
                >>"$R/log/daemons.log" 2>&1
        BIG_MB=32 timeout 300 "$TD" mkpaths big=CONC1 big=CONC2 big=CONC3 big=CONC4 \
                big=CONC5 big=CONC6 big=CONC7 big=CONC8 >>"$R/log/daemons.log" 2>&1
        timeout 300 "$TD" mkpaths big=KILL1 big=KILL2 closure=AFTER1 closure=AFTER2 \
                closure=ALIASP >>"$R/log/daemons.log" 2>&1
        # a path only the server has: path-info through n2p must find it there
        echo "only on the server $$ $(date +%s%N)" >"$R/srvonly.txt"
        td snix nix-store --store local --add "$R/srvonly.txt" >"$R/srvonly.path"
        SETUP_DONE=1
        h_log "setup done"
}

teardown() {
        local f
        # The watchdog's TERM comes twice (to us and to our process group): the
        # second one must not cut the teardown short.
        trap - EXIT
        trap ':' TERM INT
        [ -d "$R/pids" ] && for f in "$R"/pids/n2p-*.pid; do
                [ -e "$f" ] || continue
                stop_checked "$(cat "$f")" "$N2P_COMM" 5
        done
        [ -d "$R/pids" ] && for f in "$R"/pids/n2p-*.wrap; do
                [ -e "$f" ] || continue
                stop_checked "$(cat "$f")" timeout 2
        done
        # workers of a server killed with SIGKILL are left in the namespace
        ns_teardown "$HA"
        ns_teardown "$HC"
        [ -d "$R/pids" ] && td down >>"$R/log/daemons.log" 2>&1 || true
        if [ "${E2E_KEEP:-0}" = 1 ]; then
                h_log "kept $R"
        elif { [ "$H_FAIL" -gt 0 ] || [ "$SETUP_DONE" = 0 ]; } && [ -d "$R" ]; then
                # keep the logs for the post-mortem, drop the stores (GiBs)
                rm -rf "$R/client" "$R/server" "$R/gen"
                h_log "logs kept in $R/log and $R/n2p"
        elif [ -f "$R/.two-daemons" ] || [ -d "$R/n2p" ]; then
                rm -rf "$R"
        fi
}
on_signal() {
        trap ':' TERM INT
        H_FAIL=$((H_FAIL + 1))
        echo "FAIL: interrupted (watchdog ${E2E_WATCHDOG:-1500} s, or a signal) during check $H_N"
        h_summary || true
        exit 143
}
trap teardown EXIT
trap on_signal TERM INT

# ------------------------------------------------------------------ checks
t_keygen() {
        local k=$R/keys/kg.key out sum rc=0
        out=$(timeout 15 "$BIN" keygen --secret-key-file "$k")
        [ -f "$k" ] || fail "no key file"
        [ "$(stat -c %s "$k")" = 32 ] || fail "key file has $(stat -c %s "$k") bytes"
        [ "$(stat -c %a "$k")" = 600 ] || fail "key file mode $(stat -c %a "$k")"
        grep -qE 'n2p1[a-z2-7]{60}' <<<"$out" || fail "keygen printed no short address: $out"
        sum=$(sha256sum <"$k")
        timeout 15 "$BIN" keygen --secret-key-file "$k" >/dev/null 2>"$R/log/keygen2.err" || rc=$?
        cat "$R/log/keygen2.err"
        [ "$(sha256sum <"$k")" = "$sum" ] || fail "keygen overwrote an existing key file"
        [ "$rc" != 0 ] || fail "keygen on an existing file left it alone but exited 0"
        detail "0600, 32 bytes; second keygen refused: $(head -n1 "$R/log/keygen2.err")"
}

t_address() {
        local out short long
        timeout 15 "$BIN" keygen --secret-key-file "$R/keys/addr.key" >/dev/null
        out=$(timeout 15 "$BIN" address --secret-key-file "$R/keys/addr.key" --listen "$HA_IP:$PORT")
        short=$(sed -n 's/.*short address: *\(n2p1[a-z2-7]*\).*/\1/p' <<<"$out")
        long=$(sed -n 's/.*long address: *\(n2p1[a-z2-7]*\).*/\1/p' <<<"$out")
        [ "${#short}" = 64 ] || fail "short address not 64 chars: '$short' (output: $out)"
        [ "${#long}" -gt 64 ] || fail "long address missing or short: '$long'"
        detail "short ${#short} chars, long ${#long} chars"
}

t_server_start() {
        local k=$R/keys/server.key short long
        n2p_start server ha "$BIN" server --listen "$HA_IP:$PORT" \
                --nix-daemon-socket "$R/run/server.sock" --secret-key-file "$k"
        wait_for 15 grep -q 'long address: *n2p1' "$R/n2p/server.err" ||
                { cat "$R/n2p/server.err" >&2; fail "no 'long address:' line on stderr within 15 s"; }
        grep -q 'short address: *n2p1' "$R/n2p/server.err" || fail "no 'short address:' line"
        short=$(sed -n 's/.*short address: *\(n2p1[a-z2-7]*\).*/\1/p' "$R/n2p/server.err" | head -n1)
        long=$(sed -n 's/.*long address: *\(n2p1[a-z2-7]*\).*/\1/p' "$R/n2p/server.err" | head -n1)
        [ "${#short}" = 64 ] || fail "short address has ${#short} chars"
        echo "$short" >"$R/server.short"
        echo "$long" >"$R/server.long"
        [ "$(stat -c %s "$k")" = 32 ] && [ "$(stat -c %a "$k")" = 600 ] ||
                fail "key file not created as 32 bytes mode 0600"
        n2p_alive server || fail "server exited"
        detail "pid $(n2p_pid server), long address ${#long} chars"
}

t_address_matches_server() {
        local out short
        out=$(timeout 15 "$BIN" address --secret-key-file "$R/keys/server.key" --listen "$HA_IP:$PORT")
        short=$(sed -n 's/.*short address: *\(n2p1[a-z2-7]*\).*/\1/p' <<<"$out")
        [ "$short" = "$(cat "$R/server.short")" ] || fail "address: $short, server: $(cat "$R/server.short")"
}

t_connect_contract() {
        local sock=$R/run/c0.sock rc=0 mode
        client_up c0
        [ "$(wc -l <"$R/n2p/c0.out")" = 1 ] || fail "stdout has $(wc -l <"$R/n2p/c0.out") lines: $(head -c 200 "$R/n2p/c0.out")"
        [ "$(cat "$R/n2p/c0.out")" = "unix:$sock" ] || fail "stdout '$(cat "$R/n2p/c0.out")', want 'unix:$sock'"
        [ -S "$sock" ] || fail "$sock is not a socket"
        mode=$(stat -c %a "$sock")
        [ "$mode" = 600 ] || fail "socket mode $mode, want 600"
        timeout 30 "$TD" cnix nix store ping --store "unix:$sock" >/dev/null 2>&1 || fail "store ping failed"
        kill_checked TERM "$(n2p_pid c0)" "$N2P_COMM"
        timeout 15 tail --pid="$(n2p_pid c0)" -f /dev/null || fail "still running 15 s after SIGTERM"
        wait "$(n2p_wrap c0)" || rc=$?
        [ "$rc" = 0 ] || fail "exit status $rc after SIGTERM, want 0"
        [ ! -e "$sock" ] || fail "socket left behind after SIGTERM"
        detail "one line unix:$sock, mode 0600, SIGTERM: exit 0, socket removed"
}

t_main_client() { client_up main; }

t_store_ping() {
        local out
        out=$(timeout 30 "$TD" cnix nix store ping --store "$(client_url main)" 2>&1) || fail "$out"
        grep -q 'Version' <<<"$out" || fail "no version in: $out"
        detail "$(grep Version <<<"$out")"
}

t_path_info() {
        local p out
        p=$(cat "$R/srvonly.path")
        ! td cnix nix path-info --store local "$p" >/dev/null 2>&1 || fail "client store has it too"
        out=$(timeout 30 "$TD" cnix nix path-info --store "$(client_url main)" "$p" 2>&1) || fail "$out"
        [ "$out" = "$p" ] || fail "path-info printed '$out'"
        detail "$p"
}

copy_via() { # CLIENTNAME VAR: nix copy through that client, then verify on the server
        timeout 900 "$TD" copy "$(client_url "$1")" "$2" 2>&1
}

t_copy() { # VAR
        local out
        out=$(copy_via main "$1") || { echo "$out"; fail "$(grep -E 'ERROR|error' <<<"$out" | tail -n1)"; }
        echo "$out"
        detail "$(grep -o 'copy OK in [0-9.]* s ([0-9]* paths sent)' <<<"$out")"
}

# copies N vars at once through client main; all must verify
parallel_copies() {
        local v pids=() vars=() rc bad=0 i
        for v in "$@"; do
                copy_via main "$v" >"$R/log/par-$v.log" 2>&1 &
                pids+=($!)
                vars+=("$v")
        done
        for i in "${!pids[@]}"; do
                rc=0
                wait "${pids[$i]}" || rc=$?
                if [ "$rc" != 0 ]; then
                        bad=$((bad + 1))
                        echo "--- ${vars[$i]} (exit $rc):"
                        tail -n 5 "$R/log/par-${vars[$i]}.log"
                fi
        done
        [ "$bad" = 0 ] || fail "$bad of $# concurrent copies failed"
}

t_four_at_once() {
        parallel_copies PAR1 PAR2 PAR3 PAR4
        detail "4 fresh paths (2x32 MiB, 2000 files, 3-path closure) verified"
}

server_daemon_conns() { # connections the server's nix-daemon is serving now
        { ps -o pid= --ppid "$(cat "$R/pids/server.pid")" || true; } | wc -l
}

t_eight_connections() {
        local stop=$R/log/sampler.stop max=$R/log/sampler.max base i
        base=$(server_daemon_conns)
        echo 0 >"$max"
        (
                m=0
                for ((i = 0; i < 30000; i++)); do
                        [ -e "$stop" ] && break
                        n=$(($(server_daemon_conns) - base))
                        [ "$n" -gt "$m" ] && m=$n && echo "$m" >"$max"
                        sleep 0.02
                done
        ) &
        local sampler=$!
        # shaped, so that all eight are surely in flight together, however fast
        shape_on
        parallel_copies CONC1 CONC2 CONC3 CONC4 CONC5 CONC6 CONC7 CONC8 || { touch "$stop"; shape_off; exit 1; }
        touch "$stop"
        shape_off
        wait "$sampler" || true
        # and 8 path-info calls at once
        local pids=() bad=0
        for i in 1 2 3 4 5 6 7 8; do
                timeout 60 "$TD" cnix nix path-info --store "$(client_url main)" "$(pathof "CONC$i")" \
                        >"$R/log/pi-$i.log" 2>&1 &
                pids+=($!)
        done
        for i in "${pids[@]}"; do wait "$i" || bad=$((bad + 1)); done
        [ "$bad" = 0 ] || fail "$bad of 8 concurrent path-info calls failed"
        [ "$(cat "$max")" -ge 8 ] ||
                fail "at most $(cat "$max") connections were open at the server's nix-daemon at once"
        detail "8 copies verified, up to $(cat "$max") simultaneous daemon connections; 8 path-info OK"
}

# Rate-limit the client's uplink so a big copy is surely still running when we
# pull the plug (tbf exists here; netem does not).
shape_on() { in_hc tc qdisc replace dev eth0 root tbf rate 200mbit burst 256kb latency 200ms 2>/dev/null || echo "no tbf: unshaped" >&2; }
shape_off() { in_hc tc qdisc del dev eth0 root 2>/dev/null || true; }

# start_copy_bg CLIENT VAR LOG: a background nix copy; COPY_PID is its pid (not
# called in $(...): the copy must stay our child so we can `wait` for it)
start_copy_bg() {
        timeout 120 "$TD" cnix nix copy --store local --to "$(client_url "$1")" "$(pathof "$2")" >"$3" 2>&1 &
        COPY_PID=$!
}

t_kill_client_midcopy() {
        local copy rc=0
        client_up k1
        shape_on
        start_copy_bg k1 KILL1 "$R/log/kill1.log"
        copy=$COPY_PID
        wait_for 20 grep -q '^copying path' "$R/log/kill1.log" || { shape_off; fail "copy never started"; }
        sleep 1
        pid_is "$copy" timeout || { shape_off; fail "copy ended within 1 s, before the kill (inconclusive)"; }
        kill_checked KILL "$(n2p_pid k1)" "$N2P_COMM"
        wait "$copy" || rc=$?
        shape_off
        cat "$R/log/kill1.log"
        [ "$rc" != 0 ] || fail "nix copy succeeded although its n2pctl connect was killed"
        [ "$rc" != 124 ] || fail "nix copy hung for 120 s after its n2pctl connect was killed"
        ! td valid KILL1 || fail "the interrupted path is valid on the server"
        n2p_alive server || fail "server died"
        detail "nix copy exit $rc, path not valid on the server, server running"
}

t_after_client_kill() {
        client_up k2
        t_copy AFTER1
}

t_retry_interrupted() {
        # The server's nix-daemon holds the path's lock until the dead session's
        # stream is closed: this also shows the server noticed the dead client.
        t_copy KILL1
}

t_kill_worker_midcopy() {
        local copy rc=0 spid w t0 t1
        client_up k3
        spid=$(n2p_pid server)
        shape_on
        start_copy_bg k3 KILL2 "$R/log/kill2.log"
        copy=$COPY_PID
        wait_for 20 grep -q '^copying path' "$R/log/kill2.log" || { shape_off; fail "copy never started"; }
        sleep 1
        pid_is "$copy" timeout || { shape_off; fail "copy ended within 1 s, before the kill (inconclusive)"; }
        # the newest child of the server is this session's worker
        w=$({ ps -o pid= --ppid "$spid" --sort=start_time || true; } | tail -n1 | tr -d ' ')
        [ -n "$w" ] || { shape_off; fail "server $spid has no worker process"; }
        ps -o pid,ppid,lstart,args --ppid "$spid" || true
        t0=$(date +%s.%N)
        kill -KILL "$w"
        wait "$copy" || rc=$?
        t1=$(date +%s.%N)
        shape_off
        cat "$R/log/kill2.log"
        [ "$rc" != 0 ] || fail "nix copy succeeded although the server's worker was killed"
        [ "$rc" != 124 ] || fail "nix copy still hung 120 s after the worker was killed"
        ! td valid KILL2 || fail "the interrupted path is valid on the server"
        n2p_alive server || fail "server died with its worker"
        n2p_stop k3
        detail "worker $w killed; nix copy failed after $(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.1f", b-a}') s; server running"
}

t_after_worker_kill() {
        client_up k4
        t_copy KILL2
        t_copy AFTER2
}

# expect_error REGEX CMD...: CMD fails within 15 s, exit 1, with one stderr line
# "n2pctl: error: ..." that matches REGEX (names the problem).
expect_error() {
        local re=$1 rc=0 t0 t1 dt err=$R/log/err-$H_N
        shift
        t0=$(date +%s.%N)
        timeout -k 5 30 "$@" >"$err.out" 2>"$err.err" </dev/null || rc=$?
        t1=$(date +%s.%N)
        dt=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }')
        cat "$err.err"
        detail "exit $rc in $dt s: \"$(head -n1 "$err.err" | head -c 160)\""
        [ "$rc" != 124 ] && [ "$rc" != 137 ] || fail "still running after 30 s"
        [ "$rc" = 1 ] || fail "exit status $rc, want 1"
        awk -v d="$dt" 'BEGIN { exit !(d < 15) }' || fail "took $dt s, limit 15 s"
        [ "$(grep -c . "$err.err")" = 1 ] || fail "$(grep -c . "$err.err") lines on stderr, want 1"
        grep -q '^n2pctl: error: ' "$err.err" || fail "stderr line does not start with 'n2pctl: error: '"
        grep -qiE "$re" "$err.err" || fail "the message does not name the problem (/$re/)"
        ! grep -q '^unix:' "$err.out" || fail "printed a unix: line although it failed"
}

bad_connect() { # REGEX ADDR [ARGS...]
        local re=$1 addr=$2 sock=$R/run/bad-$H_N.sock
        shift 2
        [ $# -gt 0 ] || set -- --one-time-key
        expect_error "$re" ip netns exec "$HC" "$BIN" connect "$addr" --socket "$sock" "$@"
        [ ! -e "$sock" ] || fail "socket $sock left behind"
}

flip_char() { # flip one base32 character in the middle of $1
        local a=$1 i=$((${#1} / 2)) c
        c=${a:$i:1}
        if [ "$c" = q ]; then c=r; else c=q; fi
        echo "${a:0:$i}$c${a:$((i + 1))}"
}

t_bad_garbage() { bad_connect 'address|malformed|invalid' 'this-is-not-an-address'; }
t_bad_checksum() { bad_connect 'checksum|typo' "$(flip_char "$(cat "$R/server.long")")"; }
t_bad_truncated() {
        local l; l=$(cat "$R/server.long")
        bad_connect 'address|truncat|short|length|checksum|malformed|invalid' "${l:0:$((${#l} - 7))}"
}
t_bad_version() { local l; l=$(cat "$R/server.long"); bad_connect 'version' "n2p9${l:4}"; }
t_bad_keysize() {
        head -c 31 /dev/urandom >"$R/keys/k31.key"
        chmod 600 "$R/keys/k31.key"
        bad_connect 'size|byte|32|length|short' "$(cat "$R/server.long")" --secret-key-file "$R/keys/k31.key"
}
t_bad_keymode() {
        head -c 32 /dev/urandom >"$R/keys/k644.key"
        chmod 644 "$R/keys/k644.key"
        bad_connect 'mode|permission|0644|0600|readable|accessible|group|others|chmod' "$(cat "$R/server.long")" --secret-key-file "$R/keys/k644.key"
}
t_bad_server_key() {
        local out long
        timeout 15 "$BIN" keygen --secret-key-file "$R/keys/other.key" >/dev/null
        out=$(timeout 15 "$BIN" address --secret-key-file "$R/keys/other.key" --listen "$HA_IP:$PORT")
        long=$(sed -n 's/.*long address: *\(n2p1[a-z2-7]*\).*/\1/p' <<<"$out")
        [ -n "$long" ] || fail "could not make the other key's long address"
        bad_connect 'key|handshake|authenticat|answer|respond|reach|timed? ?out|timeout' "$long"
        n2p_alive server || fail "server died"
}
t_bad_unreachable() {
        local out long
        out=$(timeout 15 "$BIN" address --secret-key-file "$R/keys/server.key" --listen "$NOBODY_IP:$PORT")
        long=$(sed -n 's/.*long address: *\(n2p1[a-z2-7]*\).*/\1/p' <<<"$out")
        [ -n "$long" ] || fail "could not make a long address for $NOBODY_IP"
        bad_connect 'reach|answer|respond|timed? ?out|timeout|connect' "$long"
}
t_bad_no_daemon() {
        local s=$R/run/no-such-daemon.sock
        expect_error "$s" ip netns exec "$HA" "$BIN" server --listen "$HA_IP:7799" --one-time-key --nix-daemon-socket "$s"
}

t_aliases() {
        local long
        n2p_start alias-server ha "$ALIAS" server --listen "$HA_IP:$ALIAS_PORT" \
                --nix-daemon-socket "$R/run/server.sock" --one-time-key
        wait_for 15 grep -q 'long address: *n2p1' "$R/n2p/alias-server.err" ||
                { cat "$R/n2p/alias-server.err" >&2; fail "'n2p server' printed no long address"; }
        long=$(sed -n 's/.*long address: *\(n2p1[a-z2-7]*\).*/\1/p' "$R/n2p/alias-server.err" | head -n1)
        client_up alias "$long" "$ALIAS" client
        t_copy_via_alias
        n2p_stop alias
        n2p_stop alias-server
}
t_copy_via_alias() {
        local out
        out=$(copy_via alias ALIASP) || { echo "$out"; fail "copy through 'n2p client' failed"; }
        detail "n2p server + n2p client: $(grep -o 'copy OK in [0-9.]* s' <<<"$out")"
}

t_server_survived() {
        n2p_alive server || fail "server is gone"
        timeout 30 "$TD" cnix nix store ping --store "$(client_url k4)" >/dev/null 2>&1 ||
                fail "store ping through a session opened earlier failed"
}

t_no_sanitizer_reports() {
        local f bad=""
        for f in "$R"/n2p/*.err; do
                grep -qE 'ERROR: (Address|Leak)Sanitizer|runtime error:|AddressSanitizer' "$f" &&
                        bad="$bad $(basename "$f")"
        done
        [ -z "$bad" ] || fail "sanitizer reports in:$bad"
}

# ------------------------------------------------------------------ run
setup

check "n2pctl keygen: 0600 file, refuses to overwrite" t_keygen
check "n2pctl address: prints short and long address" t_address
check "server starts in $HA, prints short + long address" t_server_start
check "n2pctl address agrees with the running server" t_address_matches_server
check "connect: one stdout line unix:PATH, socket 0600, removed on SIGTERM" t_connect_contract
check "connect: main client session up" t_main_client
check "nix store ping through n2p" t_store_ping
check "nix path-info of a server-only path through n2p" t_path_info
check "nix copy CLOSURE (3 paths with references), verified on the server" t_copy CLOSURE
check "nix copy WIDE (1001 paths), verified on the server" t_copy WIDE
check "nix copy SMALL (10,000 files), verified on the server" t_copy SMALL
check "nix copy BIG ($BIG_MB MiB), verified on the server" t_copy BIG
check "four copies at once through one connect, all verified" t_four_at_once
check "8 simultaneous nix connections" t_eight_connections
check "kill -9 n2pctl connect mid-copy: copy fails, path not valid" t_kill_client_midcopy
check "after that: new connect + copy works" t_after_client_kill
check "after that: the interrupted path copies and verifies" t_retry_interrupted
check "kill -9 the server's session worker mid-copy: copy fails, server lives" t_kill_worker_midcopy
check "after that: new connect + copies work" t_after_worker_kill
check "bad input: malformed address" t_bad_garbage
check "bad input: wrong checksum (one character flipped)" t_bad_checksum
check "bad input: truncated address" t_bad_truncated
check "bad input: unknown version n2p9" t_bad_version
check "bad input: key file of 31 bytes" t_bad_keysize
check "bad input: key file mode 0644" t_bad_keymode
check "bad input: wrong server key" t_bad_server_key
check "bad input: unreachable server ($NOBODY_IP)" t_bad_unreachable
check "bad input: server without nix-daemon socket" t_bad_no_daemon
check "aliases: n2p server + n2p client, one copy" t_aliases
check "server still serving at the end" t_server_survived
check "no sanitizer reports from any n2p process" t_no_sanitizer_reports

h_summary
