# SPDX-License-Identifier: MIT
# bash completion for n2pctl and its other names, n2pd and n2p, and for
# n2p-rendezvous  -*- shell-script -*-

# The options of each command, as its --help lists them (tests/completion.sh
# checks that they agree).
_n2pctl_opts() {
        case $1 in
        server)  echo '-h --help --version -v --verbose --secret-key-file --one-time-key
                       --timeout --listen --nix-daemon-socket --stun --turn
                       --turn-credentials-file --rendezvous --authorized-keys
                       --max-sessions --handshake-rate' ;;
        connect) echo '-h --help --version -v --verbose --socket --timeout --secret-key-file
                       --one-time-key --stun --turn --turn-credentials-file --rendezvous' ;;
        address) echo '-h --help --secret-key-file --listen --qr' ;;
        keygen|key) echo '-h --help --secret-key-file' ;;
        status)  echo '-h --help' ;;
        rendezvous) echo '-h --help --version -v --verbose --listen --turn-secret-file
                       --turn-lifetime' ;;
        *)       echo '-h --help --version' ;;
        esac
}

_n2pctl() {
        local cur prev words cword split=false
        if declare -F _init_completion >/dev/null; then
                _init_completion -s || return
        else
                # Without bash-completion: COMP_WORDS split at '=' as well.
                words=("${COMP_WORDS[@]}")
                cword=$COMP_CWORD
                cur=${words[cword]}
                prev=${words[cword - 1]}
        fi

        # Options that take an argument, and what kind.
        local files='--secret-key-file --socket --nix-daemon-socket --turn-credentials-file --authorized-keys'
        files+=' --turn-secret-file'
        local values='--timeout --listen --stun --turn --rendezvous --max-sessions --handshake-rate'
        values+=' --turn-lifetime'
        if [[ $cur == = ]]; then
                cur=
        elif [[ $prev == = && $cword -ge 2 ]]; then
                prev=${words[cword - 2]}
        fi
        if [[ " $files " == *" $prev "* ]]; then
                if declare -F _filedir >/dev/null; then
                        _filedir
                else
                        mapfile -t COMPREPLY < <(compgen -f -- "$cur")
                fi
                return
        fi
        [[ " $values " == *" $prev "* ]] && return
        $split && return

        # Find the command: the first word that is neither an option nor an
        # option's argument. `n2pd` is always the server; `n2p` has upstream's
        # two names; n2p-rendezvous is a program of its own, without commands.
        local prog=${words[0]##*/} cmd= i w
        local commands='server connect address keygen key status help'
        [[ $prog == n2pd ]] && cmd=server
        [[ $prog == n2p-rendezvous ]] && cmd=rendezvous
        [[ $prog == n2p ]] && commands='server client'
        for ((i = 1; i < cword; i++)); do
                w=${words[i]}
                if [[ " $files $values " == *" $w "* ]]; then
                        # its argument, after a separate '=' when split there
                        [[ ${words[i + 1]} == = ]] && ((i++))
                        ((i++))
                        continue
                fi
                [[ $w == -* ]] && continue
                if [[ -z $cmd ]]; then
                        cmd=$w
                        [[ $prog == n2p && $cmd == client ]] && cmd=connect
                        continue
                fi
        done

        if [[ -z $cmd ]]; then
                if [[ $cur == -* ]]; then
                        mapfile -t COMPREPLY < <(compgen -W "$(_n2pctl_opts '')" -- "$cur")
                else
                        mapfile -t COMPREPLY < <(compgen -W "$commands" -- "$cur")
                fi
                return
        fi
        if [[ $cur == -* ]]; then
                mapfile -t COMPREPLY < <(compgen -W "$(_n2pctl_opts "$cmd")" -- "$cur")
        elif [[ $cmd == status ]]; then
                # its arguments are control sockets
                if declare -F _filedir >/dev/null; then
                        _filedir
                else
                        mapfile -t COMPREPLY < <(compgen -f -- "$cur")
                fi
        fi
}
complete -F _n2pctl n2pctl n2pd n2p n2p-rendezvous
