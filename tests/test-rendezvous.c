/* SPDX-License-Identifier: MIT */
#include <arpa/inet.h>
#include <errno.h>
#include <glib.h>
#include <netinet/in.h>
#include <sodium.h>
#include <string.h>

#include "addr.h"
#include "key.h"
#include "rendezvous.h"

/* Computed independently (Python: hmac.new(secret, user, hashlib.sha1), base64). */
static const char kat_secret[] = "north-secret";
static const char kat_label[] = "n2p1aab2cb576phbbpq5odorrz2lycmwpzgwgcn2kdk7dxoimzaskuy3qzf7x7hq";
static const char kat_user[] = "1700003600:n2p1aab2cb576phbbpq5odorrz2lycmwpzgwgcn2kdk7dxoimzaskuy3qzf7x7hq";
static const char kat_pass[] = "U39s/j3QRtz9XGVpTER/PPGCqac=";
static const char kat_client_pass[] = "oNoOj6+lWVpshB7fL8pfKZam4ec=";

static const uint8_t target[32] = { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16,
                                    17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32 };
static const uint8_t init_pkt[] = { N2P_PKT_INIT, 0, 0, 0, 0xaa, 0xbb, 0xcc, 0xdd, 42 };
static const uint8_t resp_pkt[] = { N2P_PKT_RESP, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 99 };
static const uint8_t reject_pkt[] = { N2P_PKT_REJECT, 3, 0, 0, 1, 2, 3, 4 };

static n2p_key kat_key(void) {
        uint8_t seed[32];
        n2p_key k;
        for (unsigned i = 0; i < 32; i++)
                seed[i] = (uint8_t) i;
        n2p_key_from_seed(seed, &k);
        return k;
}

static struct sockaddr_storage endpoint(const char *text) {
        struct sockaddr_storage ss;
        char err[128];
        if (n2p_endpoint_parse(text, 0, &ss, err, sizeof err) < 0)
                g_error("%s: %s", text, err);
        return ss;
}

static void assert_endpoint(const struct sockaddr_storage *ss, const char *want) {
        char t[80];
        g_assert_cmpstr(n2p_endpoint_format(ss, t, sizeof t), ==, want);
}

static n2p_rv_creds sample_creds(void) {
        n2p_rv_creds c = { .lifetime = 3600 };
        strcpy(c.user, "1700003600:node");
        strcpy(c.pass, "c2VjcmV0cGFzcw==");
        return c;
}

/* REGISTER */

static int make_kat_register(uint8_t *out, size_t cap) {
        n2p_key k = kat_key();
        int r = n2p_rv_make_register(k.ed_secret, k.ed_public, 1700000000123ULL, out, cap);
        n2p_key_wipe(&k);
        return r;
}

static void test_register_roundtrip(void) {
        uint8_t pkt[N2P_RV_REGISTER_SIZE], key[32];
        n2p_key k = kat_key();
        uint64_t t = 0;

        g_assert_cmpint(make_kat_register(pkt, sizeof pkt), ==, N2P_RV_REGISTER_SIZE);
        g_assert_cmpuint(pkt[0], ==, N2P_RV_REGISTER);
        g_assert_cmpuint(pkt[1], ==, 1);
        g_assert_cmpint(n2p_rv_parse_register(pkt, sizeof pkt, key, &t), ==, 0);
        g_assert_cmpmem(key, 32, k.ed_public, 32);
        g_assert_cmpuint(t, ==, 1700000000123ULL);
        n2p_key_wipe(&k);
}

static void test_register_signature_covers_context(void) {
        uint8_t pkt[N2P_RV_REGISTER_SIZE], msg[18 + 32 + 8];
        n2p_key k = kat_key();

        g_assert_cmpint(make_kat_register(pkt, sizeof pkt), ==, N2P_RV_REGISTER_SIZE);
        memcpy(msg, "n2p-rv-register-v1", 18);
        memcpy(msg + 18, k.ed_public, 32);
        memcpy(msg + 50, pkt + 36, 8);
        g_assert_cmpint(crypto_sign_verify_detached(pkt + 44, msg, sizeof msg, k.ed_public), ==, 0);
        n2p_key_wipe(&k);
}

