/* SPDX-License-Identifier: MIT */
/*
 * The rendezvous datagrams of rendezvous.h. Pure functions over buffers: every
 * length is checked before it is read, reserved bytes must be zero, and each
 * endpoint and credential has exactly one valid encoding, so that a parse
 * followed by a build gives back the same bytes.
 */
#include <errno.h>
#include <glib.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>

#include "rendezvous.h"
#include "util.h"

#define REGISTER_CONTEXT "n2p-rv-register-v1"

enum {
        HEADER = 4,                       /* type and three status/reserved bytes */
        REGISTER_VERSION = 1,
        CONTEXT_LEN = sizeof REGISTER_CONTEXT - 1,
        SIGNED_LEN = CONTEXT_LEN + 32 + 8,
        REGISTERED_MIN = HEADER + 4 + N2P_RV_ENDPOINT_SIZE + 1 + 1,
        CREDS_MIN = HEADER + 4 + 1 + 1,
        /* A CREDS_REQ is padded to the largest CREDS answer, so the service never
         * sends more bytes than it received (no amplification from a spoofed source). */
        CREDS_REQ_SIZE = CREDS_MIN + 2 * N2P_RV_MAX_CRED,
        OFFER_HEADER = HEADER + 32,
        FORWARD_HEADER = HEADER + 4 + N2P_RV_ENDPOINT_SIZE,
        ANSWER_HEADER = HEADER + 4,
        DELIVER_HEADER = HEADER,
        ERROR_SIZE = HEADER + 32,
};

static bool zeros(const uint8_t *p, size_t n) {
        uint8_t acc = 0;
        for (size_t i = 0; i < n; i++)
                acc |= p[i];
        return acc == 0;
}

static void header(uint8_t *out, uint8_t type, uint8_t second) {
        out[0] = type;
        out[1] = second;
        out[2] = 0;
        out[3] = 0;
}

/* The type and the three reserved bytes of messages that have no status byte. */
static bool plain_header(const uint8_t *pkt, size_t len, size_t min, uint8_t type) {
        return pkt && len >= min && pkt[0] == type && zeros(pkt + 1, 3);
}

static bool cred_ok(const char *s, size_t n) {
        if (n > N2P_RV_MAX_CRED)
                return false;
        for (size_t i = 0; i < n; i++)
                if (s[i] < 0x20 || s[i] > 0x7e)
                        return false;
        return true;
}

static bool embedded_ok(const uint8_t *p, size_t n, bool want_init) {
        if (!p || n < 1 || n > N2P_PKT_MAX)
                return false;
        return want_init ? p[0] == N2P_PKT_INIT : (p[0] == N2P_PKT_RESP || p[0] == N2P_PKT_REJECT);
}

/* A v4-mapped IPv6 source (a dual-stack socket) is reported as the IPv4 endpoint it is. */
static int put_endpoint(uint8_t out[N2P_RV_ENDPOINT_SIZE], const struct sockaddr_storage *ss) {
        memset(out, 0, N2P_RV_ENDPOINT_SIZE);
        if (!ss)
                return -EINVAL;
        if (ss->ss_family == AF_INET) {
                const struct sockaddr_in *sin = (const struct sockaddr_in *) ss;
                if (sin->sin_port == 0)
                        return -EINVAL;
                out[0] = 4;
                memcpy(out + 1, &sin->sin_addr, 4);
                memcpy(out + 17, &sin->sin_port, 2);
                return 0;
        }
        if (ss->ss_family == AF_INET6) {
                const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *) ss;
                if (sin6->sin6_port == 0)
                        return -EINVAL;
                if (IN6_IS_ADDR_V4MAPPED(&sin6->sin6_addr)) {
                        out[0] = 4;
                        memcpy(out + 1, sin6->sin6_addr.s6_addr + 12, 4);
                } else {
                        out[0] = 6;
                        memcpy(out + 1, &sin6->sin6_addr, 16);
                }
                memcpy(out + 17, &sin6->sin6_port, 2);
                return 0;
        }
        return -EINVAL;
}

