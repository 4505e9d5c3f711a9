/* SPDX-License-Identifier: MIT */
/* The signalling messages: INIT/RESP/REJECT built and read back, and every way a
 * forged, tampered or misdirected packet must be refused. */
#include <arpa/inet.h>
#include <errno.h>
#include <glib.h>
#include <sodium.h>
#include <string.h>

#include "signalling.h"

static n2p_ice_desc sample_desc(const char *ufrag) {
        n2p_ice_desc d = { .n_candidates = 1 };
        struct sockaddr_in *in = (struct sockaddr_in *) &d.candidates[0].addr;
        g_strlcpy(d.ufrag, ufrag, sizeof d.ufrag);
        g_strlcpy(d.pwd, "abcdefghijklmnopqrstuvwx", sizeof d.pwd);
        d.candidates[0].type = N2P_ICE_CAND_HOST;
        d.candidates[0].priority = 2130706431;
        g_strlcpy(d.candidates[0].foundation, "1", sizeof d.candidates[0].foundation);
        in->sin_family = AF_INET;
        in->sin_port = htons(40000);
        inet_pton(AF_INET, "10.1.0.3", &in->sin_addr);
        return d;
}

static void assert_desc_equal(const n2p_ice_desc *a, const n2p_ice_desc *b) {
        uint8_t ea[N2P_ICE_MAX_DESCRIPTION], eb[N2P_ICE_MAX_DESCRIPTION];
        size_t la, lb;
        g_assert_cmpint(n2p_ice_desc_encode(a, ea, sizeof ea, &la), ==, 0);
        g_assert_cmpint(n2p_ice_desc_encode(b, eb, sizeof eb, &lb), ==, 0);
        g_assert_cmpmem(ea, la, eb, lb);
}

typedef struct {
        n2p_key client, server;
        n2p_handshake chs, shs;
        uint8_t init[N2P_PKT_MAX];
        size_t init_len;
        n2p_init_info info;
} Fixture;

static void setup(Fixture *f) {
        n2p_ice_desc offer = sample_desc("cli1");
        n2p_key_generate(&f->client);
        n2p_key_generate(&f->server);
        g_assert_cmpint(n2p_signal_make_init(&f->client, f->server.ed_public, 0x11223344, &offer,
                                             &f->chs, f->init, sizeof f->init, &f->init_len), ==, 0);
}

static void test_round_trip(void) {
        Fixture f;
        uint8_t resp[N2P_PKT_MAX], status = 99;
        size_t resp_len;
        n2p_ice_desc answer = sample_desc("srv1"), got;
        n2p_cipher ctx, crx, stx, srx;
        uint8_t ct[5 + 16], pt[5];

        setup(&f);
        g_assert_cmpint(n2p_signal_type(f.init, f.init_len), ==, N2P_PKT_INIT);
        g_assert_cmpint(n2p_signal_read_init(&f.server, f.init, f.init_len, &f.shs, &f.info), ==, 0);
        g_assert_cmpuint(f.info.sender, ==, 0x11223344);
        g_assert_cmpmem(f.info.client_ed, 32, f.client.ed_public, 32);
        g_assert_cmpmem(f.info.client_x, 32, f.client.x_public, 32);
        n2p_ice_desc offer = sample_desc("cli1");
        assert_desc_equal(&f.info.offer, &offer);

        g_assert_cmpint(n2p_signal_make_resp(&f.shs, 7, 0x11223344, N2P_REFUSE_OK, &answer,
                                             resp, sizeof resp, &resp_len), ==, 0);
        g_assert_cmpint(n2p_signal_type(resp, resp_len), ==, N2P_PKT_RESP);
        g_assert_cmpint(n2p_signal_read_resp(&f.chs, 0x11223344, resp, resp_len, &status, &got), ==, 0);
        g_assert_cmpuint(status, ==, N2P_REFUSE_OK);
        assert_desc_equal(&got, &answer);

        /* Both ends derived the same transport keys. */
        g_assert_cmpint(n2p_noise_split(&f.chs, &ctx, &crx), ==, 0);
        g_assert_cmpint(n2p_noise_split(&f.shs, &stx, &srx), ==, 0);
        g_assert_cmpint(n2p_cipher_encrypt(&ctx, NULL, 0, (const uint8_t *) "hello", 5, ct), ==, 0);
        g_assert_cmpint(n2p_cipher_decrypt(&srx, NULL, 0, ct, sizeof ct, pt), ==, 0);
        g_assert_cmpmem(pt, 5, "hello", 5);
}