static void test_register_bad_signature(void) {
        uint8_t pkt[N2P_RV_REGISTER_SIZE], key[32], untouched[32];
        uint64_t t = 7;
        /* the key, the time and the signature itself are all covered */
        const size_t flips[] = { 4, 35, 36, 43, 44, 107 };

        memset(key, 0x5a, sizeof key);
        memcpy(untouched, key, 32);
        for (size_t i = 0; i < G_N_ELEMENTS(flips); i++) {
                g_assert_cmpint(make_kat_register(pkt, sizeof pkt), ==, N2P_RV_REGISTER_SIZE);
                pkt[flips[i]] ^= 0x01;
                g_assert_cmpint(n2p_rv_parse_register(pkt, sizeof pkt, key, &t), ==, -EBADMSG);
                g_assert_cmpmem(key, 32, untouched, 32);
                g_assert_cmpuint(t, ==, 7);
        }
}

static void test_register_malformed(void) {
        uint8_t pkt[N2P_RV_REGISTER_SIZE + 1] = {}, key[32];
        uint64_t t;
        const size_t header_bytes[] = { 0, 1, 2, 3 };

        for (size_t i = 0; i < G_N_ELEMENTS(header_bytes); i++) {
                g_assert_cmpint(make_kat_register(pkt, sizeof pkt), ==, N2P_RV_REGISTER_SIZE);
                pkt[header_bytes[i]] ^= 0x40;
                g_assert_cmpint(n2p_rv_parse_register(pkt, N2P_RV_REGISTER_SIZE, key, &t), ==, -EINVAL);
        }
        g_assert_cmpint(make_kat_register(pkt, sizeof pkt), ==, N2P_RV_REGISTER_SIZE);
        for (size_t l = 0; l < N2P_RV_REGISTER_SIZE; l++)
                g_assert_cmpint(n2p_rv_parse_register(pkt, l, key, &t), ==, -EINVAL);
        g_assert_cmpint(n2p_rv_parse_register(pkt, N2P_RV_REGISTER_SIZE + 1, key, &t), ==, -EINVAL);
        g_assert_cmpint(make_kat_register(pkt, N2P_RV_REGISTER_SIZE - 1), ==, -ENOBUFS);
}

/* REGISTERED */

static void test_registered_roundtrip(void) {
        uint8_t pkt[N2P_RV_MAX_PACKET], status = 0;
        struct sockaddr_storage ep = endpoint("198.51.100.7:40000"), got;
        n2p_rv_creds c = sample_creds(), gc;
        uint32_t life = 0;
        int n;

        n = n2p_rv_make_registered(N2P_RV_OK, 75, &ep, &c, pkt, sizeof pkt);
        g_assert_cmpint(n, ==, 4 + 4 + 19 + 1 + (int) strlen(c.user) + 1 + (int) strlen(c.pass));
        g_assert_cmpint(n2p_rv_parse_registered(pkt, (size_t) n, &status, &life, &got, &gc), ==, 0);
        g_assert_cmpuint(status, ==, N2P_RV_OK);
        g_assert_cmpuint(life, ==, 75);
        assert_endpoint(&got, "198.51.100.7:40000");
        g_assert_cmpstr(gc.user, ==, c.user);
        g_assert_cmpstr(gc.pass, ==, c.pass);
        g_assert_cmpuint(gc.lifetime, ==, 0);
        /* family 4, address in the first 4 bytes, 12 zero bytes, port */
        g_assert_cmpuint(pkt[8], ==, 4);
        g_assert_cmpuint(pkt[9], ==, 198);
        g_assert_cmpuint(pkt[25], ==, 40000 >> 8);
        g_assert_cmpuint(pkt[26], ==, 40000 & 0xff);
}

static void test_registered_v6_no_creds(void) {
        uint8_t pkt[64], status = 9;
        struct sockaddr_storage ep = endpoint("[2001:db8::5]:7787"), got;
        n2p_rv_creds gc;
        uint32_t life;
        int n;

        n = n2p_rv_make_registered(N2P_RV_ERR_STALE, 0, &ep, NULL, pkt, sizeof pkt);
        g_assert_cmpint(n, ==, 29);
        g_assert_cmpint(n2p_rv_parse_registered(pkt, (size_t) n, &status, &life, &got, &gc), ==, 0);
        g_assert_cmpuint(status, ==, N2P_RV_ERR_STALE);
        assert_endpoint(&got, "[2001:db8::5]:7787");
        g_assert_cmpstr(gc.user, ==, "");
        g_assert_cmpstr(gc.pass, ==, "");
}

