# bench/lib.sh: the pieces bench/run is made of (sourced, not run).

b_log() { printf '[bench %s] %s\n' "$(date +%T)" "$*" >&2; }
b_die() { b_log "ERROR: $*"; exit 1; }

topo() { "$TOPO" "$@"; }
ns() { echo "${N2P_NS_PREFIX}$1"; }
in_ns() { local h=$1; shift; ip netns exec "$(ns "$h")" "$@"; }

# One metric per line, "key value"; report.py turns them into the table.
rec() { echo "$1 $2" >>"$W/metrics"; b_log "  $1 = $2"; }

wait_for() { # SECONDS CMD...
        local t=$1 i
        shift
        for ((i = 0; i < t * 10; i++)); do
                "$@" && return 0
                sleep 0.1
        done
        return 1
}

# bg NAME HOST CMD...: CMD in HOST's namespace, bounded by timeout; the pid of
# the program itself (timeout's child) lands in $W/pids/NAME.
bg() {
        local name=$1 host=$2 w c
        shift 2
        : >"$W/log/$name.out"
        : >"$W/log/$name.err"
        ip netns exec "$(ns "$host")" timeout -k 5 "$B_PROC_LIMIT" "$@" \
                >"$W/log/$name.out" 2>"$W/log/$name.err" </dev/null &
        w=$!
        echo "$w" >"$W/pids/$name.wrap"
        wait_for 5 eval 'c=$(ps -o pid= --ppid "$w" | head -n1 | tr -d " "); [ -n "$c" ]' ||
                b_die "$name did not start"
        echo "$c" >"$W/pids/$name"
}
pid_of() { cat "$W/pids/$1"; }
stop() { # NAME: ends the process we started under that name, nothing else
        local p w
        p=$(cat "$W/pids/$1" 2>/dev/null) || return 0
        w=$(cat "$W/pids/$1.wrap" 2>/dev/null) || true
        kill -TERM "$p" 2>/dev/null || true
        [ -n "$w" ] && { wait "$w" 2>/dev/null || true; }
        rm -f "$W/pids/$1" "$W/pids/$1.wrap"
}
stop_all() {
        local f
        for f in "$W"/pids/*.wrap; do
                [ -e "$f" ] || continue
                f=$(basename "$f" .wrap)
                stop "$f"
        done
}

# The delay lines. MS each on ra and rb: a packet between ha and hb crosses both,
# so the round trip grows by 2*(MSa+MSb). The loss is split over the two routers.
set_path() { # MS_A MS_B LOSS%
        local half
        half=$(awk -v l="$3" 'BEGIN{printf "%g", l / 2}')
        topo delay ra "$1" "$half" >/dev/null
        topo delay rb "$2" "$half" >/dev/null
}

# server NAME PORT NIX_SOCKET: an n2p server in ha; its long address in $W/NAME.long
server_up() {
        local name=$1 port=$2 sock=$3
        bg "$name" ha "$BIN" server --listen "$HA_IP:$port" --nix-daemon-socket "$sock" \
                --secret-key-file "$W/$name.key"
        wait_for 15 grep -q 'long address: *n2p1' "$W/log/$name.err" ||
                { cat "$W/log/$name.err" >&2; b_die "$name: no long address"; }
        sed -n 's/.*long address: *\(n2p1[a-z2-7]*\).*/\1/p' "$W/log/$name.err" | head -n1 >"$W/$name.long"
}

# client NAME HOST SERVER: n2pctl connect in HOST; prints nothing, socket $W/NAME.sock.
# The worker that serves it is recorded as NAME-worker.
client_up() {
        local name=$1 host=$2 server=$3 before after w
        before=$(ps -o pid= --ppid "$(pid_of "$server")" | sort || true)
        rm -f "$W/$name.sock"
        bg "$name" "$host" "$BIN" connect "$(cat "$W/$server.long")" --socket "$W/$name.sock" --one-time-key
        wait_for 15 grep -q '^unix:' "$W/log/$name.out" ||
                { cat "$W/log/$name.err" >&2; b_die "$name: no unix: line"; }
        # the server starts the worker at the handshake, before the client prints
        # its unix: line
        after=$(ps -o pid= --ppid "$(pid_of "$server")" | sort || true)
        w=$(comm -13 <(echo "$before") <(echo "$after") | tr -d ' ' | tail -n1 || true)
        echo "$w" >"$W/pids/$name-worker"
}

cpu_s() { # PID: user+system seconds so far
        awk '{ printf "%.2f", ($14 + $15) / 100 }' "/proc/$1/stat" 2>/dev/null || echo 0
}
machine_busy_s() { # CPU seconds the whole machine spent busy so far (all cores)
        awk '/^cpu / { printf "%.2f", ($2 + $3 + $4 + $7 + $8 + $9) / 100 }' /proc/stat
}
rss_kib() { # PID
        awk '/^VmRSS:/ { print $2 }' "/proc/$1/status" 2>/dev/null || echo 0
}

# json FILE KEY: one number out of nb.py's answer
jget() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$1" "$2"; }

median() { sort -g | awk '{ a[NR] = $1 } END { if (NR == 0) print 0; else if (NR % 2) print a[(NR + 1) / 2]; else print (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }
