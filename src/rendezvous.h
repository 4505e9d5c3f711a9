/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The rendezvous protocol: how a client reaches a node that is behind a NAT when
 * it only knows the node's key. The service relays the node's own signalling
 * packets (signalling.h) and nothing else: it never sees ICE data or keys in
 * clear, and cannot forge an answer (RESP is authenticated by Noise).
 *
 * UDP, default port 7788. All integers big-endian. Types start at 0x10 so the
 * node's signalling socket can tell them from INIT/RESP/REJECT (1..3).
 *
 *   REGISTER   node -> rv     [0x10][1][0 0][node Ed25519 key 32][time u64 ms][sig 64]
 *                             sig = Ed25519 over "n2p-rv-register-v1" || key || time
 *                             The node sends it from its signalling socket every
 *                             N2P_RV_REFRESH_S, which also keeps its NAT mapping open.
 *   REGISTERED rv -> node     [0x11][status][0 0][lifetime u32 s][observed endpoint 19]
 *                             [turn_user_len u8][turn_user][turn_pass_len u8][turn_pass]
 *                             observed endpoint = family u8 (4|6), address 16 (v4 in the
 *                             first 4), port u16: the node's address as the service saw it.
 *                             TURN credentials are empty unless the service has coturn's
 *                             shared secret (use-auth-secret): then they are time-limited.
 *   OFFER      client -> rv   [0x12][0 0 0][target Ed25519 key 32][INIT packet]
 *   FORWARD    rv -> node     [0x13][0 0 0][cookie u32][client endpoint 19][INIT packet]
 *   ANSWER     node -> rv     [0x14][0 0 0][cookie u32][RESP or REJECT packet]
 *   DELIVER    rv -> client   [0x15][0 0 0][RESP or REJECT packet]
 *   ERROR      rv -> client   [0x16][code][0 0][target Ed25519 key 32]
 *   CREDS_REQ  client -> rv   [0x17][0 ...]  zero-padded to the size of the largest CREDS,
 *                             so the answer is never larger than the request
 *   CREDS      rv -> client   [0x18][status][0 0][lifetime u32][turn_user_len u8][turn_user]
 *                             [turn_pass_len u8][turn_pass]
 *
 * A registration is accepted only if its signature verifies, its time is within
 * N2P_RV_CLOCK_SKEW_S of the service's clock and newer than the key's previous
 * registration (so a replayed one is refused). It expires after N2P_RV_LIFETIME_S
 * without a refresh. Everything a caller controls is bounded (see the enum).
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "wire.h"

enum {
        N2P_RV_DEFAULT_PORT = 7788,

        N2P_RV_REGISTER = 0x10,
        N2P_RV_REGISTERED = 0x11,
        N2P_RV_OFFER = 0x12,
        N2P_RV_FORWARD = 0x13,
        N2P_RV_ANSWER = 0x14,
        N2P_RV_DELIVER = 0x15,
        N2P_RV_ERROR = 0x16,
        N2P_RV_CREDS_REQ = 0x17,
        N2P_RV_CREDS = 0x18,

        N2P_RV_REGISTER_SIZE = 4 + 32 + 8 + 64,
        N2P_RV_ENDPOINT_SIZE = 19,
        N2P_RV_MAX_CRED = 128,                    /* TURN user name / password length */
        N2P_RV_MAX_PACKET = N2P_PKT_MAX + 64,

        /* ERROR codes and REGISTERED/CREDS status */
        N2P_RV_OK = 0,
        N2P_RV_ERR_UNKNOWN_KEY = 1,               /* no node registered under that key */
        N2P_RV_ERR_RATE_LIMITED = 2,
        N2P_RV_ERR_FULL = 3,                      /* a table is at its limit */
        N2P_RV_ERR_BAD_SIGNATURE = 4,
        N2P_RV_ERR_STALE = 5,                     /* time out of range, or replayed */
        N2P_RV_ERR_NO_TURN = 6,                   /* the service has no TURN secret */