static void test_registered_v4_mapped_is_v4(void) {
        uint8_t pkt[64], status;
        struct sockaddr_storage ep = endpoint("[::ffff:192.0.2.1]:5000"), got;
        n2p_rv_creds gc;
        uint32_t life;
        int n;

        n = n2p_rv_make_registered(N2P_RV_OK, 75, &ep, NULL, pkt, sizeof pkt);
        g_assert_cmpint(n, ==, 29);
        g_assert_cmpuint(pkt[8], ==, 4);
        g_assert_cmpint(n2p_rv_parse_registered(pkt, (size_t) n, &status, &life, &got, &gc), ==, 0);
        assert_endpoint(&got, "192.0.2.1:5000");
}

static void test_registered_bad_endpoint(void) {
        uint8_t pkt[64], good[64], status;
        struct sockaddr_storage ep = endpoint("192.0.2.1:5000"), got;
        n2p_rv_creds gc;
        uint32_t life;
        int n = n2p_rv_make_registered(N2P_RV_OK, 75, &ep, NULL, good, sizeof good);

        g_assert_cmpint(n, ==, 29);
        g_assert_cmpint(n2p_rv_parse_registered(good, (size_t) n, &status, &life, &got, &gc), ==, 0);
        memcpy(pkt, good, sizeof pkt);
        pkt[8] = 5;                                  /* family */
        g_assert_cmpint(n2p_rv_parse_registered(pkt, (size_t) n, &status, &life, &got, &gc), ==, -EINVAL);
        memcpy(pkt, good, sizeof pkt);
        pkt[8 + 1 + 4] = 1;                          /* padding after an IPv4 address */
        g_assert_cmpint(n2p_rv_parse_registered(pkt, (size_t) n, &status, &life, &got, &gc), ==, -EINVAL);
        memcpy(pkt, good, sizeof pkt);
        pkt[25] = pkt[26] = 0;                       /* port 0 */
        g_assert_cmpint(n2p_rv_parse_registered(pkt, (size_t) n, &status, &life, &got, &gc), ==, -EINVAL);
        memcpy(pkt, good, sizeof pkt);               /* v4-mapped under family 6 */
        pkt[8] = 6;
        memset(pkt + 9, 0, 10);
        pkt[19] = pkt[20] = 0xff;
        pkt[21] = 192, pkt[22] = 0, pkt[23] = 2, pkt[24] = 1;
        g_assert_cmpint(n2p_rv_parse_registered(pkt, (size_t) n, &status, &life, &got, &gc), ==, -EINVAL);
        memcpy(pkt, good, sizeof pkt);
        pkt[2] = 1;                                  /* reserved */
        g_assert_cmpint(n2p_rv_parse_registered(pkt, (size_t) n, &status, &life, &got, &gc), ==, -EINVAL);
        memcpy(pkt, good, sizeof pkt);
        pkt[0] = N2P_RV_CREDS;
        g_assert_cmpint(n2p_rv_parse_registered(pkt, (size_t) n, &status, &life, &got, &gc), ==, -EINVAL);

        struct sockaddr_storage zero_port = ep;
        ((struct sockaddr_in *) &zero_port)->sin_port = 0;
        g_assert_cmpint(n2p_rv_make_registered(N2P_RV_OK, 75, &zero_port, NULL, pkt, sizeof pkt), ==, -EINVAL);
        struct sockaddr_storage unix_sa = { .ss_family = AF_UNIX };
        g_assert_cmpint(n2p_rv_make_registered(N2P_RV_OK, 75, &unix_sa, NULL, pkt, sizeof pkt), ==, -EINVAL);
}

