/* SPDX-License-Identifier: MIT */
#pragma once

/* Helpers shared by the programs (these may log; the library modules don't). */

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

#include "key.h"

/* The subcommands, each in its own file. */
int n2p_server_main(int argc, char **argv);
int n2p_connect_main(int argc, char **argv);
int n2p_address_main(int argc, char **argv);
int n2p_keygen_main(int argc, char **argv);
int n2p_key_main(int argc, char **argv);
int n2p_worker_main(int argc, char **argv);

extern const char *n2p_program;   /* "n2pctl", "n2pd" or "n2p": for messages */

/* Loads (creating it if missing) or makes a one-time identity; logs a one-line
 * error naming the file and the problem. */
int n2p_identity(const char *path, bool one_time, n2p_key *ret);

/* The UDP endpoints a long address should carry for a socket bound to `bound`:
 * that address itself, or, for a wildcard, every up non-loopback interface
 * address of the family (IPv4 first). */
int n2p_local_endpoints(const struct sockaddr_storage *bound, struct sockaddr_storage *out,
                        size_t max, size_t *ret_n);

/* Parses a non-negative number of seconds for --timeout. */
int n2p_parse_seconds(const char *s, unsigned *ret);

/* "HOST:PORT" for --stun into host (numeric) and port. */
int n2p_parse_stun(const char *s, char **ret_host, unsigned *ret_port);

/* TURN server settings from "turn:USER:PASS@HOST:PORT" (the "turn:" is optional,
 * HOST numeric, PORT default 3478), given on the command line or as the first
 * non-comment line of a file (so the password stays out of `ps`). */
typedef struct n2p_turn {
        char *host;
        unsigned port;
        char *user;
        char *pass;
} n2p_turn;
int n2p_parse_turn(const char *s, n2p_turn *ret);
int n2p_read_turn_file(const char *path, n2p_turn *ret);
void n2p_turn_clear(n2p_turn *t);

/* Logs both addresses: stderr lines "short address: …" / "long address: …",
 * and journal fields N2P_SHORT_ADDRESS / N2P_LONG_ADDRESS. */
void n2p_log_addresses(const char *short_addr, const char *long_addr);

/* This program's own executable, to start workers (the same version, always). */
const char *n2p_self_exe(void);
