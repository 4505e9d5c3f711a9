/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * n2p addresses: one shell-safe token, versioned, with a checksum so a typo is an
 * error and never a different peer.
 *
 *   text  = "n2p" VERSION base32(body)          VERSION = "1"; base32 = RFC 4648
 *                                                lower case, no padding
 *   body  = kind u8 || ed25519 key (32) || fields... || checksum (4)
 *   kind  = 0 short (no fields), 1 long
 *   field = tag u8 || len u8 || value[len]
 *             tag 1: IPv4 endpoint  (4 address bytes, port u16 BE)   len 6
 *             tag 2: IPv6 endpoint  (16 address bytes, port u16 BE)  len 18
 *             tag 3: rendezvous hint (HOST:PORT, printable ASCII)    len 1..N2P_ADDR_MAX_HINT
 *           unknown tags are an error (a future version bumps VERSION)
 *   checksum = BLAKE2b-32 of ("n2p-address" || VERSION || body without checksum)
 *
 * A short address is exactly 64 characters.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

enum {
        N2P_ADDR_MAX_ENDPOINTS = 8,
        N2P_ADDR_MAX_HINT = 128,
        N2P_ADDR_MAX_TEXT = 600,   /* longest text accepted by the parser (8 IPv6
                                    * endpoints and the longest hint need 528) */
        N2P_ADDR_SHORT_LEN = 64,
};

typedef struct n2p_addr {
        uint8_t key[32];                 /* Ed25519 public key of the node */
        bool is_long;
        size_t n_endpoints;
        struct sockaddr_storage endpoints[N2P_ADDR_MAX_ENDPOINTS];
        char rendezvous[N2P_ADDR_MAX_HINT + 1];  /* "" when absent */
} n2p_addr;

/*
 * Parses TEXT. On failure returns -EINVAL (malformed), -EPROTONOSUPPORT (unknown
 * version) or -EBADMSG (checksum mismatch), leaves *ret untouched, and writes a
 * one-line reason (no trailing newline, no "error:" prefix) into err, e.g.
 * "checksum mismatch: the address has a typo".
 */
int n2p_addr_parse(const char *text, n2p_addr *ret, char *err, size_t errlen);

/* g_malloc'd text. Short ignores endpoints and hint. */
char *n2p_addr_format_short(const uint8_t key[32]);
char *n2p_addr_format_long(const n2p_addr *a);

/*
 * Endpoints: "1.2.3.4:7787", "[::1]:7787"; with default_port > 0 the port may be
 * omitted. Only numeric addresses (no DNS). Returns -EINVAL with a reason in err.
 */
int n2p_endpoint_parse(const char *text, int default_port, struct sockaddr_storage *ret,
                       char *err, size_t errlen);
/* "1.2.3.4:7787" / "[::1]:7787" into buf (at least 64 bytes); returns buf. */
char *n2p_endpoint_format(const struct sockaddr_storage *sa, char *buf, size_t len);

/* The size sendto()/bind() want for an IPv4 or IPv6 endpoint. */
socklen_t n2p_sockaddr_len(const struct sockaddr_storage *sa);

/* Same address and port; an IPv4 endpoint equals its v4-mapped IPv6 form, which
 * is how a dual-stack socket (systemd's ListenDatagram=PORT) reports it. */
bool n2p_endpoint_equal(const struct sockaddr_storage *a, const struct sockaddr_storage *b);