static void test_registered_bad_creds(void) {
        uint8_t pkt[N2P_RV_MAX_PACKET], status;
        struct sockaddr_storage ep = endpoint("192.0.2.1:5000"), got;
        n2p_rv_creds c = sample_creds(), gc;
        uint32_t life;
        int n = n2p_rv_make_registered(N2P_RV_OK, 75, &ep, &c, pkt, sizeof pkt);

        g_assert_cmpint(n, >, 29);
        pkt[28] = 0x07;                              /* a control character in the user */
        g_assert_cmpint(n2p_rv_parse_registered(pkt, (size_t) n, &status, &life, &got, &gc), ==, -EINVAL);
        pkt[28] = 0x80;
        g_assert_cmpint(n2p_rv_parse_registered(pkt, (size_t) n, &status, &life, &got, &gc), ==, -EINVAL);
        n = n2p_rv_make_registered(N2P_RV_OK, 75, &ep, &c, pkt, sizeof pkt);
        g_assert_cmpint(n2p_rv_parse_registered(pkt, (size_t) n + 1, &status, &life, &got, &gc), ==, -EINVAL);

        c.user[3] = '\n';
        g_assert_cmpint(n2p_rv_make_registered(N2P_RV_OK, 75, &ep, &c, pkt, sizeof pkt), ==, -EINVAL);
        c = sample_creds();
        memset(c.pass, 'a', N2P_RV_MAX_CRED + 1);   /* no terminator inside the limit */
        g_assert_cmpint(n2p_rv_make_registered(N2P_RV_OK, 75, &ep, &c, pkt, sizeof pkt), ==, -EINVAL);

        /* longest credentials fit and parse */
        memset(&c, 0, sizeof c);
        memset(c.user, 'u', N2P_RV_MAX_CRED);
        memset(c.pass, 'p', N2P_RV_MAX_CRED);
        n = n2p_rv_make_registered(N2P_RV_OK, 75, &ep, &c, pkt, sizeof pkt);
        g_assert_cmpint(n, ==, 29 + 2 * N2P_RV_MAX_CRED);
        g_assert_cmpint(n2p_rv_parse_registered(pkt, (size_t) n, &status, &life, &got, &gc), ==, 0);
        g_assert_cmpuint(strlen(gc.user), ==, N2P_RV_MAX_CRED);
        /* a length byte above the limit */
        pkt[27] = N2P_RV_MAX_CRED + 1;
        g_assert_cmpint(n2p_rv_parse_registered(pkt, (size_t) n, &status, &life, &got, &gc), ==, -EINVAL);
}

static void test_registered_truncated(void) {
        uint8_t pkt[N2P_RV_MAX_PACKET], status = 0x77;
        struct sockaddr_storage ep = endpoint("192.0.2.1:5000"), got = {};
        n2p_rv_creds c = sample_creds(), gc = {};
        uint32_t life = 0x1234;
        int n = n2p_rv_make_registered(N2P_RV_OK, 75, &ep, &c, pkt, sizeof pkt);

        for (int l = 0; l < n; l++) {
                g_assert_cmpint(n2p_rv_parse_registered(pkt, (size_t) l, &status, &life, &got, &gc), ==, -EINVAL);
                g_assert_cmpint(n2p_rv_make_registered(N2P_RV_OK, 75, &ep, &c, pkt + 2000, (size_t) l), ==, -ENOBUFS);
        }
        g_assert_cmpuint(status, ==, 0x77);
        g_assert_cmpuint(life, ==, 0x1234);
        g_assert_cmpuint(got.ss_family, ==, 0);
}

/* OFFER / FORWARD / ANSWER / DELIVER */

static void test_offer_roundtrip(void) {
        uint8_t pkt[N2P_RV_MAX_PACKET], t[32];
        const uint8_t *init;
        size_t init_len;
        int n = n2p_rv_make_offer(target, init_pkt, sizeof init_pkt, pkt, sizeof pkt);

        g_assert_cmpint(n, ==, 36 + (int) sizeof init_pkt);
        g_assert_cmpint(n2p_rv_parse_offer(pkt, (size_t) n, t, &init, &init_len), ==, 0);
        g_assert_cmpmem(t, 32, target, 32);
        g_assert_cmpmem(init, init_len, init_pkt, sizeof init_pkt);
        g_assert_cmpint(n2p_rv_make_offer(target, init_pkt, sizeof init_pkt, pkt, (size_t) n - 1), ==, -ENOBUFS);
}

static void test_offer_malformed(void) {
        static uint8_t big[N2P_PKT_MAX + 1];
        static uint8_t pkt[N2P_RV_MAX_PACKET + 64];
        uint8_t t[32];
        const uint8_t *init = NULL;
        size_t init_len = 0;
        int n;

        g_assert_cmpint(n2p_rv_make_offer(target, resp_pkt, sizeof resp_pkt, pkt, sizeof pkt), ==, -EINVAL);
        g_assert_cmpint(n2p_rv_make_offer(target, init_pkt, 0, pkt, sizeof pkt), ==, -EINVAL);
        big[0] = N2P_PKT_INIT;
        g_assert_cmpint(n2p_rv_make_offer(target, big, sizeof big, pkt, sizeof pkt), ==, -EINVAL);
        g_assert_cmpint(n2p_rv_make_offer(target, big, N2P_PKT_MAX, pkt, sizeof pkt), ==, 36 + N2P_PKT_MAX);
        g_assert_cmpint(n2p_rv_parse_offer(pkt, 36 + N2P_PKT_MAX, t, &init, &init_len), ==, 0);
        g_assert_cmpint(n2p_rv_parse_offer(pkt, 36 + N2P_PKT_MAX + 1, t, &init, &init_len), ==, -EINVAL);

        n = n2p_rv_make_offer(target, init_pkt, sizeof init_pkt, pkt, sizeof pkt);
        init = NULL;
        for (size_t l = 0; l <= 36; l++)
                g_assert_cmpint(n2p_rv_parse_offer(pkt, l, t, &init, &init_len), ==, -EINVAL);
        g_assert_null(init);
        /* The INIT is the rest of the datagram: a shorter one is still an offer. */
        for (size_t l = 37; l <= (size_t) n; l++) {
                g_assert_cmpint(n2p_rv_parse_offer(pkt, l, t, &init, &init_len), ==, 0);
                g_assert_cmpuint(init_len, ==, l - 36);
        }
        pkt[36] = N2P_PKT_RESP;
        g_assert_cmpint(n2p_rv_parse_offer(pkt, (size_t) n, t, &init, &init_len), ==, -EINVAL);
        pkt[36] = N2P_PKT_INIT;
        for (size_t i = 1; i < 4; i++) {
                pkt[i] = 1;
                g_assert_cmpint(n2p_rv_parse_offer(pkt, (size_t) n, t, &init, &init_len), ==, -EINVAL);
                pkt[i] = 0;
        }
        pkt[0] = N2P_RV_FORWARD;
        g_assert_cmpint(n2p_rv_parse_offer(pkt, (size_t) n, t, &init, &init_len), ==, -EINVAL);
}

static void test_forward_roundtrip(void) {
        uint8_t pkt[N2P_RV_MAX_PACKET];
        struct sockaddr_storage ep = endpoint("[2001:db8::9]:1234"), got;
        const uint8_t *init;
        size_t init_len;
        uint32_t cookie = 0;
        int n = n2p_rv_make_forward(0xdeadbeef, &ep, init_pkt, sizeof init_pkt, pkt, sizeof pkt);

        g_assert_cmpint(n, ==, 27 + (int) sizeof init_pkt);
        g_assert_cmpint(n2p_rv_parse_forward(pkt, (size_t) n, &cookie, &got, &init, &init_len), ==, 0);
        g_assert_cmpuint(cookie, ==, 0xdeadbeef);
        assert_endpoint(&got, "[2001:db8::9]:1234");
        g_assert_cmpmem(init, init_len, init_pkt, sizeof init_pkt);
        g_assert_cmpint(n2p_rv_make_forward(1, &ep, init_pkt, sizeof init_pkt, pkt, (size_t) n - 1), ==, -ENOBUFS);
}

static void test_forward_malformed(void) {
        uint8_t pkt[N2P_RV_MAX_PACKET];
        struct sockaddr_storage ep = endpoint("192.0.2.3:99"), got;
        const uint8_t *init;
        size_t init_len;
        uint32_t cookie;
        int n;

        g_assert_cmpint(n2p_rv_make_forward(1, &ep, reject_pkt, sizeof reject_pkt, pkt, sizeof pkt), ==, -EINVAL);
        g_assert_cmpint(n2p_rv_make_forward(1, NULL, init_pkt, sizeof init_pkt, pkt, sizeof pkt), ==, -EINVAL);
        n = n2p_rv_make_forward(1, &ep, init_pkt, sizeof init_pkt, pkt, sizeof pkt);
        for (size_t l = 0; l <= 27; l++)
                g_assert_cmpint(n2p_rv_parse_forward(pkt, l, &cookie, &got, &init, &init_len), ==, -EINVAL);
        pkt[27] = N2P_PKT_REJECT;
        g_assert_cmpint(n2p_rv_parse_forward(pkt, (size_t) n, &cookie, &got, &init, &init_len), ==, -EINVAL);
        pkt[27] = N2P_PKT_INIT;
        pkt[8] = 7;                                  /* endpoint family */
        g_assert_cmpint(n2p_rv_parse_forward(pkt, (size_t) n, &cookie, &got, &init, &init_len), ==, -EINVAL);
        pkt[8] = 4;
        pkt[3] = 1;
        g_assert_cmpint(n2p_rv_parse_forward(pkt, (size_t) n, &cookie, &got, &init, &init_len), ==, -EINVAL);
        pkt[3] = 0;
        g_assert_cmpint(n2p_rv_parse_forward(pkt, (size_t) n, &cookie, &got, &init, &init_len), ==, 0);
}

