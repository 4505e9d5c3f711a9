#!/usr/bin/env bash
# help-vs-man.sh: every long option that a program's --help lists is
# documented in its man page source: each n2pctl command's in
# man/n2pctl.1.scd, n2pd's in man/n2pd.8.scd. `n2pctl server` is n2pd, and
# n2pctl(1) sends its readers to n2pd(8) for the options, so it is checked
# against that page.
#
# Run by `meson test` (N2P_BUILD, N2P_SOURCE set) or by hand:
#   N2P_BUILD=build tests/help-vs-man.sh
# Prints one PASS/FAIL line per program or command, then "N passed, M failed".
set -uo pipefail

SRC=$(cd "${N2P_SOURCE:-$(dirname "$0")/..}" && pwd)
BUILD=$(cd "${N2P_BUILD:-$SRC/build}" && pwd)
CTL=$BUILD/src/n2pctl
N2PD=$BUILD/src/n2pd
RV=$BUILD/src/n2p-rendezvous

passed=0 failed=0
pass() { echo "PASS: $*"; passed=$((passed + 1)); }
fail() { echo "FAIL: $*"; failed=$((failed + 1)); }

for f in "$CTL" "$N2PD" "$RV"; do
        [ -x "$f" ] || { echo "help-vs-man: $f not built"; exit 1; }
done

# The long options listed in a --help text, one per line. Option lines start
# with blanks: "  -h --help ...", "     --socket PATH ...".
help_opts() {
        timeout 10 "$@" --help | grep -oE '^ +(-[a-zA-Z],? +)?--[a-z][a-z0-9-]*' |
                grep -oE -- '--[a-z][a-z0-9-]*' | sort -u
}

# check NAME PAGE COMMAND... : every option of COMMAND's --help is in PAGE,
# as a whole word (--listen must not count for a --listen-foo).
check() {
        local name=$1 page=$2 opts o missing=
        shift 2
        if [ ! -r "$page" ]; then
                fail "$name: no man page source $page"
                return
        fi
        if ! opts=$(help_opts "$@") || [ -z "$opts" ]; then
                fail "$name: '$* --help' failed or lists no options"
                return
        fi
        for o in $opts; do
                grep -qE -e "(^|[^a-z0-9-])$o([^a-z0-9-]|\$)" "$page" || missing+=" $o"
        done
        if [ -z "$missing" ]; then
                pass "$name: all of $(echo $opts) are in ${page#$SRC/}"
        else
                fail "$name: ${page#$SRC/} does not document:$missing"
        fi
}

# Every command that n2pctl --help lists.
cmds=$(timeout 10 "$CTL" --help | sed -n '/^Commands:/,/^$/p' | awk 'NR > 1 && NF { print $1 }')
if [ -n "$cmds" ]; then
        pass "n2pctl --help lists commands: $(echo $cmds)"
else
        fail "n2pctl --help lists no commands"
fi

check "n2pctl" "$SRC/man/n2pctl.1.scd" "$CTL"
for cmd in $cmds; do
        if [ "$cmd" = server ]; then
                check "n2pctl server" "$SRC/man/n2pd.8.scd" "$CTL" server
        else
                check "n2pctl $cmd" "$SRC/man/n2pctl.1.scd" "$CTL" "$cmd"
        fi
done
check "n2pd" "$SRC/man/n2pd.8.scd" "$N2PD"
check "n2p-rendezvous" "$SRC/man/n2p-rendezvous.8.scd" "$RV"

echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
