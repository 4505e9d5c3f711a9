#!/usr/bin/env bash
# e2e-systemd.sh — n2p's units under a real systemd (PID 1), end to end, with real Nix.
#
#   host (filesystem)                 machine S: systemd PID 1, own netns + overlay root
#  +---------------------------+     +------------------------------------------------+
#  | netns n2psys-ID           |     | n2p-server.socket  udp/7787                    |
#  |  10.231.0.2 --------------+-----+- 10.231.0.1    --> n2p.service (n2pd, dynamic  |
#  |  n2pctl connect LONG      | veth|                      user) --> nix-daemon.socket |
#  |   -> $W/run/peer.sock     |     |  192.0.2.1                                     |
#  | client nix-daemon in its  |     +-----+------------------------------------------+
#  | own mount ns, /nix =      |           | veth (boot.sh link)
#  |   $W/client/nix           |     +-----+------------------------------------------+
#  +---------------------------+     |  192.0.2.2   machine U: user@0.service          |
#                                    |  n2p-client@srv.socket -> n2p-client@srv.service|
#                                    +------------------------------------------------+
#
# Run by `meson test --suite e2e` (env N2P_BUILD, N2P_SOURCE); needs root. Every name is
# unique per run; the trap powers both machines off, removes the netns and stops only the
# processes this script started (by PID, after checking the PID still runs them).
# The user units are tested in their real habitat: a user manager (user@0.service) in
# machine U, which reaches machine S the way a second host would.
#
# Env: WATCHDOG (seconds, default 900), KEEP=1 keeps the work dir even on success.
# Functions run through check()/must(); single quotes are meant for the inner shell.
# shellcheck disable=SC2317,SC2016
set -uo pipefail

[ "$(id -u)" = 0 ] || { echo "SKIP: e2e-systemd needs root"; exit 77; }
: "${N2P_BUILD:?N2P_BUILD (the meson build dir) is required}"
: "${N2P_SOURCE:?N2P_SOURCE (the source dir) is required}"
for t in meson jq socat nix nix-daemon nix-store nix-build unshare nsenter ip ping setsid timeout; do
        command -v "$t" >/dev/null || { echo "SKIP: $t is missing"; exit 77; }
done

BOOT=$N2P_SOURCE/tests/lib/boot.sh
ID=$(printf '%04x%02x' $(($$ & 0xffff)) $((RANDOM & 0xff)))
MS=s$ID            # server machine
MU=u$ID            # user-units machine
CNS=n2psys-$ID     # client netns
W=$(mktemp -d /tmp/n2p-e2e-systemd.XXXXXX)
export SD_BASE=$W/sd
LOG=$W/log
mkdir -p "$LOG" "$W/run" "$W/gen"

PASS=0
FAIL=0
CONNECT_PID=
CLIENT_DAEMON_PID=
CNS_CREATED=
WATCHDOG_PID=

say() { printf '[e2e-systemd %s] %s\n' "$(date +%T)" "$*" >&2; }
pass() { PASS=$((PASS + 1)); echo "PASS: $*"; }
failed() { FAIL=$((FAIL + 1)); echo "FAIL: $*"; }

# check NAME CMD...: one PASS/FAIL line; CMD's output goes to the log.
check() {
        local name=$1
        shift
        echo "== $name" >>"$LOG/checks.log"
        if "$@" >>"$LOG/checks.log" 2>&1; then
                pass "$name"
        else
                failed "$name (see $LOG/checks.log)"
                tail -n 15 "$LOG/checks.log" | sed 's/^/    | /'
                return 1
        fi
}

# A step the rest depends on: on failure, stop here (the trap cleans up).
must() {
        check "$@" || finish
}

# pid_is PID COMM_REGEX: alive, not a zombie, and still the program we started
# (a reused PID belongs to somebody else and is never signalled).
pid_is() {
        local p=${1:-} st comm
        [ -n "$p" ] && [ -r "/proc/$p/stat" ] || return 1
        st=$(sed 's/.*) //' "/proc/$p/stat" 2>/dev/null | cut -d' ' -f1)
        [ -n "$st" ] && [ "$st" != Z ] || return 1
        comm=$(cat "/proc/$p/comm" 2>/dev/null) || return 1
        [[ $comm =~ ^($2)$ ]]
}

