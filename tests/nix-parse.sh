#!/usr/bin/env bash
# nix-parse.sh: every .nix file of the project parses (nix-instantiate --parse).
# Files are the ones git tracks plus new ones it does not ignore, or, outside
# a git checkout (a release tarball), every .nix file under the source tree.
#
# Run by `meson test` (N2P_SOURCE set) or by hand: tests/nix-parse.sh
# Prints one PASS/FAIL line per file, then "N passed, M failed"; exit 77
# (skipped) without nix-instantiate.
set -uo pipefail

SRC=$(cd "${N2P_SOURCE:-$(dirname "$0")/..}" && pwd)

if ! command -v nix-instantiate >/dev/null; then
        echo "SKIP: nix-instantiate not installed"
        exit 77
fi

cd "$SRC" || exit 1
if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
        mapfile -t files < <(git ls-files --cached --others --exclude-standard -- '*.nix' | sort -u)
else
        mapfile -t files < <(find . -name '*.nix' -not -path './.git/*' | sed 's|^\./||' | sort)
fi

passed=0 failed=0
for f in "${files[@]}"; do
        [ -e "$f" ] || continue         # deleted in the work tree
        # Parsing needs no store; keep Nix off the real one's state anyway.
        if out=$(timeout 60 nix-instantiate --parse --readonly-mode "$f" 2>&1 >/dev/null); then
                echo "PASS: $f"
                passed=$((passed + 1))
        else
                echo "FAIL: $f"
                sed 's/^/    /' <<<"$out"
                failed=$((failed + 1))
        fi
done

if [ $((passed + failed)) = 0 ]; then
        echo "FAIL: no .nix files found under $SRC"
        exit 1
fi
echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