static int get_endpoint(const uint8_t in[N2P_RV_ENDPOINT_SIZE], struct sockaddr_storage *ret) {
        struct sockaddr_storage ss = {};

        if (n2p_get_be16(in + 17) == 0)
                return -EINVAL;
        if (in[0] == 4) {
                struct sockaddr_in *sin = (struct sockaddr_in *) &ss;
                if (!zeros(in + 5, 12))
                        return -EINVAL;
                sin->sin_family = AF_INET;
                memcpy(&sin->sin_addr, in + 1, 4);
                memcpy(&sin->sin_port, in + 17, 2);
        } else if (in[0] == 6) {
                struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *) &ss;
                sin6->sin6_family = AF_INET6;
                memcpy(&sin6->sin6_addr, in + 1, 16);
                memcpy(&sin6->sin6_port, in + 17, 2);
                /* Family 4 is the one encoding of an IPv4 endpoint. */
                if (IN6_IS_ADDR_V4MAPPED(&sin6->sin6_addr))
                        return -EINVAL;
        } else
                return -EINVAL;
        *ret = ss;
        return 0;
}

/* [len u8][user][len u8][pass], as in REGISTERED and CREDS. */
static int put_creds(const n2p_rv_creds *creds, uint8_t *out, size_t cap, size_t *ret_len) {
        size_t ul = creds ? strnlen(creds->user, sizeof creds->user) : 0;
        size_t pl = creds ? strnlen(creds->pass, sizeof creds->pass) : 0;

        if (creds && (!cred_ok(creds->user, ul) || !cred_ok(creds->pass, pl)))
                return -EINVAL;
        if (cap < 2 + ul + pl)
                return -ENOBUFS;
        out[0] = (uint8_t) ul;
        if (ul > 0)
                memcpy(out + 1, creds->user, ul);
        out[1 + ul] = (uint8_t) pl;
        if (pl > 0)
                memcpy(out + 2 + ul, creds->pass, pl);
        *ret_len = 2 + ul + pl;
        return 0;
}

/* The credentials must end the packet exactly. */
static int get_creds(const uint8_t *p, size_t n, n2p_rv_creds *ret) {
        n2p_rv_creds c = {};
        size_t ul, pl;

        if (n < 1)
                return -EINVAL;
        ul = p[0];
        if (n < 1 + ul + 1)
                return -EINVAL;
        pl = p[1 + ul];
        if (n != 2 + ul + pl)
                return -EINVAL;
        if (!cred_ok((const char *) p + 1, ul) || !cred_ok((const char *) p + 2 + ul, pl))
                return -EINVAL;
        memcpy(c.user, p + 1, ul);
        memcpy(c.pass, p + 2 + ul, pl);
        *ret = c;
        return 0;
}

static void register_message(uint8_t out[SIGNED_LEN], const uint8_t key[32], const uint8_t time_be[8]) {
        memcpy(out, REGISTER_CONTEXT, CONTEXT_LEN);
        memcpy(out + CONTEXT_LEN, key, 32);
        memcpy(out + CONTEXT_LEN + 32, time_be, 8);
}

int n2p_rv_make_register(const uint8_t ed_secret[64], const uint8_t ed_public[32], uint64_t time_ms,
                         uint8_t *out, size_t cap) {
        uint8_t msg[SIGNED_LEN];

        if (!ed_secret || !ed_public || !out)
                return -EINVAL;
        if (cap < N2P_RV_REGISTER_SIZE)
                return -ENOBUFS;
        header(out, N2P_RV_REGISTER, REGISTER_VERSION);
        memcpy(out + HEADER, ed_public, 32);
        n2p_put_be64(out + HEADER + 32, time_ms);
        register_message(msg, ed_public, out + HEADER + 32);
        if (crypto_sign_detached(out + HEADER + 40, NULL, msg, sizeof msg, ed_secret) < 0)
                return -EINVAL;
        return N2P_RV_REGISTER_SIZE;
}

int n2p_rv_parse_register(const uint8_t *pkt, size_t len, uint8_t ret_key[32], uint64_t *ret_time_ms) {
        uint8_t msg[SIGNED_LEN];

        if (!pkt || len != N2P_RV_REGISTER_SIZE || pkt[0] != N2P_RV_REGISTER || pkt[1] != REGISTER_VERSION ||
            !zeros(pkt + 2, 2))
                return -EINVAL;
        register_message(msg, pkt + HEADER, pkt + HEADER + 32);
        if (crypto_sign_verify_detached(pkt + HEADER + 40, msg, sizeof msg, pkt + HEADER) != 0)
                return -EBADMSG;
        memcpy(ret_key, pkt + HEADER, 32);
        *ret_time_ms = n2p_get_be64(pkt + HEADER + 32);
        return 0;
}

int n2p_rv_make_registered(uint8_t status, uint32_t lifetime, const struct sockaddr_storage *observed,
                           const n2p_rv_creds *creds, uint8_t *out, size_t cap) {
        size_t n;
        int r;

        if (!out)
                return -EINVAL;
        if (cap < REGISTERED_MIN)
                return -ENOBUFS;
        header(out, N2P_RV_REGISTERED, status);
        n2p_put_be32(out + HEADER, lifetime);
        r = put_endpoint(out + HEADER + 4, observed);
        if (r < 0)
                return r;
        r = put_creds(creds, out + REGISTERED_MIN - 2, cap - (REGISTERED_MIN - 2), &n);
        if (r < 0)
                return r;
        return (int) (REGISTERED_MIN - 2 + n);
}

/* The TURN credentials' expiry is in their user name; creds->lifetime is 0 here
 * because REGISTERED's lifetime is the registration's. */
int n2p_rv_parse_registered(const uint8_t *pkt, size_t len, uint8_t *ret_status, uint32_t *ret_lifetime,
                            struct sockaddr_storage *ret_observed, n2p_rv_creds *ret_creds) {
        struct sockaddr_storage ss;
        n2p_rv_creds c;

        if (!pkt || len < REGISTERED_MIN || pkt[0] != N2P_RV_REGISTERED || !zeros(pkt + 2, 2))
                return -EINVAL;
        if (get_endpoint(pkt + HEADER + 4, &ss) < 0)
                return -EINVAL;
        if (get_creds(pkt + REGISTERED_MIN - 2, len - (REGISTERED_MIN - 2), &c) < 0)
                return -EINVAL;
        *ret_status = pkt[1];
        *ret_lifetime = n2p_get_be32(pkt + HEADER);
        *ret_observed = ss;
        *ret_creds = c;
        return 0;
}

int n2p_rv_make_offer(const uint8_t target[32], const uint8_t *init, size_t init_len, uint8_t *out, size_t cap) {
        if (!target || !out || !embedded_ok(init, init_len, true))
                return -EINVAL;
        if (cap < OFFER_HEADER + init_len)
                return -ENOBUFS;
        header(out, N2P_RV_OFFER, 0);
        memcpy(out + HEADER, target, 32);
        memcpy(out + OFFER_HEADER, init, init_len);
        return (int) (OFFER_HEADER + init_len);
}

int n2p_rv_parse_offer(const uint8_t *pkt, size_t len, uint8_t ret_target[32],
                       const uint8_t **ret_init, size_t *ret_init_len) {
        if (!plain_header(pkt, len, OFFER_HEADER, N2P_RV_OFFER) ||
            !embedded_ok(pkt + OFFER_HEADER, len - OFFER_HEADER, true))
                return -EINVAL;
        memcpy(ret_target, pkt + HEADER, 32);
        *ret_init = pkt + OFFER_HEADER;
        *ret_init_len = len - OFFER_HEADER;
        return 0;
}

int n2p_rv_make_forward(uint32_t cookie, const struct sockaddr_storage *client, const uint8_t *init,
                        size_t init_len, uint8_t *out, size_t cap) {
        int r;

        if (!out || !embedded_ok(init, init_len, true))
                return -EINVAL;
        if (cap < FORWARD_HEADER + init_len)
                return -ENOBUFS;
        header(out, N2P_RV_FORWARD, 0);
        n2p_put_be32(out + HEADER, cookie);
        r = put_endpoint(out + HEADER + 4, client);
        if (r < 0)
                return r;
        memcpy(out + FORWARD_HEADER, init, init_len);
        return (int) (FORWARD_HEADER + init_len);
}