stop_pid() { # PID COMM
        pid_is "$1" "$2" || return 0
        kill -TERM "$1" 2>/dev/null || true
        for _ in $(seq 1 50); do pid_is "$1" "$2" || return 0; sleep 0.1; done
        kill -KILL "$1" 2>/dev/null || true
}

cleanup() {
        local rc=$?
        trap - EXIT INT TERM
        [ -z "$WATCHDOG_PID" ] || stop_pid "$WATCHDOG_PID" "$SELF_COMM"
        stop_pid "$CONNECT_PID" timeout   # forwards the TERM to n2pctl
        if pid_is "$CLIENT_DAEMON_PID" nix-daemon; then
                # nix-daemon forks one child per connection
                for c in $(ps -o pid= --ppid "$CLIENT_DAEMON_PID" 2>/dev/null); do
                        stop_pid "$c" nix-daemon
                done
                stop_pid "$CLIENT_DAEMON_PID" nix-daemon
        fi
        "$BOOT" down "$MU" >>"$LOG/boot.log" 2>&1 || true
        "$BOOT" down "$MS" >>"$LOG/boot.log" 2>&1 || true
        [ -z "$CNS_CREATED" ] || ip netns del "$CNS" 2>/dev/null || true
        if [ "$rc" = 0 ] && [ "${KEEP:-0}" != 1 ]; then
                rm -rf "$W"
        else
                # the journals were saved by `boot.sh down`
                cp "$SD_BASE/$MS/journal.txt" "$LOG/journal-$MS.txt" 2>/dev/null || true
                cp "$SD_BASE/$MU/journal.txt" "$LOG/journal-$MU.txt" 2>/dev/null || true
                rm -rf "$W/client" "$W/gen" "$W/dest"
                say "logs kept in $LOG"
        fi
        exit "$rc"
}
trap cleanup EXIT
trap 'say "interrupted"; exit 130' INT TERM

finish() {
        echo "$PASS passed, $FAIL failed"
        [ "$FAIL" = 0 ] && [ "$PASS" -gt 0 ]
        exit $?
}

# The watchdog: every command below is bounded by `timeout` too; this bounds the
# sum. A subshell (same comm as this script) that takes its sleep with it on TERM.
SELF_COMM=$(cat /proc/$$/comm)
(
        sleep "${WATCHDOG:-900}" &
        sp=$!
        trap 'kill "$sp" 2>/dev/null; exit 0' TERM
        wait "$sp" && echo "e2e-systemd: watchdog expired" >&2 && kill -TERM $$
) </dev/null &
WATCHDOG_PID=$!

S() { timeout "${T:-60}" "$BOOT" exec "$MS" "$@"; }   # in machine S
U() { timeout "${T:-60}" "$BOOT" exec "$MU" "$@"; }   # in machine U
snix() { S nix --extra-experimental-features nix-command "$@"; }
unix_() { timeout "${T:-60}" nsenter -t "$CLIENT_DAEMON_PID" -m -- "$@"; }   # client mount ns

# ---------------------------------------------------------------- 1. install
# The units name @bindir@, so the machines must see the installation at its real
# path: bind $DEST$prefix over $prefix. That is only harmless for a prefix the
# machine does not otherwise use (/usr/local, /opt/...); any other prefix gets a
# build of its own here.
prefix=$(meson introspect "$N2P_BUILD" --buildoptions | jq -r '.[] | select(.name == "prefix") | .value')
BUILD=$N2P_BUILD
case $prefix in
/usr/local | /opt/?*) ;;
*)
        say "prefix $prefix cannot be bound into a machine; building with --prefix=/opt/n2p-e2e"
        BUILD=$W/build
        must "configure a private build with --prefix=/opt/n2p-e2e" \
                meson setup "$BUILD" "$N2P_SOURCE" --prefix=/opt/n2p-e2e
        must "build it" timeout 900 ninja -C "$BUILD"
        prefix=/opt/n2p-e2e
        ;;
