#!/usr/bin/env bash
# completion.sh: the bash completion offers n2pctl's commands and each
# command's options, and n2p-rendezvous's options, exactly as their --help
# lists them; the zsh one parses and names them all.
# Both with and without bash-completion's helpers (_init_completion), since
# the script must work either way.
#
# Run by `meson test` (N2P_BUILD, N2P_SOURCE set) or by hand:
#   N2P_BUILD=build tests/completion.sh
# Prints one PASS/FAIL line per check, then "N passed, M failed".
set -uo pipefail

SRC=$(cd "${N2P_SOURCE:-$(dirname "$0")/..}" && pwd)
BASH_COMP=$SRC/completions/n2pctl.bash
ZSH_COMP=$SRC/completions/_n2pctl
BIN=
[ -n "${N2P_BUILD:-}" ] && [ -x "$N2P_BUILD/src/n2pctl" ] && BIN=$N2P_BUILD/src/n2pctl
RV_BIN=
[ -n "${N2P_BUILD:-}" ] && [ -x "$N2P_BUILD/src/n2p-rendezvous" ] && RV_BIN=$N2P_BUILD/src/n2p-rendezvous
HELPERS=/usr/share/bash-completion/bash_completion

T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT

passed=0 failed=0
pass() { echo "PASS: $*"; passed=$((passed + 1)); }
fail() { echo "FAIL: $*"; failed=$((failed + 1)); }