static void test_answer_roundtrip(void) {
        uint8_t pkt[N2P_RV_MAX_PACKET];
        const uint8_t *resp;
        size_t resp_len;
        uint32_t cookie;
        int n;

        n = n2p_rv_make_answer(77, resp_pkt, sizeof resp_pkt, pkt, sizeof pkt);
        g_assert_cmpint(n, ==, 8 + (int) sizeof resp_pkt);
        g_assert_cmpint(n2p_rv_parse_answer(pkt, (size_t) n, &cookie, &resp, &resp_len), ==, 0);
        g_assert_cmpuint(cookie, ==, 77);
        g_assert_cmpmem(resp, resp_len, resp_pkt, sizeof resp_pkt);

        n = n2p_rv_make_answer(78, reject_pkt, sizeof reject_pkt, pkt, sizeof pkt);
        g_assert_cmpint(n2p_rv_parse_answer(pkt, (size_t) n, &cookie, &resp, &resp_len), ==, 0);
        g_assert_cmpmem(resp, resp_len, reject_pkt, sizeof reject_pkt);
        g_assert_cmpint(n2p_rv_make_answer(78, reject_pkt, sizeof reject_pkt, pkt, (size_t) n - 1), ==, -ENOBUFS);
}

static void test_answer_malformed(void) {
        uint8_t pkt[N2P_RV_MAX_PACKET];
        const uint8_t *resp = NULL;
        size_t resp_len;
        uint32_t cookie = 5;
        int n;

        g_assert_cmpint(n2p_rv_make_answer(1, init_pkt, sizeof init_pkt, pkt, sizeof pkt), ==, -EINVAL);
        g_assert_cmpint(n2p_rv_make_answer(1, resp_pkt, 0, pkt, sizeof pkt), ==, -EINVAL);
        n = n2p_rv_make_answer(1, resp_pkt, sizeof resp_pkt, pkt, sizeof pkt);
        for (size_t l = 0; l <= 8; l++)
                g_assert_cmpint(n2p_rv_parse_answer(pkt, l, &cookie, &resp, &resp_len), ==, -EINVAL);
        g_assert_cmpuint(cookie, ==, 5);
        g_assert_null(resp);
        pkt[8] = N2P_PKT_INIT;
        g_assert_cmpint(n2p_rv_parse_answer(pkt, (size_t) n, &cookie, &resp, &resp_len), ==, -EINVAL);
        pkt[8] = 0;
        g_assert_cmpint(n2p_rv_parse_answer(pkt, (size_t) n, &cookie, &resp, &resp_len), ==, -EINVAL);
        pkt[8] = N2P_PKT_RESP;
        pkt[1] = 2;
        g_assert_cmpint(n2p_rv_parse_answer(pkt, (size_t) n, &cookie, &resp, &resp_len), ==, -EINVAL);
}

static void test_deliver(void) {
        uint8_t pkt[N2P_RV_MAX_PACKET];
        const uint8_t *resp = NULL;
        size_t resp_len;
        int n;

        n = n2p_rv_make_deliver(resp_pkt, sizeof resp_pkt, pkt, sizeof pkt);
        g_assert_cmpint(n, ==, 4 + (int) sizeof resp_pkt);
        g_assert_cmpint(n2p_rv_parse_deliver(pkt, (size_t) n, &resp, &resp_len), ==, 0);
        g_assert_cmpmem(resp, resp_len, resp_pkt, sizeof resp_pkt);
        g_assert_cmpint(n2p_rv_make_deliver(resp_pkt, sizeof resp_pkt, pkt, (size_t) n - 1), ==, -ENOBUFS);
        g_assert_cmpint(n2p_rv_make_deliver(init_pkt, sizeof init_pkt, pkt, sizeof pkt), ==, -EINVAL);
        for (size_t l = 0; l <= 4; l++)
                g_assert_cmpint(n2p_rv_parse_deliver(pkt, l, &resp, &resp_len), ==, -EINVAL);
        pkt[4] = N2P_PKT_INIT;
        g_assert_cmpint(n2p_rv_parse_deliver(pkt, (size_t) n, &resp, &resp_len), ==, -EINVAL);
        pkt[4] = N2P_PKT_REJECT;
        g_assert_cmpint(n2p_rv_parse_deliver(pkt, (size_t) n, &resp, &resp_len), ==, 0);
        pkt[2] = 1;
        g_assert_cmpint(n2p_rv_parse_deliver(pkt, (size_t) n, &resp, &resp_len), ==, -EINVAL);
}