esac
bindir=$(meson introspect "$BUILD" --buildoptions | jq -r '.[] | select(.name == "bindir") | .value')
case $bindir in /*) BINDIR=$bindir ;; *) BINDIR=$prefix/$bindir ;; esac
DEST=$W/dest
HOSTBIN=$DEST$BINDIR

installed() {
        timeout 900 meson install -C "$BUILD" --destdir "$DEST" --quiet || return 1
        local f
        for f in n2pctl n2pd n2p; do [ -x "$HOSTBIN/$f" ] || { echo "no $HOSTBIN/$f"; return 1; }; done
        for f in n2p-server.socket n2p.service; do
                [ -f "$DEST$prefix/lib/systemd/system/$f" ] || { echo "no system unit $f"; return 1; }
        done
        for f in n2p-client@.socket n2p-client@.service; do
                [ -f "$DEST$prefix/lib/systemd/user/$f" ] || { echo "no user unit $f"; return 1; }
        done
        grep -q "^ExecStart=$BINDIR/n2pd " "$DEST$prefix/lib/systemd/system/n2p.service" ||
                { echo "n2p.service does not name $BINDIR/n2pd"; return 1; }
        find "$DEST" -name 'n2p*.[178]' | sort
}
must "meson install: binaries, 2 system + 2 user units (ExecStart=$BINDIR/...)" installed
MAN_INSTALLED=$(find "$DEST" -name 'n2p*.[178]' | wc -l)

# ---------------------------------------------------------------- 2. machines + network
export BIND="$DEST$prefix:$prefix"
must "boot machine $MS (systemd as PID 1)" "$BOOT" up "$MS"
must "boot machine $MU (systemd as PID 1)" "$BOOT" up "$MU"

network() {
        local sns
        sns=$(cat "$SD_BASE/$MS/netns")
        ip netns add "$CNS" && CNS_CREATED=1
        ip -n "$CNS" link set lo up
        ip -n "$sns" link add to-cli type veth peer name to-srv netns "$CNS"
        ip -n "$sns" addr add 10.231.0.1/24 dev to-cli
        ip -n "$sns" link set to-cli up
        ip -n "$CNS" addr add 10.231.0.2/24 dev to-srv
        ip -n "$CNS" link set to-srv up
        "$BOOT" link "$MS" "$MU"     # S=192.0.2.1, U=192.0.2.2
        ip netns exec "$CNS" ping -c1 -W5 10.231.0.1
        U ping -c1 -W5 192.0.2.1
}
# network() sets CNS_CREATED for the trap, so it runs in this shell, not in check's.
echo "== network" >>"$LOG/checks.log"
if network >>"$LOG/checks.log" 2>&1; then pass "veth S<->client netns (10.231.0.0/24) and S<->U (192.0.2.0/24)"
else failed "network setup"; finish; fi

# ---------------------------------------------------------------- 3. units in S
# The rendezvous units are verified alongside, when this tree installs them.
SYSUNITS="n2p-server.socket n2p.service"
[ ! -f "$DEST$prefix/lib/systemd/system/n2p-rendezvous.service" ] ||
        SYSUNITS="$SYSUNITS n2p-rendezvous.socket n2p-rendezvous.service"
install_system_units() {
        local f
        for f in $SYSUNITS; do
                S sh -c "cat >/run/systemd/system/$f" <"$DEST$prefix/lib/systemd/system/$f" || return 1
        done
        S systemctl daemon-reload
}
must "install the system units into /run/systemd/system of $MS" install_system_units

verify_clean() { # MACHINE-FN [--user] UNIT...: exit 0 and not a word on stdout/stderr
        local out rc
        out=$("$@" 2>&1)
        rc=$?
        printf '%s\n' "$out"
        [ "$rc" = 0 ] && [ -z "$out" ]
}
# Documentation= is checked too (man pages must be installed) unless scdoc was missing.
MANCHECK=
[ "$MAN_INSTALLED" -gt 0 ] || MANCHECK=--man=no
check "systemd-analyze verify $SYSUNITS: clean" \
        verify_clean S sh -c "cd /run/systemd/system && systemd-analyze verify $MANCHECK $SYSUNITS"

# `systemd-analyze security` as the booted manager sees the loaded units (not an
# offline guess): the exposure is the sandboxing that will really apply.
EXPOSURE_MAX=2.0
exposure_ok() { # UNIT: overall exposure <= EXPOSURE_MAX
        local out level
        out=$(S systemd-analyze security --no-pager "$1" 2>&1) || { printf '%s\n' "$out"; return 1; }
        printf '%s\n' "$out" | grep -E '^✗' || true
        level=$(printf '%s\n' "$out" | sed -n 's/.*Overall exposure level for [^:]*: *\([0-9.]*\).*/\1/p' | tail -n1)
        echo "$1: exposure ${level:-?} (limit $EXPOSURE_MAX)"
        [ -n "$level" ] && awk -v l="$level" -v m="$EXPOSURE_MAX" 'BEGIN { exit !(l <= m) }'
}
for u in n2p.service n2p-rendezvous.service; do
        case " $SYSUNITS " in *" $u "*) ;; *) continue ;; esac
        check "systemd-analyze security $u in $MS: exposure <= $EXPOSURE_MAX" exposure_ok "$u"
        grep "^$u: exposure" "$LOG/checks.log" | tail -n1 | sed 's/^/    /'