int n2p_rv_parse_forward(const uint8_t *pkt, size_t len, uint32_t *ret_cookie,
                         struct sockaddr_storage *ret_client, const uint8_t **ret_init, size_t *ret_init_len) {
        struct sockaddr_storage ss;

        if (!plain_header(pkt, len, FORWARD_HEADER, N2P_RV_FORWARD) ||
            !embedded_ok(pkt + FORWARD_HEADER, len - FORWARD_HEADER, true) ||
            get_endpoint(pkt + HEADER + 4, &ss) < 0)
                return -EINVAL;
        *ret_cookie = n2p_get_be32(pkt + HEADER);
        *ret_client = ss;
        *ret_init = pkt + FORWARD_HEADER;
        *ret_init_len = len - FORWARD_HEADER;
        return 0;
}

int n2p_rv_make_answer(uint32_t cookie, const uint8_t *resp, size_t resp_len, uint8_t *out, size_t cap) {
        if (!out || !embedded_ok(resp, resp_len, false))
                return -EINVAL;
        if (cap < ANSWER_HEADER + resp_len)
                return -ENOBUFS;
        header(out, N2P_RV_ANSWER, 0);
        n2p_put_be32(out + HEADER, cookie);
        memcpy(out + ANSWER_HEADER, resp, resp_len);
        return (int) (ANSWER_HEADER + resp_len);
}

int n2p_rv_parse_answer(const uint8_t *pkt, size_t len, uint32_t *ret_cookie,
                        const uint8_t **ret_resp, size_t *ret_resp_len) {
        if (!plain_header(pkt, len, ANSWER_HEADER, N2P_RV_ANSWER) ||
            !embedded_ok(pkt + ANSWER_HEADER, len - ANSWER_HEADER, false))
                return -EINVAL;
        *ret_cookie = n2p_get_be32(pkt + HEADER);
        *ret_resp = pkt + ANSWER_HEADER;
        *ret_resp_len = len - ANSWER_HEADER;
        return 0;
}

int n2p_rv_make_deliver(const uint8_t *resp, size_t resp_len, uint8_t *out, size_t cap) {
        if (!out || !embedded_ok(resp, resp_len, false))
                return -EINVAL;
        if (cap < DELIVER_HEADER + resp_len)
                return -ENOBUFS;
        header(out, N2P_RV_DELIVER, 0);
        memcpy(out + DELIVER_HEADER, resp, resp_len);
        return (int) (DELIVER_HEADER + resp_len);
}

int n2p_rv_parse_deliver(const uint8_t *pkt, size_t len, const uint8_t **ret_resp, size_t *ret_resp_len) {
        if (!plain_header(pkt, len, DELIVER_HEADER, N2P_RV_DELIVER) ||
            !embedded_ok(pkt + DELIVER_HEADER, len - DELIVER_HEADER, false))
                return -EINVAL;
        *ret_resp = pkt + DELIVER_HEADER;
        *ret_resp_len = len - DELIVER_HEADER;
        return 0;
}

/* An ERROR always names a failure: code 0 (OK) is not an error. */
int n2p_rv_make_error(uint8_t code, const uint8_t target[32], uint8_t *out, size_t cap) {
        if (!target || !out || code == N2P_RV_OK)
                return -EINVAL;
        if (cap < ERROR_SIZE)
                return -ENOBUFS;
        header(out, N2P_RV_ERROR, code);
        memcpy(out + HEADER, target, 32);
        return ERROR_SIZE;
}

int n2p_rv_parse_error(const uint8_t *pkt, size_t len, uint8_t *ret_code, uint8_t ret_target[32]) {
        if (!pkt || len != ERROR_SIZE || pkt[0] != N2P_RV_ERROR || pkt[1] == N2P_RV_OK || !zeros(pkt + 2, 2))
                return -EINVAL;
        *ret_code = pkt[1];
        memcpy(ret_target, pkt + HEADER, 32);
        return 0;
}