/* ERROR / CREDS */

static void test_error(void) {
        uint8_t pkt[64], code = 0, t[32];
        int n = n2p_rv_make_error(N2P_RV_ERR_UNKNOWN_KEY, target, pkt, sizeof pkt);

        g_assert_cmpint(n, ==, 36);
        g_assert_cmpint(n2p_rv_parse_error(pkt, (size_t) n, &code, t), ==, 0);
        g_assert_cmpuint(code, ==, N2P_RV_ERR_UNKNOWN_KEY);
        g_assert_cmpmem(t, 32, target, 32);
        for (size_t l = 0; l < 36; l++)
                g_assert_cmpint(n2p_rv_parse_error(pkt, l, &code, t), ==, -EINVAL);
        g_assert_cmpint(n2p_rv_parse_error(pkt, 37, &code, t), ==, -EINVAL);
        g_assert_cmpint(n2p_rv_make_error(N2P_RV_OK, target, pkt, sizeof pkt), ==, -EINVAL);
        g_assert_cmpint(n2p_rv_make_error(N2P_RV_ERR_FULL, target, pkt, 35), ==, -ENOBUFS);
        pkt[1] = N2P_RV_OK;
        g_assert_cmpint(n2p_rv_parse_error(pkt, 36, &code, t), ==, -EINVAL);
        pkt[1] = N2P_RV_ERR_FULL;
        pkt[3] = 1;
        g_assert_cmpint(n2p_rv_parse_error(pkt, 36, &code, t), ==, -EINVAL);
}

static void test_creds_req_padded(void) {
        uint8_t pkt[N2P_RV_MAX_PACKET];
        int n = n2p_rv_make_creds_req(pkt, sizeof pkt);

        /* at least as large as the largest CREDS answer */
        g_assert_cmpint(n, >=, 4 + 4 + 2 + 2 * N2P_RV_MAX_CRED);
        g_assert_cmpuint(pkt[0], ==, N2P_RV_CREDS_REQ);
        for (int i = 1; i < n; i++)
                g_assert_cmpuint(pkt[i], ==, 0);
        g_assert_cmpint(n2p_rv_make_creds_req(pkt, (size_t) n - 1), ==, -ENOBUFS);
}

static void test_creds_roundtrip(void) {
        uint8_t pkt[N2P_RV_MAX_PACKET], status = 0xff;
        n2p_rv_creds c = sample_creds(), gc = {};
        int n = n2p_rv_make_creds(N2P_RV_OK, &c, pkt, sizeof pkt);

        g_assert_cmpint(n, ==, 10 + (int) (strlen(c.user) + strlen(c.pass)));
        g_assert_cmpint(n2p_rv_parse_creds(pkt, (size_t) n, &status, &gc), ==, 0);
        g_assert_cmpuint(status, ==, N2P_RV_OK);
        g_assert_cmpstr(gc.user, ==, c.user);
        g_assert_cmpstr(gc.pass, ==, c.pass);
        g_assert_cmpuint(gc.lifetime, ==, 3600);
        for (int l = 0; l < n; l++) {
                status = 0xee;
                g_assert_cmpint(n2p_rv_parse_creds(pkt, (size_t) l, &status, &gc), ==, -EINVAL);
                g_assert_cmpuint(status, ==, 0xee);
                g_assert_cmpint(n2p_rv_make_creds(N2P_RV_OK, &c, pkt + 1000, (size_t) l), ==, -ENOBUFS);
        }
        g_assert_cmpint(n2p_rv_parse_creds(pkt, (size_t) n + 1, &status, &gc), ==, -EINVAL);
        pkt[3] = 9;
        g_assert_cmpint(n2p_rv_parse_creds(pkt, (size_t) n, &status, &gc), ==, -EINVAL);
}

static void test_creds_no_turn(void) {
        uint8_t pkt[64], status = 0;
        n2p_rv_creds gc;
        int n = n2p_rv_make_creds(N2P_RV_ERR_NO_TURN, NULL, pkt, sizeof pkt);

        g_assert_cmpint(n, ==, 10);
        g_assert_cmpint(n2p_rv_parse_creds(pkt, (size_t) n, &status, &gc), ==, 0);
        g_assert_cmpuint(status, ==, N2P_RV_ERR_NO_TURN);
        g_assert_cmpstr(gc.user, ==, "");
        g_assert_cmpuint(gc.lifetime, ==, 0);
}