done

socket_listening() {
        S systemctl start n2p-server.socket || return 1
        [ "$(S systemctl is-active n2p-server.socket)" = active ] || return 1
        S systemctl show -p Listen n2p-server.socket | tee /dev/stderr | grep -q ':7787 (Datagram)'
        # nothing runs until a peer's first datagram
        [ "$(S systemctl is-active n2p.service)" = inactive ]
}
must "systemctl start n2p-server.socket: listening on udp/7787, n2p.service not started" socket_listening

# ---------------------------------------------------------------- 4. activation, addresses
# The long address only exists once n2pd has run, and n2pd starts on the first
# datagram: so make a first contact, then read the address from the journal.
first_contact() {
        echo "n2p e2e first contact" |
                ip netns exec "$CNS" timeout 5 socat -u - UDP-SENDTO:10.231.0.1:7787 || return 1
        local st=
        for _ in $(seq 1 60); do
                st=$(S systemctl is-active n2p.service)
                [ "$st" = active ] && break
                sleep 0.25
        done
        echo "n2p.service: $st"
        [ "$st" = active ]
}
must "a first UDP datagram to 10.231.0.1:7787 starts n2p.service (Type=notify -> active)" first_contact

journal_text() { S journalctl -u n2p --no-pager -o cat; }
addresses() {
        for _ in $(seq 1 40); do
                journal_text | grep -q 'long address: n2p1' && break
                sleep 0.25
        done
        SHORT=$(journal_text | sed -n 's/.*short address: \(n2p1[a-z2-7]*\).*/\1/p' | tail -n1)
        LONG=$(journal_text | sed -n 's/.*long address: \(n2p1[a-z2-7]*\).*/\1/p' | tail -n1)
        echo "short=$SHORT"
        echo "long=$LONG"
        [ "${#SHORT}" = 64 ] && [ "${#LONG}" -gt 64 ]
}
echo "== addresses" >>"$LOG/checks.log"
if addresses >>"$LOG/checks.log" 2>&1; then
        pass "journalctl -u n2p: 'short address: n2p1...' (64 chars) and 'long address: n2p1...' (${#LONG} chars)"
else
        failed "journalctl -u n2p shows no short/long address"
        S journalctl -u n2p --no-pager | tail -n 15 | sed 's/^/    | /'
        finish
fi