int n2p_rv_make_creds_req(uint8_t *out, size_t cap) {
        if (!out)
                return -EINVAL;
        if (cap < CREDS_REQ_SIZE)
                return -ENOBUFS;
        memset(out, 0, CREDS_REQ_SIZE);
        out[0] = N2P_RV_CREDS_REQ;
        return CREDS_REQ_SIZE;
}

int n2p_rv_make_creds(uint8_t status, const n2p_rv_creds *creds, uint8_t *out, size_t cap) {
        size_t n;
        int r;

        if (!out)
                return -EINVAL;
        if (cap < CREDS_MIN)
                return -ENOBUFS;
        header(out, N2P_RV_CREDS, status);
        n2p_put_be32(out + HEADER, creds ? creds->lifetime : 0);
        r = put_creds(creds, out + HEADER + 4, cap - HEADER - 4, &n);
        if (r < 0)
                return r;
        return (int) (HEADER + 4 + n);
}

int n2p_rv_parse_creds(const uint8_t *pkt, size_t len, uint8_t *ret_status, n2p_rv_creds *ret_creds) {
        n2p_rv_creds c;

        if (!pkt || len < CREDS_MIN || pkt[0] != N2P_RV_CREDS || !zeros(pkt + 2, 2))
                return -EINVAL;
        if (get_creds(pkt + HEADER + 4, len - HEADER - 4, &c) < 0)
                return -EINVAL;
        c.lifetime = n2p_get_be32(pkt + HEADER);
        *ret_status = pkt[1];
        *ret_creds = c;
        return 0;
}

/* SHA-1 is coturn's choice (its REST API, "use-auth-secret"), not ours: libsodium
 * has no SHA-1, so GLib computes this one HMAC. */
int n2p_rv_turn_credentials(const char *secret, const char *label, uint64_t now_s, uint32_t lifetime,
                            n2p_rv_creds *ret) {
        uint8_t digest[20];
        gsize dlen = sizeof digest;
        n2p_rv_creds c = {};
        GHmac *h;
        int n;

        if (!secret || !*secret || !label || !ret)
                return -EINVAL;
        if (!cred_ok(label, strlen(label)) || strchr(label, ':'))
                return -EINVAL;
        if (now_s > UINT64_MAX - lifetime)
                return -EINVAL;
        n = snprintf(c.user, sizeof c.user, "%" PRIu64 ":%s", now_s + lifetime, label);
        if (n < 0 || (size_t) n >= sizeof c.user)
                return -ENOBUFS;

        h = g_hmac_new(G_CHECKSUM_SHA1, (const guchar *) secret, strlen(secret));
        g_hmac_update(h, (const guchar *) c.user, (gssize) n);
        g_hmac_get_digest(h, digest, &dlen);
        g_hmac_unref(h);

        g_autofree char *b64 = g_base64_encode(digest, dlen);
        sodium_memzero(digest, sizeof digest);
        g_strlcpy(c.pass, b64, sizeof c.pass);
        c.lifetime = lifetime;
        *ret = c;
        sodium_memzero(&c, sizeof c);
        return 0;
}

const char *n2p_rv_strerror(uint8_t code) {
        switch (code) {
        case N2P_RV_OK:
                return "ok";
        case N2P_RV_ERR_UNKNOWN_KEY:
                return "no node is registered under that key";
        case N2P_RV_ERR_RATE_LIMITED:
                return "too many requests, try again later";
        case N2P_RV_ERR_FULL:
                return "the rendezvous service is full";
        case N2P_RV_ERR_BAD_SIGNATURE:
                return "the registration's signature does not verify";
        case N2P_RV_ERR_STALE:
                return "the registration is stale or replayed (check the clock)";
        case N2P_RV_ERR_NO_TURN:
                return "the rendezvous service has no TURN secret";
        default:
                return "unknown rendezvous error";
        }
}
