#!/usr/bin/env bash
# two-daemons.sh — two independent real nix-daemons on one machine (a "client"
# and a "server"), each in its own mount namespace with a private /nix, so that
# `nix copy --to unix://...` end-to-end tests need no second machine.
# Verified with Debian 12 nix-bin 2.8.0, run as root.
#
# Taken from the project's shared nix recipe, with these changes for the e2e
# tests: `mkpaths KIND=VAR` makes a fresh path under another name, copy/verify
# logs are per path (so copies can run concurrently), and `valid`/`daemon-pids`.
#
#   R=/tmp/x two-daemons.sh up              start both daemons (idempotent)
#   R=/tmp/x two-daemons.sh mkpaths [KIND[=VAR]..] build test paths in the CLIENT store
#                                           KIND: closure wide big small (default all);
#                                           VAR defaults to the upper-case KIND
#   R=/tmp/x two-daemons.sh valid VAR       exit 0 iff VAR's path is valid on the server
#   R=/tmp/x two-daemons.sh daemon-pids     print "SERVER_PID CLIENT_PID"
#   R=/tmp/x two-daemons.sh relay           socat stand-in for the bridge:
#                                           $R/run/relay.sock -> $R/run/server.sock
#   R=/tmp/x two-daemons.sh copy URL VAR    nix copy $VAR (CLOSURE|WIDE|BIG|SMALL or
#                                           a store path) from the client store to
#                                           URL, then verify it on the server.
#                                           URL shortcuts: direct relay ssh
#   R=/tmp/x two-daemons.sh bench [VAR]     hyperfine direct vs relay (vs ssh if up)
#   R=/tmp/x two-daemons.sh sshd            sshd on 127.0.0.1:$SSH_PORT for ssh-ng
#   R=/tmp/x two-daemons.sh del VAR         delete VAR's closure from the server
#   R=/tmp/x two-daemons.sh sign VAR        sign VAR's closure (client) with $R/keys/secret
#   R=/tmp/x two-daemons.sh verify VAR      only the server-side verification
#   R=/tmp/x two-daemons.sh cnix ARGS..     run a command in the client namespace
#   R=/tmp/x two-daemons.sh snix ARGS..     run a command in the server namespace
#   R=/tmp/x two-daemons.sh env             print shell exports (CLIENT_PID, ...)
#   R=/tmp/x two-daemons.sh down            stop everything started under $R
#   R=/tmp/x two-daemons.sh purge           down, then rm -rf $R
#
# Env: R (work dir, default /tmp/n2p-two-daemons; give each concurrent run its
# own), BIG_MB (256), SMALL_N (10000), SMALL_KB (2), WIDE_N (1000),
# SSH_PORT (2222), STRICT=1 at `up` (server requires signatures by
# $R/keys/public), SERVER_TRUSTED_USERS at `up` (default root; "" = nobody),
# SOCAT_BUF (262144), BENCH_RUNS (5).
set -euo pipefail