journal_fields() {
        local js fs fl
        js=$(S journalctl -u n2p --no-pager -o json) || return 1
        fs=$(printf '%s\n' "$js" | jq -r 'select(.N2P_SHORT_ADDRESS != null) | .N2P_SHORT_ADDRESS' | tail -n1)
        fl=$(printf '%s\n' "$js" | jq -r 'select(.N2P_LONG_ADDRESS != null) | .N2P_LONG_ADDRESS' | tail -n1)
        echo "N2P_SHORT_ADDRESS=$fs"
        echo "N2P_LONG_ADDRESS=$fl"
        [ "$fs" = "$SHORT" ] && [ "$fl" = "$LONG" ]
}
check "journal fields N2P_SHORT_ADDRESS= and N2P_LONG_ADDRESS= equal the logged addresses" journal_fields

service_identity() {
        local pid uid key
        pid=$(S systemctl show -p MainPID --value n2p.service)
        uid=$(S stat -c %u "/proc/$pid")
        echo "n2pd pid $pid uid $uid"
        [ -n "$uid" ] && [ "$uid" != 0 ] || return 1
        # the identity persists in StateDirectory=, 32 raw bytes, 0600, owned by the service
        key=$(S stat -c '%s %a %u' /var/lib/private/n2p/secret.key)
        echo "secret.key: $key"
        [ "$key" = "32 600 $uid" ] || return 1
        # and it is the key the addresses name
        S "$BINDIR/n2pctl" address --secret-key-file /var/lib/private/n2p/secret.key |
                tee /dev/stderr | grep -qx "short address: $SHORT"
}
check "n2p.service runs as a dynamic non-root user; its 0600 32-byte key in /var/lib/private/n2p gives the same short address" service_identity

# ---------------------------------------------------------------- 5. client side: nix-daemon + n2pctl connect
client_daemon() {
        mkdir -p "$W/client/nix/store" "$W/client/nix/var/nix" "$W/conf" "$W/cache"
        cat >"$W/conf/nix.conf" <<'EOF'
build-users-group =
sandbox = false
experimental-features = nix-command
trusted-users = root
substituters =
require-sigs = false
EOF
        # --store local is mandatory (the default 'auto' store can connect to
        # itself: a fork bomb); --propagation private keeps the bind off the host.
        NIX_DAEMON_SOCKET_PATH=$W/run/client.sock \
                setsid unshare -m --propagation private \
                sh -c 'mount --bind "$1" /nix && exec nix-daemon --store local' sh "$W/client/nix" \
                </dev/null >"$LOG/client-daemon.log" 2>&1 &
        CLIENT_DAEMON_PID=$!   # unshare (no --fork) -> sh -> exec: this is nix-daemon
        for _ in $(seq 1 100); do
                [ -S "$W/run/client.sock" ] && pid_is "$CLIENT_DAEMON_PID" nix-daemon && return 0
                sleep 0.1
        done
        cat "$LOG/client-daemon.log"
        return 1
}
export NIX_CONF_DIR=$W/conf NIX_USER_CONF_FILES=$W/conf/nix.conf XDG_CACHE_HOME=$W/cache
unset NIX_REMOTE NIX_PATH || true
echo "== client daemon" >>"$LOG/checks.log"
if client_daemon >>"$LOG/checks.log" 2>&1; then pass "client nix-daemon --store local in a private mount namespace (/nix = $W/client/nix)"
else failed "client nix-daemon did not start"; finish; fi

make_paths() {
        local nonce d
        nonce=$ID-$(date +%s%N)
        head -c 4M /dev/urandom >"$W/gen/n2p-e2e-big.bin"
        BIG=$(unix_ nix-store --store local --add "$W/gen/n2p-e2e-big.bin") || return 1
        d=$W/gen/n2p-e2e-small
        mkdir -p "$d"
        head -c $((300 * 1024)) /dev/urandom | split -b 1024 -a 4 -d - "$d/f"
        BIGDIR=$(unix_ nix-store --store local --add "$d") || return 1
        cat >"$W/gen/closure.nix" <<EOF
builtins.derivation {
  name = "n2p-e2e-unsigned"; system = builtins.currentSystem; builder = "/bin/sh";
  nonce = "$nonce"; args = [ "-c" "echo unsigned > \$out" ];
}
EOF
        UNSIGNED=$(unix_ nix-build --store local --no-out-link "$W/gen/closure.nix") || return 1
        echo "BIG=$BIG BIGDIR=$BIGDIR UNSIGNED=$UNSIGNED"
}
echo "== make paths" >>"$LOG/checks.log"
if make_paths >>"$LOG/checks.log" 2>&1; then pass "client store: 4 MiB file, 300-file directory (content-addressed), one unsigned input-addressed path"
else failed "could not make the test paths"; finish; fi

