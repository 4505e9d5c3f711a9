# shellcheck shell=bash
# harness.sh — helpers shared by the end-to-end tests (source it; it only defines
# functions). One PASS/FAIL line per check, a closing "N passed, M failed" line,
# kills only by recorded PID after checking the PID still runs what we started.
#
#   H_LOGDIR  directory for per-check logs (must exist)
#   H_NAME    prefix of log lines on stderr

H_PASS=0
H_FAIL=0
H_N=0

h_log() { printf '[%s %s] %s\n' "${H_NAME:-e2e}" "$(date +%T)" "$*" >&2; }

# Inside a check: a one-line note printed after PASS/FAIL.
detail() { printf '%s ' "$*" >>"$H_LOGDIR/detail"; }

# Inside a check: end it as a failure with a reason.
fail() {
        detail "$*"
        printf 'FAILED: %s\n' "$*" >&2
        exit 1
}

# check NAME FUNC [ARGS...]: FUNC runs in a subshell with errexit, its output in
# a log of its own. It runs in the background and is waited for, because errexit
# is silently off in anything that is part of an `if`/`||` condition.
check() {
        local name=$1 rc=0 t0 t1 log dt note
        shift
        H_N=$((H_N + 1))
        log=$H_LOGDIR/check-$(printf %02d "$H_N").log
        : >"$H_LOGDIR/detail"
        h_log "check $H_N: $name"
        t0=$(date +%s.%N)
        (
                set -euo pipefail
                echo "== $name"
                "$@"
        ) >"$log" 2>&1 </dev/null &
        wait $! || rc=$?
        t1=$(date +%s.%N)
        dt=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }')
        note=$(head -c 400 "$H_LOGDIR/detail" | tr '\n' ' ' | sed 's/ *$//')
        if [ "$rc" -eq 0 ]; then
                H_PASS=$((H_PASS + 1))
                echo "PASS: $name${note:+ — $note} [${dt} s]"
        else
                H_FAIL=$((H_FAIL + 1))
                echo "FAIL: $name${note:+ — $note} [${dt} s, exit $rc, log $log]"
                tail -n 20 "$log" | sed 's/^/    | /'
        fi
}

h_summary() {
        echo "$H_PASS passed, $H_FAIL failed"
        [ "$H_FAIL" -eq 0 ] && [ "$H_PASS" -gt 0 ]
}

# pid_is PID COMM_REGEX: alive, not a zombie, and its comm matches (a reused PID
# belongs to somebody else and must never be signalled).
pid_is() {
        local p=${1:-} st comm
        [ -n "$p" ] && [ -r "/proc/$p/stat" ] || return 1
        st=$(sed 's/.*) //' "/proc/$p/stat" 2>/dev/null | cut -d' ' -f1) || return 1
        [ -n "$st" ] && [ "$st" != Z ] || return 1
        comm=$(cat "/proc/$p/comm" 2>/dev/null) || return 1
        [[ $comm =~ ^($2)$ ]]
}

# kill_checked SIGNAL PID COMM_REGEX
kill_checked() {
        pid_is "$2" "$3" || return 0
        kill "-$1" "$2" 2>/dev/null || true
}

# stop_checked PID COMM_REGEX [GRACE_SECONDS]: TERM, wait, KILL.
stop_checked() {
        local p=$1 re=$2 grace=${3:-5} i
        pid_is "$p" "$re" || return 0
        kill -TERM "$p" 2>/dev/null || true
        for ((i = 0; i < grace * 10; i++)); do
                pid_is "$p" "$re" || return 0
                sleep 0.1
        done
        kill_checked KILL "$p" "$re"
}

# wait_for SECONDS CMD...: poll CMD every 0.1 s until it succeeds.
wait_for() {
        local limit=$1 i
        shift
        for ((i = 0; i < limit * 10; i++)); do
                "$@" && return 0
                sleep 0.1
        done
        return 1
}

# ns_setup NAME: a fresh network namespace, IPv4 only, bridged frames kept out of
# iptables (br_netfilter defaults that to on in every new namespace).
ns_setup() {
        ip netns add "$1"
        ip netns exec "$1" ip link set lo up
        ip netns exec "$1" sysctl -qw net.ipv6.conf.all.disable_ipv6=1
        ip netns exec "$1" sysctl -qw net.ipv6.conf.default.disable_ipv6=1
        if ip netns exec "$1" test -e /proc/sys/net/bridge/bridge-nf-call-iptables; then
                ip netns exec "$1" sysctl -qw net.bridge.bridge-nf-call-iptables=0
                ip netns exec "$1" sysctl -qw net.bridge.bridge-nf-call-ip6tables=0
                ip netns exec "$1" sysctl -qw net.bridge.bridge-nf-call-arptables=0
        fi
}

# ns_teardown NAME: `ip netns del` kills nothing, so first end what still runs
# inside the namespace (only this test's namespaces ever get here).
ns_teardown() {
        local n=$1 pids i
        ip netns list 2>/dev/null | awk '{print $1}' | grep -qx -- "$n" || return 0
        pids=$(ip netns pids "$n" 2>/dev/null || true)
        if [ -n "$pids" ]; then
                # shellcheck disable=SC2086
                kill -TERM $pids 2>/dev/null || true
                for ((i = 0; i < 30; i++)); do
                        pids=$(ip netns pids "$n" 2>/dev/null || true)
                        [ -z "$pids" ] && break
                        sleep 0.1
                done
                # shellcheck disable=SC2086
                [ -z "$pids" ] || kill -KILL $pids 2>/dev/null || true
        fi
        ip netns del "$n" 2>/dev/null || true
}