R=${R:-/tmp/n2p-two-daemons}
case "$R" in /*) ;; *) R=$PWD/$R ;; esac
R=${R%/}
[ -n "$R" ] && [ "$R" != / ] || { echo "refusing R=/" >&2; exit 2; }
BIG_MB=${BIG_MB:-256}
SMALL_N=${SMALL_N:-10000}
SMALL_KB=${SMALL_KB:-2}
WIDE_N=${WIDE_N:-1000}
SSH_PORT=${SSH_PORT:-2222}
SOCAT_BUF=${SOCAT_BUF:-262144}
BENCH_RUNS=${BENCH_RUNS:-5}

# All nix invocations see only our config: no ~/.config/nix, no /etc/nix.
export NIX_CONF_DIR=$R/conf
export NIX_USER_CONF_FILES=$R/conf/nix.conf
unset NIX_REMOTE NIX_PATH || true

log() { printf '[two-daemons %s] %s\n' "$(date +%T)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }
need() { command -v "$1" >/dev/null || die "missing $1 (apt-get install -y $2)"; }

comm_of() { case $1 in server|client) echo nix-daemon ;; relay) echo socat ;; sshd) echo sshd ;; esac; }
pid_of() { # name -> pid if alive (not a zombie) and still the program we started
  local f=$R/pids/$1.pid p st
  [ -f "$f" ] || return 1
  p=$(cat "$f")
  [ -n "$p" ] && [ -r "/proc/$p/stat" ] || return 1
  st=$(sed 's/.*) //' "/proc/$p/stat" | cut -d' ' -f1)
  [ "$st" != Z ] || return 1
  [ "$(cat "/proc/$p/comm")" = "$(comm_of "$1")" ] || return 1  # pid reused?
  echo "$p"
}
client_pid() { pid_of client || die "client daemon not running (run: up)"; }
server_pid() { pid_of server || die "server daemon not running (run: up)"; }
in_client() { nsenter -t "$(client_pid)" -m -- "$@"; }
in_server() { NIX_CONF_DIR=$R/conf-server NIX_USER_CONF_FILES=$R/conf-server/nix.conf nsenter -t "$(server_pid)" -m -- "$@"; }

wait_sock() { # path pidname
  local i
  for i in $(seq 1 100); do
    [ -S "$1" ] && return 0
    pid_of "$2" >/dev/null || { tail -n 20 "$R/log/$2.log" >&2 || true; die "$2 died"; }
    sleep 0.1
  done
  die "timeout waiting for $1"
}

write_conf() { # DIR REQUIRE_SIGS TRUSTED_PUBLIC_KEYS TRUSTED_USERS
  mkdir -p "$1"
  cat >"$1/nix.conf" <<EOF
build-users-group =
sandbox = false
experimental-features = nix-command
trusted-users = $4
substituters =
require-sigs = $2
warn-dirty = false
EOF
  # Only write trusted-public-keys when non-empty: a TRUSTED client sends every
  # setting its config sets to the daemon (wopSetOptions) and the daemon applies
  # it, so an empty line on the client side wipes the server's keys.
  [ -z "$3" ] || echo "trusted-public-keys = $3" >>"$1/nix.conf"
}

start_daemon() { # name
  local n=$1 sock=$R/run/$1.sock
  if pid_of "$n" >/dev/null; then log "$n already running (pid $(pid_of "$n"))"; return; fi
  mkdir -p "$R/$n/nix/store" "$R/$n/nix/var/nix" "$R/run" "$R/log" "$R/pids"
  rm -f "$sock"
  # --store local is MANDATORY: with the default 'auto' store and a socket at the
  # default place the daemon may connect to itself -> fork bomb.
  # --propagation private: our bind mount must never leak to the host.
  NIX_DAEMON_SOCKET_PATH=$sock NIX_CONF_DIR=$R/conf-$n NIX_USER_CONF_FILES=$R/conf-$n/nix.conf \
    unshare -m --propagation private \
    sh -c 'mount --bind "$1" /nix && exec nix-daemon --store local' sh "$R/$n/nix" \
    </dev/null >"$R/log/$n.log" 2>&1 &
  echo $! >"$R/pids/$n.pid"   # unshare (no --fork) -> sh -> exec: $! IS nix-daemon
  wait_sock "$sock" "$n"
  log "$n daemon pid $(cat "$R/pids/$n.pid") socket $sock store $R/$n/nix"
}

cmd_up() {
  need nix-daemon nix-bin; need unshare util-linux; need nsenter util-linux
  [ -d /nix ] || mkdir /nix   # only the (empty) mount point is needed on the host
  mkdir -p "$R/log"; touch "$R/.two-daemons"
  mkdir -p "$R/keys"
  # nix-store opens a store even for key generation: on the host that would
  # create/modify the host's /nix/var/nix/db, so do it over a throw-away /nix.
  [ -f "$R/keys/secret" ] ||
    unshare -m --propagation private sh -c 'mount -t tmpfs n2p-keygen /nix &&
      exec nix-store --store local --generate-binary-cache-key n2p-test-1 "$1/secret" "$1/public"' sh "$R/keys" \
      </dev/null >"$R/log/keygen.log" 2>&1 || { cat "$R/log/keygen.log" >&2; die "key generation failed"; }
  write_conf "$R/conf" false "" root            # tools run on the client side
  write_conf "$R/conf-client" false "" root
  if [ "${STRICT:-0}" = 1 ]; then
    # Signature-test variant: server requires signatures by $R/keys/public.
    write_conf "$R/conf-server" true "$(cat "$R/keys/public")" "${SERVER_TRUSTED_USERS-root}"
  else
    write_conf "$R/conf-server" false "" "${SERVER_TRUSTED_USERS-root}"
  fi
  start_daemon server
  start_daemon client
  cmd_env
}

cmd_env() {
  cat <<EOF
export R=$R
export NIX_CONF_DIR=$R/conf NIX_USER_CONF_FILES=$R/conf/nix.conf
export SERVER_PID=$(pid_of server || true) CLIENT_PID=$(pid_of client || true)
export SERVER_SOCK=$R/run/server.sock CLIENT_SOCK=$R/run/client.sock RELAY_SOCK=$R/run/relay.sock
EOF
  [ -f "$R/paths.env" ] && sed 's/^/export /' "$R/paths.env" || true
}

stop_pid() { # name
  local n=$1 p c i
  p=$(pid_of "$n") || { rm -f "$R/pids/$n.pid"; return 0; }
  # nix-daemon forks one child per connection; socat forks per connection too.
  for c in $(ps -o pid= --ppid "$p" 2>/dev/null); do kill "$c" 2>/dev/null || true; done
  kill "$p" 2>/dev/null || true
  for i in $(seq 1 50); do pid_of "$n" >/dev/null || break; sleep 0.1; done
  if pid_of "$n" >/dev/null; then kill -9 "$p" 2>/dev/null || true; fi
  rm -f "$R/pids/$n.pid"
  log "stopped $n (pid $p)"
}

cmd_down() {
  [ -d "$R/pids" ] || { log "nothing under $R"; return 0; }
  stop_pid sshd; stop_pid relay; stop_pid client; stop_pid server
  rm -f "$R"/run/*.sock
}

cmd_purge() {
  cmd_down
  [ -e "$R" ] || return 0
  [ -f "$R/.two-daemons" ] || die "$R has no .two-daemons marker; not deleting"
  rm -rf "$R"; log "removed $R"
}

# ---------------------------------------------------------------- test paths
setvar() { # NAME VALUE -> $R/paths.env
  touch "$R/paths.env"
  sed -i "/^$1=/d" "$R/paths.env"
  echo "$1=$2" >>"$R/paths.env"
  log "$1=$2"
}

mk_closure() { # VAR
  # Three derivations built with /bin/sh (sandbox off, no nixpkgs): top refers
  # to mid and leaf, mid refers to leaf -> a closure of 3 outputs (+ .drv files).
  local nonce; nonce=$(date +%s%N)
  cat >"$R/closure.nix" <<EOF
let
  mk = name: script: extra: builtins.derivation ({
    inherit name; system = builtins.currentSystem; builder = "/bin/sh";
    PATH = "/usr/bin:/bin"; nonce = "$nonce"; args = [ "-c" script ];
  } // extra);
  leaf = mk "n2p-leaf" "mkdir \$out; echo leaf > \$out/data; head -c 65536 /dev/urandom > \$out/rand" {};
  mid = mk "n2p-mid" "mkdir \$out; echo \$leaf > \$out/ref; ln -s \$leaf/data \$out/link" { inherit leaf; };
in mk "n2p-top" "mkdir -p \$out/bin; printf '#!/bin/sh\necho %s %s\n' \$mid \$leaf > \$out/bin/hello; chmod +x \$out/bin/hello" { inherit mid leaf; }
EOF
  local p; p=$(in_client nix-build --store local --no-out-link "$R/closure.nix" 2>>"$R/log/mkpaths.log")
  setvar "$1" "$p"
}

mk_wide() { # VAR
  # WIDE_N builtins.toFile leaves, all referenced by one output.
  cat >"$R/wide.nix" <<EOF
let leaves = builtins.genList (i: builtins.toFile "n2p-leaf-\${toString i}" "leaf \${toString i} $(date +%s%N)\n") $WIDE_N;
in builtins.derivation {
  name = "n2p-wide"; system = builtins.currentSystem; builder = "/bin/sh";
  PATH = "/usr/bin:/bin"; passAsFile = [ "leaves" ]; inherit leaves;
  args = [ "-c" "cp \$leavesPath \$out" ];
}
EOF
  local p; p=$(in_client nix-build --store local --no-out-link "$R/wide.nix" 2>>"$R/log/mkpaths.log")
  setvar "$1" "$p"
}

mk_big() { # VAR
  local f; f=$R/gen/n2p-$(echo "$1" | tr 'A-Z_' 'a-z-').bin
  mkdir -p "$R/gen"; rm -f "$f"
  head -c "${BIG_MB}M" /dev/urandom >"$f"
  local p; p=$(in_client nix-store --store local --add "$f")
  rm -f "$f"
  setvar "$1" "$p"
}

mk_small() { # VAR
  local d; d=$R/gen/n2p-$(echo "$1" | tr 'A-Z_' 'a-z-')
  rm -rf "$d"; mkdir -p "$d"
  # one urandom read split into SMALL_N files of SMALL_KB KiB (fast, no fork per file)
  head -c $((SMALL_N * SMALL_KB * 1024)) /dev/urandom | split -b $((SMALL_KB * 1024)) -a 6 -d - "$d/f"
  local p; p=$(in_client nix-store --store local --add "$d")
  rm -rf "$d"
  setvar "$1" "$p"
}

cmd_mkpaths() {
  client_pid >/dev/null
  local k kind var kinds=${*:-closure wide big small}
  for k in $kinds; do
    kind=${k%%=*}; var=${k#*=}
    [ "$var" != "$k" ] || var=$(echo "$kind" | tr a-z A-Z)
    case $var in [A-Z]*) ;; *) die "bad variable name $var" ;; esac
    case $kind in
      closure) mk_closure "$var" ;; wide) mk_wide "$var" ;; big) mk_big "$var" ;; small) mk_small "$var" ;;
      *) die "unknown kind $kind" ;;
    esac
  done
}

resolve_path() { # VAR or /nix/store/... -> path
  case "$1" in
    /nix/store/*) echo "$1" ;;
    *) [ -f "$R/paths.env" ] || die "no paths.env (run mkpaths)"
       local v; v=$(sed -n "s/^$1=//p" "$R/paths.env")
       [ -n "$v" ] || die "$1 not in $R/paths.env"; echo "$v" ;;
  esac
}

resolve_url() {
  case "$1" in
    direct) echo "unix://$R/run/server.sock" ;;
    relay)  echo "unix://$R/run/relay.sock" ;;
    ssh)    echo "ssh-ng://root@127.0.0.1?remote-program=$R/ssh/remote-program" ;;
    *)      echo "$1" ;;
  esac
}

ssh_env() {
  export NIX_SSHOPTS="-F none -p $SSH_PORT -i $R/ssh/id -o IdentitiesOnly=yes -o UserKnownHostsFile=$R/ssh/known_hosts -o StrictHostKeyChecking=yes -o BatchMode=yes"
}

# (path narHash) list of P's closure, from the client and from the server
closure_hashes() { # client|server P
  local f=in_$1
  $f nix path-info --store local -r --json "$2" | jq -r '.[] | select(.valid != false) | "\(.path) \(.narHash)"' | sort
}

logname() { basename "$1" | cut -d- -f1; }  # store hash: unique per path

cmd_verify() { # VAR
  local P l; P=$(resolve_path "$1"); l=$R/log/verify-$(logname "$P")
  closure_hashes client "$P" >"$l.client"
  closure_hashes server "$P" >"$l.server" 2>/dev/null || true
  local n; n=$(wc -l <"$l.client")
  [ "$n" -gt 0 ] || die "VERIFY FAIL: $P has no closure on the client"
  if ! cmp -s "$l.client" "$l.server"; then
    diff "$l.client" "$l.server" | head -n 10 >&2 || true
    die "VERIFY FAIL: closure of $P differs between client and server"
  fi
  # re-hash every file on the server side against the narHash it recorded
  in_server nix store verify --store local --no-trust -r "$P" >"$l.store" 2>&1 ||
    { cat "$l.store" >&2; die "VERIFY FAIL: nix store verify on server"; }
  log "VERIFY OK: $n paths, narHashes identical, server 'nix store verify --no-trust -r' clean"
}

cmd_copy() { # URL VAR [extra nix copy args]
  [ $# -ge 2 ] || die "usage: copy URL PATHVAR"
  local url P t0 t1; url=$(resolve_url "$1"); P=$(resolve_path "$2"); shift 2
  case "$url" in ssh-ng://*) ssh_env ;; esac
  local sz n have l; l=$R/log/copy-$(logname "$P").log
  sz=$(in_client nix path-info --store local -rS "$P" | tail -n1 | awk '{print $2}')
  n=$(in_client nix path-info --store local -r "$P" | wc -l)
  # honesty check: how much of the closure does the server already have?
  have=$((n - $(in_client nix path-info --store local -r "$P" |
         in_server xargs nix-store --store local --check-validity --print-invalid | wc -l)))
  log "copy $P (closure $n paths, $((sz / 1024)) KiB; server already has $have) -> $url"
  t0=$(date +%s.%N)
  if ! in_client nix copy --store local --to "$url" "$@" "$P" 2>"$l"; then
    tail -n 20 "$l" >&2; die "nix copy failed (full log: $l)"
  fi
  t1=$(date +%s.%N)
  log "copy OK in $(awk "BEGIN{printf \"%.3f\", $t1-$t0}") s ($(grep -c '^copying path' "$l" || true) paths sent)"
  cmd_verify "$P"
}

cmd_valid() { # VAR: is VAR's path valid on the SERVER?
  local P; P=$(resolve_path "$1")
  in_server nix-store --store local --check-validity "$P" >/dev/null 2>&1
}

cmd_sign() { # VAR: sign VAR's closure in the client store with $R/keys/secret
  local P; P=$(resolve_path "$1")
  in_client nix store sign --store local -k "$R/keys/secret" -r "$P"
  log "signed closure of $P with key $(cut -d: -f1 "$R/keys/public")"
}

cmd_del() { # VAR: delete P's closure from the SERVER store (so a copy re-sends it)
  local P; P=$(resolve_path "$1")
  local paths; paths=$(in_server nix-store --store local -qR "$P" 2>/dev/null) || return 0
  # shellcheck disable=SC2086
  in_server nix-store --store local --delete $paths >/dev/null 2>&1 ||
    die "could not delete closure of $P on server"
}

# ---------------------------------------------------------------- relay / sshd
cmd_relay() {
  need socat socat
  if pid_of relay >/dev/null; then log "relay already running"; return; fi
  server_pid >/dev/null
  # -b: socat's default 8 KiB buffer costs 10-20% throughput
  socat -d -d -b "$SOCAT_BUF" "UNIX-LISTEN:$R/run/relay.sock,unlink-early,fork" \
    "UNIX-CONNECT:$R/run/server.sock" </dev/null >"$R/log/relay.log" 2>&1 &
  echo $! >"$R/pids/relay.pid"
  wait_sock "$R/run/relay.sock" relay
  log "relay pid $(cat "$R/pids/relay.pid"): $R/run/relay.sock -> $R/run/server.sock"
}

cmd_sshd() {
  need /usr/sbin/sshd openssh-server; need socat socat
  if pid_of sshd >/dev/null; then log "sshd already running"; return; fi
  server_pid >/dev/null
  if ss -Hltn "sport = :$SSH_PORT" | grep -q .; then die "port $SSH_PORT busy; set SSH_PORT"; fi
  local d=$R/ssh; mkdir -p "$d"; chmod 700 "$d"
  [ -f "$d/hostkey" ] || ssh-keygen -q -t ed25519 -N '' -f "$d/hostkey"
  [ -f "$d/id" ] || ssh-keygen -q -t ed25519 -N '' -f "$d/id"
  cp "$d/id.pub" "$d/authorized_keys"
  echo "[127.0.0.1]:$SSH_PORT $(cat "$d/hostkey.pub")" >"$d/known_hosts"
  # ssh-ng runs "<remote-program> --stdio": hand the stream to the server daemon
  printf '#!/bin/sh\nexec socat -b %s STDIO UNIX-CONNECT:%s\n' "$SOCAT_BUF" "$R/run/server.sock" >"$d/remote-program"
  chmod 755 "$d/remote-program"
  cat >"$d/sshd_config" <<EOF
ListenAddress 127.0.0.1
Port $SSH_PORT
HostKey $d/hostkey
PidFile $d/sshd.pid
AuthorizedKeysFile $d/authorized_keys
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
PrintMotd no
Subsystem sftp internal-sftp
EOF
  mkdir -p /run/sshd   # privilege-separation dir sshd insists on
  /usr/sbin/sshd -D -e -f "$d/sshd_config" </dev/null >"$R/log/sshd.log" 2>&1 &
  echo $! >"$R/pids/sshd.pid"
  local i; for i in $(seq 1 50); do ss -Hltn "sport = :$SSH_PORT" | grep -q . && break; sleep 0.1; done
  ssh_env
  # shellcheck disable=SC2086
  ssh $NIX_SSHOPTS root@127.0.0.1 true </dev/null || { cat "$R/log/sshd.log" >&2; die "ssh login failed"; }
  log "sshd pid $(cat "$R/pids/sshd.pid") on 127.0.0.1:$SSH_PORT; URL: $(resolve_url ssh)"
  echo "export NIX_SSHOPTS='$NIX_SSHOPTS'"
}

# ---------------------------------------------------------------- bench
cmd_bench() { # [VAR] — times the bare `nix copy` (verification runs once, after)
  need hyperfine hyperfine
  local var=${1:-BIG} P; P=$(resolve_path "$var")
  pid_of relay >/dev/null || cmd_relay
  local self c; self=$(readlink -f "$0"); c=$(client_pid)
  local cp="nsenter -t $c -m -- nix copy --store local --to"
  local -a cmds=(-n direct "$cp unix://$R/run/server.sock $P" -n relay "$cp unix://$R/run/relay.sock $P")
  if pid_of sshd >/dev/null; then ssh_env; cmds+=(-n ssh-ng "$cp '$(resolve_url ssh)' $P"); fi
  # --prepare deletes the closure on the server so every run really transfers it
  hyperfine --runs "$BENCH_RUNS" --warmup 1 --style basic \
    --prepare "R=$R $self del $P" \
    --export-markdown "$R/log/bench-$var.md" "${cmds[@]}"
  cat "$R/log/bench-$var.md"
  cmd_verify "$P"
}

main() {
  local c=${1:-}; shift || true
  case "$c" in
    up) cmd_up ;; down) cmd_down ;; purge) cmd_purge ;; env) cmd_env ;;
    mkpaths) cmd_mkpaths "$@" ;; relay) cmd_relay ;; sshd) cmd_sshd ;;
    copy) cmd_copy "$@" ;; sign) cmd_sign "$@" ;; verify) cmd_verify "$@" ;; del) cmd_del "$@" ;;
    bench) cmd_bench "$@" ;;
    valid) cmd_valid "$@" ;; daemon-pids) echo "$(server_pid) $(client_pid)" ;;
    cnix) in_client "$@" ;; snix) in_server "$@" ;;
    *) awk 'NR>1 && /^#/ {print; next} NR>1 {exit}' "$0"; exit 2 ;;
  esac
}
main "$@"