PEER_SOCK=$W/run/peer.sock
connect_client() {
        ip netns exec "$CNS" timeout 300 "$HOSTBIN/n2pctl" connect "$LONG" \
                --secret-key-file "$W/client.key" --socket "$PEER_SOCK" \
                </dev/null >"$LOG/connect.out" 2>"$LOG/connect.err" &
        CONNECT_PID=$!   # timeout; n2pctl is its child
        local line=
        for _ in $(seq 1 80); do   # the contract: an answer within 15 s
                line=$(head -n1 "$LOG/connect.out")
                [ -n "$line" ] && break
                pid_is "$CONNECT_PID" 'ip|timeout' || break
                sleep 0.25
        done
        echo "stdout: $line"
        cat "$LOG/connect.err"
        [ "$line" = "unix:$PEER_SOCK" ] || return 1
        [ -S "$PEER_SOCK" ] && [ "$(stat -c %a "$PEER_SOCK")" = 600 ] || return 1
        [ "$(stat -c '%s %a' "$W/client.key")" = "32 600" ]
}
echo "== connect" >>"$LOG/checks.log"
if connect_client >>"$LOG/checks.log" 2>&1; then
        pass "n2pctl connect LONG (client netns) prints 'unix:$PEER_SOCK'; socket 0600; client key created 0600"
else
        failed "n2pctl connect LONG"
        tail -n 15 "$LOG/connect.err" | sed 's/^/    | /'
        finish
fi

check "nix store ping --store unix:$PEER_SOCK (through n2p to S's nix-daemon)" \
        unix_ nix store ping --store "unix:$PEER_SOCK"

copy_paths() {
        T=180 unix_ nix copy --store local --to "unix:$PEER_SOCK" "$BIG" "$BIGDIR"
}
check "nix copy --to unix:$PEER_SOCK (4 MiB file + 300-file directory)" copy_paths

hashes_client() { unix_ nix path-info --store local --json "$@" | jq -r '.[] | "\(.path) \(.narHash)"' | sort; }
hashes_server() { snix path-info --store daemon --json "$@" | jq -r '.[] | select(.valid != false) | "\(.path) \(.narHash)"' | sort; }
same_hashes() {
        local c s
        c=$(hashes_client "$BIG" "$BIGDIR") && s=$(hashes_server "$BIG" "$BIGDIR") || return 1
        echo "client: $c"
        echo "server: $s"
        [ -n "$c" ] && [ "$c" = "$s" ] && [ "$(printf '%s\n' "$s" | wc -l)" = 2 ]
}
check "in $MS: nix path-info --store daemon narHashes equal the client's" same_hashes
check "in $MS: nix store verify --store daemon (re-hashes the received files)" \
        snix store verify --store daemon "$BIG" "$BIGDIR"

refused_unsigned() {
        local out
        if out=$(T=60 unix_ nix copy --store local --to "unix:$PEER_SOCK" --no-check-sigs "$UNSIGNED" 2>&1); then
                echo "accepted: $out"
                return 1
        fi
        echo "$out"
        # refused by the daemon for the right reason, not lost on the way
        printf '%s\n' "$out" | grep -qi 'signature' || return 1
        ! snix path-info --store daemon "$UNSIGNED" 2>/dev/null
}
check "peers are untrusted Nix users: an unsigned input-addressed path is refused, even with --no-check-sigs" refused_unsigned