static void test_wrong_server_key(void) {
        Fixture f;
        n2p_key other;
        setup(&f);
        n2p_key_generate(&other);
        g_assert_cmpint(n2p_signal_read_init(&other, f.init, f.init_len, &f.shs, &f.info), ==, -EBADMSG);
}

static void test_tampered_init(void) {
        Fixture f;
        setup(&f);
        /* Header bytes are checked for shape; every other byte is authenticated. */
        for (size_t i = 0; i < f.init_len; i++) {
                if (i >= 4 && i < 8)
                        continue;   /* the sender index is a routing hint, not a secret */
                uint8_t pkt[N2P_PKT_MAX];
                memcpy(pkt, f.init, f.init_len);
                pkt[i] ^= 0x01;
                g_assert_cmpint(n2p_signal_read_init(&f.server, pkt, f.init_len, &f.shs, &f.info), <, 0);
        }
        for (size_t len = 0; len < f.init_len; len++)
                g_assert_cmpint(n2p_signal_read_init(&f.server, f.init, len, &f.shs, &f.info), <, 0);
}

static void test_identity_mismatch(void) {
        Fixture f;
        n2p_key liar, other;
        n2p_ice_desc offer = sample_desc("cli1");
        setup(&f);
        /* Claims another node's Ed25519 identity while holding only its own X25519 key. */
        n2p_key_generate(&other);
        liar = f.client;
        memcpy(liar.ed_public, other.ed_public, 32);
        g_assert_cmpint(n2p_signal_make_init(&liar, f.server.ed_public, 1, &offer, &f.chs,
                                             f.init, sizeof f.init, &f.init_len), ==, 0);
        g_assert_cmpint(n2p_signal_read_init(&f.server, f.init, f.init_len, &f.shs, &f.info), ==, -EPERM);
}

static void test_resp_forged_then_real(void) {
        Fixture f;
        uint8_t resp[N2P_PKT_MAX], bad[N2P_PKT_MAX], status;
        size_t resp_len;
        n2p_ice_desc answer = sample_desc("srv1"), got;

        setup(&f);
        g_assert_cmpint(n2p_signal_read_init(&f.server, f.init, f.init_len, &f.shs, &f.info), ==, 0);
        g_assert_cmpint(n2p_signal_make_resp(&f.shs, 7, 0x11223344, N2P_REFUSE_OK, &answer,
                                             resp, sizeof resp, &resp_len), ==, 0);
        /* Addressed to another session. */
        g_assert_cmpint(n2p_signal_read_resp(&f.chs, 0x55555555, resp, resp_len, &status, &got), ==, -ESRCH);
        /* Tampered: refused, and the handshake state survives for the real answer. */
        memcpy(bad, resp, resp_len);
        bad[resp_len - 1] ^= 0x80;
        g_assert_cmpint(n2p_signal_read_resp(&f.chs, 0x11223344, bad, resp_len, &status, &got), ==, -EBADMSG);
        g_assert_cmpint(n2p_signal_read_resp(&f.chs, 0x11223344, resp, resp_len - 1, &status, &got), <, 0);
        g_assert_cmpint(n2p_signal_read_resp(&f.chs, 0x11223344, resp, resp_len, &status, &got), ==, 0);
        g_assert_cmpuint(status, ==, N2P_REFUSE_OK);
}