        /* Limits */
        N2P_RV_REFRESH_S = 20,                    /* nodes re-register this often */
        N2P_RV_LIFETIME_S = 75,                   /* registration expiry without refresh */
        N2P_RV_CLOCK_SKEW_S = 600,
        N2P_RV_MAX_REGISTRATIONS = 4096,
        N2P_RV_MAX_PENDING = 1024,                /* offers waiting for an answer */
        N2P_RV_PENDING_TIMEOUT_S = 10,
        N2P_RV_SOURCE_RATE = 20,                  /* messages per second per source address */
        N2P_RV_SOURCE_BURST = 40,
        N2P_RV_TARGET_RATE = 10,                  /* offers per second per target key */
        N2P_RV_MAX_SOURCES = 4096,                /* rate-limiter entries */
        N2P_RV_TURN_LIFETIME_S = 3600,
};

typedef struct n2p_rv_creds {
        char user[N2P_RV_MAX_CRED + 1];           /* "" when none */
        char pass[N2P_RV_MAX_CRED + 1];
        uint32_t lifetime;
} n2p_rv_creds;

/* Pure codec (fuzzed). Builders return the length written or a negative errno
 * (-ENOBUFS); parsers return 0 or -EINVAL and leave their outputs untouched. */

int n2p_rv_make_register(const uint8_t ed_secret[64], const uint8_t ed_public[32], uint64_t time_ms,
                         uint8_t *out, size_t cap);
/* Checks shape and signature (-EBADMSG for a bad signature). */
int n2p_rv_parse_register(const uint8_t *pkt, size_t len, uint8_t ret_key[32], uint64_t *ret_time_ms);

int n2p_rv_make_registered(uint8_t status, uint32_t lifetime, const struct sockaddr_storage *observed,
                           const n2p_rv_creds *creds, uint8_t *out, size_t cap);
int n2p_rv_parse_registered(const uint8_t *pkt, size_t len, uint8_t *ret_status, uint32_t *ret_lifetime,
                            struct sockaddr_storage *ret_observed, n2p_rv_creds *ret_creds);

int n2p_rv_make_offer(const uint8_t target[32], const uint8_t *init, size_t init_len, uint8_t *out, size_t cap);
int n2p_rv_parse_offer(const uint8_t *pkt, size_t len, uint8_t ret_target[32],
                       const uint8_t **ret_init, size_t *ret_init_len);

int n2p_rv_make_forward(uint32_t cookie, const struct sockaddr_storage *client, const uint8_t *init,
                        size_t init_len, uint8_t *out, size_t cap);
int n2p_rv_parse_forward(const uint8_t *pkt, size_t len, uint32_t *ret_cookie,
                         struct sockaddr_storage *ret_client, const uint8_t **ret_init, size_t *ret_init_len);

int n2p_rv_make_answer(uint32_t cookie, const uint8_t *resp, size_t resp_len, uint8_t *out, size_t cap);
int n2p_rv_parse_answer(const uint8_t *pkt, size_t len, uint32_t *ret_cookie,
                        const uint8_t **ret_resp, size_t *ret_resp_len);

int n2p_rv_make_deliver(const uint8_t *resp, size_t resp_len, uint8_t *out, size_t cap);
int n2p_rv_parse_deliver(const uint8_t *pkt, size_t len, const uint8_t **ret_resp, size_t *ret_resp_len);

int n2p_rv_make_error(uint8_t code, const uint8_t target[32], uint8_t *out, size_t cap);
int n2p_rv_parse_error(const uint8_t *pkt, size_t len, uint8_t *ret_code, uint8_t ret_target[32]);

int n2p_rv_make_creds_req(uint8_t *out, size_t cap);
int n2p_rv_make_creds(uint8_t status, const n2p_rv_creds *creds, uint8_t *out, size_t cap);
int n2p_rv_parse_creds(const uint8_t *pkt, size_t len, uint8_t *ret_status, n2p_rv_creds *ret_creds);

/* coturn's REST API credentials (use-auth-secret): user = "<expiry>:<label>",
 * pass = base64(HMAC-SHA1(secret, user)). */
int n2p_rv_turn_credentials(const char *secret, const char *label, uint64_t now_s, uint32_t lifetime,
                            n2p_rv_creds *ret);

/* "no node is registered under that key", ... */
const char *n2p_rv_strerror(uint8_t code);