static void test_turn_credentials_known_answer(void) {
        n2p_rv_creds c;

        g_assert_cmpint(n2p_rv_turn_credentials(kat_secret, kat_label, 1700000000, 3600, &c), ==, 0);
        g_assert_cmpstr(c.user, ==, kat_user);
        g_assert_cmpstr(c.pass, ==, kat_pass);
        g_assert_cmpuint(c.lifetime, ==, 3600);
        g_assert_cmpint(n2p_rv_turn_credentials(kat_secret, "client", 1700000000, 3600, &c), ==, 0);
        g_assert_cmpstr(c.user, ==, "1700003600:client");
        g_assert_cmpstr(c.pass, ==, kat_client_pass);
}

static void test_turn_credentials_invalid(void) {
        char label[N2P_RV_MAX_CRED + 1];
        n2p_rv_creds c = { .lifetime = 42 };

        g_assert_cmpint(n2p_rv_turn_credentials("", "x", 1, 1, &c), ==, -EINVAL);
        g_assert_cmpint(n2p_rv_turn_credentials("s", "a\nb", 1, 1, &c), ==, -EINVAL);
        g_assert_cmpint(n2p_rv_turn_credentials("s", "a:b", 1, 1, &c), ==, -EINVAL);
        g_assert_cmpint(n2p_rv_turn_credentials("s", "x", UINT64_MAX, 1, &c), ==, -EINVAL);
        memset(label, 'l', 120);
        label[120] = 0;
        g_assert_cmpint(n2p_rv_turn_credentials("s", label, 1700000000, 1, &c), ==, -ENOBUFS);
        g_assert_cmpuint(c.lifetime, ==, 42);
}

static void test_strerror(void) {
        for (unsigned i = N2P_RV_ERR_UNKNOWN_KEY; i <= N2P_RV_ERR_NO_TURN; i++) {
                g_assert_nonnull(n2p_rv_strerror((uint8_t) i));
                g_assert_cmpstr(n2p_rv_strerror((uint8_t) i), !=, n2p_rv_strerror(200));
        }
        g_assert_cmpstr(n2p_rv_strerror(N2P_RV_ERR_UNKNOWN_KEY), ==, "no node is registered under that key");
}

int main(int argc, char **argv) {
        g_test_init(&argc, &argv, NULL);
        if (sodium_init() < 0)
                return 1;
        g_test_add_func("/rendezvous/register/roundtrip", test_register_roundtrip);
        g_test_add_func("/rendezvous/register/signed-message", test_register_signature_covers_context);
        g_test_add_func("/rendezvous/register/bad-signature", test_register_bad_signature);
        g_test_add_func("/rendezvous/register/malformed", test_register_malformed);
        g_test_add_func("/rendezvous/registered/roundtrip", test_registered_roundtrip);
        g_test_add_func("/rendezvous/registered/v6-no-creds", test_registered_v6_no_creds);
        g_test_add_func("/rendezvous/registered/v4-mapped", test_registered_v4_mapped_is_v4);
        g_test_add_func("/rendezvous/registered/bad-endpoint", test_registered_bad_endpoint);
        g_test_add_func("/rendezvous/registered/bad-creds", test_registered_bad_creds);
        g_test_add_func("/rendezvous/registered/truncated", test_registered_truncated);
        g_test_add_func("/rendezvous/offer/roundtrip", test_offer_roundtrip);
        g_test_add_func("/rendezvous/offer/malformed", test_offer_malformed);
        g_test_add_func("/rendezvous/forward/roundtrip", test_forward_roundtrip);
        g_test_add_func("/rendezvous/forward/malformed", test_forward_malformed);
        g_test_add_func("/rendezvous/answer/roundtrip", test_answer_roundtrip);
        g_test_add_func("/rendezvous/answer/malformed", test_answer_malformed);
        g_test_add_func("/rendezvous/deliver", test_deliver);
        g_test_add_func("/rendezvous/error", test_error);
        g_test_add_func("/rendezvous/creds-req/padded", test_creds_req_padded);
        g_test_add_func("/rendezvous/creds/roundtrip", test_creds_roundtrip);
        g_test_add_func("/rendezvous/creds/no-turn", test_creds_no_turn);
        g_test_add_func("/rendezvous/turn/known-answer", test_turn_credentials_known_answer);
        g_test_add_func("/rendezvous/turn/invalid", test_turn_credentials_invalid);
        g_test_add_func("/rendezvous/strerror", test_strerror);
        return g_test_run();
}