static void test_refusal(void) {
        Fixture f;
        uint8_t resp[N2P_PKT_MAX], status = 0;
        size_t resp_len;
        n2p_ice_desc got;

        setup(&f);
        g_assert_cmpint(n2p_signal_read_init(&f.server, f.init, f.init_len, &f.shs, &f.info), ==, 0);
        g_assert_cmpint(n2p_signal_make_resp(&f.shs, 7, 0x11223344, N2P_REFUSE_BUSY, NULL,
                                             resp, sizeof resp, &resp_len), ==, 0);
        g_assert_cmpint(n2p_signal_read_resp(&f.chs, 0x11223344, resp, resp_len, &status, &got), ==, 0);
        g_assert_cmpuint(status, ==, N2P_REFUSE_BUSY);
        g_assert_nonnull(strstr(n2p_refuse_reason(status), "limit"));
}

static void test_reject(void) {
        uint8_t pkt[N2P_PKT_REJECT_SIZE], reason;
        uint32_t receiver;
        n2p_signal_make_reject(0xdeadbeef, N2P_REFUSE_UNDECRYPTABLE, pkt);
        g_assert_cmpint(n2p_signal_type(pkt, sizeof pkt), ==, N2P_PKT_REJECT);
        g_assert_cmpint(n2p_signal_parse_reject(pkt, sizeof pkt, &receiver, &reason), ==, 0);
        g_assert_cmpuint(receiver, ==, 0xdeadbeef);
        g_assert_cmpuint(reason, ==, N2P_REFUSE_UNDECRYPTABLE);
        g_assert_cmpint(n2p_signal_parse_reject(pkt, sizeof pkt - 1, &receiver, &reason), ==, -EINVAL);
        pkt[0] = 9;
        g_assert_cmpint(n2p_signal_type(pkt, sizeof pkt), ==, -EINVAL);
        g_assert_cmpint(n2p_signal_type(pkt, 0), ==, -EINVAL);
}

static void test_discover(void) {
        Fixture f;
        uint8_t pkt[N2P_PKT_MAX], key[32];
        const uint8_t *init;
        size_t len, init_len;

        setup(&f);
        g_assert_cmpint(n2p_signal_make_discover(f.server.ed_public, f.init, f.init_len, pkt, sizeof pkt, &len), ==, 0);
        g_assert_cmpint(n2p_signal_type(pkt, len), ==, N2P_PKT_DISCOVER);
        g_assert_cmpint(n2p_signal_parse_discover(pkt, len, key, &init, &init_len), ==, 0);
        g_assert_cmpmem(key, 32, f.server.ed_public, 32);
        g_assert_cmpmem(init, init_len, f.init, f.init_len);
        /* What it wraps is an INIT the node reads as usual. */
        g_assert_cmpint(n2p_signal_read_init(&f.server, init, init_len, &f.shs, &f.info), ==, 0);
        for (size_t l = 0; l < N2P_PKT_DISCOVER_HEADER + N2P_PKT_INIT_HEADER; l++)
                g_assert_cmpint(n2p_signal_parse_discover(pkt, l, key, &init, &init_len), ==, -EINVAL);
        pkt[N2P_PKT_DISCOVER_HEADER] = N2P_PKT_RESP;
        g_assert_cmpint(n2p_signal_parse_discover(pkt, len, key, &init, &init_len), ==, -EINVAL);
        g_assert_cmpint(n2p_signal_make_discover(f.server.ed_public, f.init, f.init_len, pkt, 40, &len), ==, -ENOBUFS);
}

int main(int argc, char **argv) {
        g_test_init(&argc, &argv, NULL);
        g_assert_cmpint(sodium_init(), >=, 0);
        g_test_add_func("/signal/round-trip", test_round_trip);
        g_test_add_func("/signal/wrong-server-key", test_wrong_server_key);
        g_test_add_func("/signal/tampered-init", test_tampered_init);
        g_test_add_func("/signal/identity-mismatch", test_identity_mismatch);
        g_test_add_func("/signal/resp-forged-then-real", test_resp_forged_then_real);
        g_test_add_func("/signal/refusal", test_refusal);
        g_test_add_func("/signal/reject", test_reject);
        g_test_add_func("/signal/discover", test_discover);
        return g_test_run();
}