# complete MODE WORD... : what the completion offers for the command line
# WORD... (the last word is the one being completed), sorted, one per line.
# MODE is "plain" (only our script) or "helpers" (bash-completion loaded first).
complete() {
        local mode=$1
        shift
        timeout 20 bash --norc --noprofile -c '
                mode=$1 comp=$2 helpers=$3
                shift 3
                if [ "$mode" = helpers ]; then
                        . "$helpers" || exit 3
                fi
                . "$comp" || exit 3
                COMP_WORDS=("$@")
                COMP_CWORD=$(($# - 1))
                COMP_LINE="$*"
                COMP_POINT=${#COMP_LINE}
                COMPREPLY=()
                _n2pctl "${COMP_WORDS[0]}" "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD - 1]}"
                printf "%s\n" "${COMPREPLY[@]}"
        ' complete "$mode" "$BASH_COMP" "$HELPERS" "$@" | sed '/^$/d' | sort
}

# expect MODE "EXPECTED WORDS" WORD... : the offer is exactly EXPECTED.
expect() {
        local mode=$1 want got
        want=$(tr ' ' '\n' <<<"$2" | sed '/^$/d' | sort)
        shift 2
        got=$(complete "$mode" "$@")
        if [ "$got" = "$want" ]; then
                pass "[$mode] '$*' offers: $(echo $want)"
        else
                fail "[$mode] '$*' offers: $(echo $got); expected: $(echo $want)"
        fi
}

# The options a --help text lists: "  -h --help ...", "     --socket PATH ...".
help_opts() {
        "$@" --help 2>/dev/null | grep -oE '^ +(-[a-zA-Z] +)?--[a-z][a-z0-9-]*' |
                grep -oE -- '-{1,2}[a-zA-Z][a-z0-9-]*' | sort -u | tr '\n' ' '
}

bash -n "$BASH_COMP" && pass "bash -n $BASH_COMP" || fail "bash -n $BASH_COMP"

modes=(plain)
if [ -r "$HELPERS" ]; then
        modes+=(helpers)
else
        echo "SKIP: bash-completion not installed ($HELPERS): only the plain mode is checked"
fi

server='-h --help --version -v --verbose --secret-key-file --one-time-key --timeout --listen --nix-daemon-socket --stun --turn --turn-credentials-file --rendezvous --authorized-keys --max-sessions --handshake-rate'
connect='-h --help --version -v --verbose --socket --timeout --secret-key-file --one-time-key --stun --turn --turn-credentials-file --rendezvous'
address='-h --help --secret-key-file --listen --qr'
keygen='-h --help --secret-key-file'
status='-h --help'
rendezvous='-h --help --version -v --verbose --listen --turn-secret-file --turn-lifetime'
long() { tr ' ' '\n' <<<"$1" | grep -e '^--' | tr '\n' ' '; }

mkdir -p "$T/keys"
: >"$T/keys/alice.key"
: >"$T/keys/bob.key"

for m in "${modes[@]}"; do
        expect "$m" 'server connect address keygen key status help' n2pctl ''
        expect "$m" 'connect'                           n2pctl con
        expect "$m" '--help --version'                  n2pctl --
        expect "$m" "$(long "$connect")" n2pctl connect --
        expect "$m" "$connect"                          n2pctl connect n2p1abc --timeout 60 -
        expect "$m" '--one-time-key'                    n2pctl connect --o
        expect "$m" "$(long "$server")" n2pctl server --
        expect "$m" "$(long "$address")" n2pctl address --
        expect "$m" "$(long "$keygen")" n2pctl keygen --
        expect "$m" "$(long "$keygen")" n2pctl key --
        expect "$m" "$(long "$status")" n2pctl status --
        expect "$m" "$T/keys/alice.key"                 n2pctl status "$T/keys/a"
        expect "$m" ''                                  n2pctl connect --timeout ''
        expect "$m" "$T/keys/alice.key"                 n2pctl connect --secret-key-file "$T/keys/a"
        expect "$m" "$(long "$server")" n2pd --
        expect "$m" 'server client'                     n2p ''
        expect "$m" "$(long "$connect")" n2p client --
        expect "$m" "$(long "$rendezvous")" n2p-rendezvous --
        expect "$m" "$rendezvous"                       n2p-rendezvous --listen 0.0.0.0:7788 -
        expect "$m" '--turn-secret-file --turn-lifetime' n2p-rendezvous --turn
        expect "$m" "$T/keys/alice.key"                 n2p-rendezvous --turn-secret-file "$T/keys/a"
        expect "$m" ''                                  n2p-rendezvous --turn-lifetime ''
        expect "$m" ''                                  n2p-rendezvous ''
done
# Only bash-completion joins "--opt=value" into one word.
if [ -r "$HELPERS" ]; then
        expect helpers "$T/keys/bob.key" n2pctl keygen "--secret-key-file=$T/keys/b"
fi

# The lists above, and so the script, must be what the programs accept.
if [ -n "$BIN" ]; then
        cmds=$("$BIN" --help | sed -n '/^Commands:/,/^$/p' | awk 'NR > 1 && NF { print $1 }')
        for cmd in $cmds; do
                want=$(help_opts "$BIN" "$cmd")
                got=$(complete plain n2pctl "$cmd" - | tr '\n' ' ')
                if [ "$got" = "$want" ]; then
                        pass "completion of 'n2pctl $cmd' matches its --help: $want"
                else
                        fail "completion of 'n2pctl $cmd' offers '$got' but --help lists '$want'"
                fi
        done
        want=$(help_opts "$BIN")
        got=$(complete plain n2pctl - | tr '\n' ' ')
        [ "$got" = "$want" ] && pass "completion of 'n2pctl -' matches n2pctl --help" ||
                fail "completion of 'n2pctl -' offers '$got' but n2pctl --help lists '$want'"
else
        echo "SKIP: no n2pctl in \$N2P_BUILD/src: completion not compared with --help"
fi
if [ -n "$RV_BIN" ]; then
        want=$(help_opts "$RV_BIN")
        got=$(complete plain n2p-rendezvous - | tr '\n' ' ')
        [ "$got" = "$want" ] && pass "completion of 'n2p-rendezvous -' matches its --help: $want" ||
                fail "completion of 'n2p-rendezvous -' offers '$got' but its --help lists '$want'"
else
        echo "SKIP: no n2p-rendezvous in \$N2P_BUILD/src: completion not compared with --help"
fi

if command -v zsh >/dev/null; then
        if zsh -n "$ZSH_COMP"; then pass "zsh -n $ZSH_COMP"; else fail "zsh -n $ZSH_COMP"; fi
        # Every option the bash script offers appears in the zsh script too.
        missing=
        for o in $server $connect $address $keygen $status $rendezvous; do
                grep -qe "$o" "$ZSH_COMP" || missing+=" $o"
        done
        [ -z "$missing" ] && pass "zsh completion names every option" ||
                fail "zsh completion lacks:$missing"
else
        echo "SKIP: zsh not installed: $ZSH_COMP not checked"
fi

echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