# ---------------------------------------------------------------- 6. user units in U
user_manager() {
        U systemctl start user@0.service || return 1
        for _ in $(seq 1 40); do
                [ "$(U env XDG_RUNTIME_DIR=/run/user/0 systemctl --user is-system-running 2>/dev/null)" = running ] && return 0
                sleep 0.25
        done
        return 1
}
must "in $MU: a user manager runs (systemctl start user@0.service)" user_manager
Uu() { U env XDG_RUNTIME_DIR=/run/user/0 HOME=/root "$@"; }

install_user_units() {
        local f
        U mkdir -p /run/systemd/user /root/.config/n2p/peers || return 1
        for f in n2p-client@.socket n2p-client@.service; do
                U sh -c "cat >/run/systemd/user/$f" <"$DEST$prefix/lib/systemd/user/$f" || return 1
        done
        printf 'ADDRESS=%s\nOPTIONS=--timeout 120 --verbose\n' "$LONG" | U sh -c 'cat >/root/.config/n2p/peers/srv.env'
        Uu systemctl --user daemon-reload
}
must "in $MU: user units in /run/systemd/user, ~/.config/n2p/peers/srv.env with ADDRESS=LONG" install_user_units
check "systemd-analyze --user verify n2p-client@.socket n2p-client@srv.service: clean" \
        verify_clean Uu sh -c "cd /run/systemd/user && systemd-analyze --user verify $MANCHECK n2p-client@.socket n2p-client@srv.socket n2p-client@srv.service"

user_socket() {
        Uu systemctl --user start n2p-client@srv.socket || return 1
        [ "$(Uu systemctl --user is-active n2p-client@srv.socket)" = active ] || return 1
        U stat -c '%F %a' /run/user/0/n2p/srv.sock | tee /dev/stderr | grep -qx 'socket 600' || return 1
        [ "$(U stat -c %a /run/user/0/n2p)" = 700 ] || return 1
        [ "$(Uu systemctl --user is-active n2p-client@srv.service)" = inactive ]
}
check "systemctl --user start n2p-client@srv.socket: /run/user/0/n2p/srv.sock 0600 in a 0700 dir, service not started" user_socket

user_ping() {
        T=30 U nix --extra-experimental-features nix-command store ping --store unix:/run/user/0/n2p/srv.sock || return 1
        [ "$(Uu systemctl --user is-active n2p-client@srv.service)" = active ] || return 1
        # the identity is n2pctl's default key file, as for interactive use
        [ "$(U stat -c '%s %a' /root/.local/state/n2p/secret.key)" = "32 600" ] || return 1
        # the connection was served by S's n2pd: a second session there
        U journalctl --no-pager -o cat _SYSTEMD_USER_UNIT=n2p-client@srv.service | tail -n 5
}
check "in $MU: nix store ping --store unix:/run/user/0/n2p/srv.sock socket-activates n2p-client@srv.service and reaches $MS" user_ping

# ---------------------------------------------------------------- 7. docs, shutdown
if [ "$MAN_INSTALLED" -gt 0 ]; then
        check "man pages installed and found by man(1) in $MS (n2pctl.1, n2pd.8, n2p.7)" \
                S sh -c 'man -w n2pctl && man -w n2pd && man -w 7 n2p'
else
        echo "NOTE: scdoc not found at configure time: no man pages to check"
fi

clean_exit() {
        local child
        child=$(ps -o pid= --ppid "$CONNECT_PID" | head -n1 | tr -d ' ')
        pid_is "$child" n2pctl || return 1
        kill -TERM "$child" || return 1
        for _ in $(seq 1 40); do pid_is "$CONNECT_PID" timeout || break; sleep 0.25; done
        pid_is "$CONNECT_PID" timeout && return 1
        wait "$CONNECT_PID"
        local rc=$?
        echo "n2pctl exit status $rc"
        CONNECT_PID=
        [ "$rc" = 0 ] && [ ! -e "$PEER_SOCK" ]
}
echo "== clean exit" >>"$LOG/checks.log"
if clean_exit >>"$LOG/checks.log" 2>&1; then pass "SIGTERM to n2pctl connect: exit 0 within 10 s, socket removed"
else failed "SIGTERM to n2pctl connect: no clean exit"; fi

finish
