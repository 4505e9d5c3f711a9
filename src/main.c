/* SPDX-License-Identifier: MIT */
/*
 * One binary, several names: `n2pctl SUBCOMMAND`, `n2pd` (the server) and `n2p`
 * (upstream n2p's names: `n2p server`, `n2p client ADDR`).
 */
#include <sodium.h>
#include <stdio.h>
#include <string.h>

#include "common.h"
#include "control.h"
#include "log.h"

static const struct {
        const char *name;
        int (*fn)(int argc, char **argv);
        const char *description;
} subcommands[] = {
        { "server",  n2p_server_main,  "share this node's nix-daemon with peers (foreground)" },
        { "connect", n2p_connect_main, "open a local store socket to a peer's nix-daemon" },
        { "address", n2p_address_main, "print this node's short and long addresses" },
        { "keygen",  n2p_keygen_main,  "create a new secret key file" },
        { "key",     n2p_key_main,     "print this node's client key (for a peer's --authorized-keys)" },
        { "status",  n2p_status_main,  "show the sessions of the running server and clients" },
};

static void help(FILE *f) {
        fprintf(f, "Usage: n2pctl COMMAND [OPTIONS...]\n\n"
                   "Share Nix daemons between peers, end-to-end encrypted, through NATs.\n\n"
                   "Commands:\n");
        for (size_t i = 0; i < sizeof subcommands / sizeof subcommands[0]; i++)
                fprintf(f, "  %-9s %s\n", subcommands[i].name, subcommands[i].description);
        fprintf(f, "\nAliases: n2pd = n2pctl server; n2p server = n2pctl server;\n"
                   "         n2p client ADDR = n2pctl connect ADDR\n\n"
                   "  -h --help     show this help\n"
                   "     --version  show the version\n\n"
                   "`n2pctl COMMAND --help` describes each command. See n2pctl(1), n2p(7).\n");
}

int main(int argc, char **argv) {
        const char *base = strrchr(argv[0], '/');
        base = base ? base + 1 : argv[0];

        if (sodium_init() < 0) {
                fprintf(stderr, "%s: cannot initialise libsodium\n", base);
                return 1;
        }

        /* The server's per-session worker: the same binary, started by the server. */
        if (argc >= 2 && strcmp(argv[1], "__worker") == 0) {
                n2p_program = "n2pd-worker";
                n2p_log_init(n2p_program);
                return n2p_worker_main(argc - 1, argv + 1) < 0 ? 1 : 0;
        }

        if (strcmp(base, "n2pd") == 0) {
                n2p_program = "n2pd";
                n2p_log_init(n2p_program);
                return n2p_server_main(argc, argv) < 0 ? 1 : 0;
        }

        if (strcmp(base, "n2p") == 0) {
                n2p_program = "n2p";
                n2p_log_init(n2p_program);
                if (argc >= 2 && strcmp(argv[1], "server") == 0)
                        return n2p_server_main(argc - 1, argv + 1) < 0 ? 1 : 0;
                if (argc >= 2 && strcmp(argv[1], "client") == 0)
                        return n2p_connect_main(argc - 1, argv + 1) < 0 ? 1 : 0;
                if (argc >= 2 && (strcmp(argv[1], "--version") == 0)) {
                        puts("n2p " N2P_VERSION);
                        return 0;
                }
                fprintf(stderr, "Usage: n2p server [OPTIONS...]\n"
                                "       n2p client ADDR [OPTIONS...]\n"
                                "Upstream n2p's command names; see n2pctl --help.\n");
                return argc >= 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) ? 0 : 2;
        }

        n2p_log_init(n2p_program);
        if (argc < 2) {
                help(stderr);
                return 2;
        }
        if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "help") == 0) {
                help(stdout);
                return 0;
        }
        if (strcmp(argv[1], "--version") == 0) {
                puts("n2pctl " N2P_VERSION);
                return 0;
        }
        for (size_t i = 0; i < sizeof subcommands / sizeof subcommands[0]; i++)
                if (strcmp(argv[1], subcommands[i].name) == 0)
                        return subcommands[i].fn(argc - 1, argv + 1) < 0 ? 1 : 0;

        fprintf(stderr, "n2pctl: unknown command '%s' (see n2pctl --help)\n", argv[1]);
        return 2;
}
