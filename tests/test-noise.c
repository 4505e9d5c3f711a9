/* SPDX-License-Identifier: MIT */

#include <errno.h>
#include <string.h>
#include <time.h>

#include <glib.h>
#include <sodium.h>

#include "noise.h"
#include "util.h"
#include "wire.h"

#define PROLOGUE ((const uint8_t *) N2P_NOISE_PROLOGUE)
#define PROLOGUE_LEN (sizeof(N2P_NOISE_PROLOGUE) - 1)

static const uint8_t payload1[] = "client hello: tai64n, key, ICE description";
static const uint8_t payload2[] = "\0server answer";

typedef struct peers {
        uint8_t i_priv[32], i_pub[32];
        uint8_t r_priv[32], r_pub[32];
        n2p_handshake ini, res;
        uint8_t msg1[sizeof payload1 + N2P_NOISE_MSG1_OVERHEAD];
        size_t msg1_len;
        uint8_t msg2[sizeof payload2 + N2P_NOISE_MSG2_OVERHEAD];
        size_t msg2_len;
} peers;

static void keypair(uint8_t priv[32], uint8_t pub[32]) {
        randombytes_buf(priv, 32);
        g_assert_cmpint(crypto_scalarmult_base(pub, priv), ==, 0);
}

/* Fresh keys and both sides initialised; nothing sent yet. */
static void peers_init(peers *p) {
        memset(p, 0, sizeof *p);
        keypair(p->i_priv, p->i_pub);
        keypair(p->r_priv, p->r_pub);
        g_assert_cmpint(n2p_noise_init(&p->ini, N2P_NOISE_INITIATOR, p->i_priv, p->i_pub, p->r_pub,
                                       PROLOGUE, PROLOGUE_LEN), ==, 0);
        g_assert_cmpint(n2p_noise_init(&p->res, N2P_NOISE_RESPONDER, p->r_priv, p->r_pub, NULL,
                                       PROLOGUE, PROLOGUE_LEN), ==, 0);
}

static void write_msg1(peers *p) {
        g_assert_cmpint(n2p_noise_write_message(&p->ini, payload1, sizeof payload1, p->msg1,
                                                sizeof p->msg1, &p->msg1_len), ==, 0);
        g_assert_cmpuint(p->msg1_len, ==, sizeof p->msg1);
        g_assert_cmpint(p->ini.state, ==, N2P_NOISE_READ_MSG2);
}

static void read_msg1(peers *p) {
        uint8_t buf[sizeof payload1];
        size_t len = 0;

        g_assert_cmpint(n2p_noise_read_message(&p->res, p->msg1, p->msg1_len, buf, sizeof buf, &len),
                        ==, 0);
        g_assert_cmpmem(buf, len, payload1, sizeof payload1);
        g_assert_cmpmem(p->res.rs, 32, p->i_pub, 32);
        g_assert_cmpint(p->res.state, ==, N2P_NOISE_WRITE_MSG2);
}

static void write_msg2(peers *p) {
        g_assert_cmpint(n2p_noise_write_message(&p->res, payload2, sizeof payload2, p->msg2,
                                                sizeof p->msg2, &p->msg2_len), ==, 0);
        g_assert_cmpuint(p->msg2_len, ==, sizeof p->msg2);
        g_assert_cmpint(p->res.state, ==, N2P_NOISE_SPLIT);
}

static void read_msg2(peers *p) {
        uint8_t buf[sizeof payload2];
        size_t len = 0;

        g_assert_cmpint(n2p_noise_read_message(&p->ini, p->msg2, p->msg2_len, buf, sizeof buf, &len),
                        ==, 0);
        g_assert_cmpmem(buf, len, payload2, sizeof payload2);
        g_assert_cmpint(p->ini.state, ==, N2P_NOISE_SPLIT);
}

/* Field by field (struct padding is not copied reliably): everything but the
 * state, to show a rejected message changed nothing else. */
static void assert_same_but_state(const n2p_handshake *a, const n2p_handshake *b) {
        g_assert_cmpint(a->role, ==, b->role);
        g_assert_cmpmem(a->h, sizeof a->h, b->h, sizeof b->h);
        g_assert_cmpmem(a->ck, sizeof a->ck, b->ck, sizeof b->ck);
        g_assert_cmpmem(a->k, sizeof a->k, b->k, sizeof b->k);
        g_assert_cmpuint(a->n, ==, b->n);
        g_assert_cmpint(a->has_k, ==, b->has_k);
        g_assert_cmpmem(a->s_pub, 32, b->s_pub, 32);
        g_assert_cmpmem(a->s_priv, 32, b->s_priv, 32);
        g_assert_cmpmem(a->e_pub, 32, b->e_pub, 32);
        g_assert_cmpmem(a->e_priv, 32, b->e_priv, 32);
        g_assert_cmpint(a->has_e, ==, b->has_e);
        g_assert_cmpmem(a->rs, 32, b->rs, 32);
        g_assert_cmpmem(a->re, 32, b->re, 32);
}

static void assert_same(const n2p_handshake *a, const n2p_handshake *b) {
        g_assert_cmpint(a->state, ==, b->state);
        assert_same_but_state(a, b);
}

static void split_both(peers *p, n2p_cipher *is, n2p_cipher *ir, n2p_cipher *rs, n2p_cipher *rr) {
        g_assert_cmpint(n2p_noise_split(&p->ini, is, ir), ==, 0);
        g_assert_cmpint(n2p_noise_split(&p->res, rs, rr), ==, 0);
}

static void test_handshake(void) {
        peers p;
        n2p_cipher is, ir, rs, rr;

        peers_init(&p);
        write_msg1(&p);
        read_msg1(&p);
        write_msg2(&p);
        read_msg2(&p);
        g_assert_cmpmem(n2p_noise_handshake_hash(&p.ini), N2P_NOISE_HASHLEN,
                        n2p_noise_handshake_hash(&p.res), N2P_NOISE_HASHLEN);
        split_both(&p, &is, &ir, &rs, &rr);
        g_assert_cmpmem(is.k, sizeof is.k, rr.k, sizeof rr.k);
        g_assert_cmpmem(ir.k, sizeof ir.k, rs.k, sizeof rs.k);
        g_assert_true(memcmp(is.k, ir.k, sizeof is.k) != 0);

        for (unsigned i = 0; i < 8; i++) {
                uint8_t msg[64], ct[64 + N2P_NOISE_TAGLEN], pt[64];
                n2p_cipher *enc = i % 2 ? &rs : &is, *dec = i % 2 ? &ir : &rr;

                randombytes_buf(msg, sizeof msg);
                g_assert_cmpint(n2p_cipher_encrypt(enc, NULL, 0, msg, sizeof msg, ct), ==, 0);
                g_assert_cmpint(n2p_cipher_decrypt(dec, NULL, 0, ct, sizeof ct, pt), ==, 0);
                g_assert_cmpmem(pt, sizeof pt, msg, sizeof msg);
        }
        g_assert_cmpuint(is.n, ==, 4);
        g_assert_cmpuint(rr.n, ==, 4);
        g_assert_cmpuint(rs.n, ==, 4);
        g_assert_cmpuint(ir.n, ==, 4);
}

static void test_empty_payloads(void) {
        peers p;
        uint8_t m1[N2P_NOISE_MSG1_OVERHEAD], m2[N2P_NOISE_MSG2_OVERHEAD];
        size_t len = 1;

        peers_init(&p);
        g_assert_cmpint(n2p_noise_write_message(&p.ini, NULL, 0, m1, sizeof m1, &len), ==, 0);
        g_assert_cmpuint(len, ==, sizeof m1);
        g_assert_cmpint(n2p_noise_read_message(&p.res, m1, sizeof m1, NULL, 0, &len), ==, 0);
        g_assert_cmpuint(len, ==, 0);
        g_assert_cmpint(n2p_noise_write_message(&p.res, NULL, 0, m2, sizeof m2, &len), ==, 0);
        g_assert_cmpuint(len, ==, sizeof m2);
        g_assert_cmpint(n2p_noise_read_message(&p.ini, m2, sizeof m2, NULL, 0, &len), ==, 0);
        g_assert_cmpuint(len, ==, 0);
        g_assert_cmpint(p.ini.state, ==, N2P_NOISE_SPLIT);
}

static void test_wrong_responder_key(void) {
        peers p;
        n2p_handshake other;
        uint8_t priv[32], pub[32], buf[sizeof payload1];
        size_t len = 0;

        peers_init(&p);
        write_msg1(&p);
        keypair(priv, pub);
        g_assert_cmpint(n2p_noise_init(&other, N2P_NOISE_RESPONDER, priv, pub, NULL,
                                       PROLOGUE, PROLOGUE_LEN), ==, 0);
        g_assert_cmpint(n2p_noise_read_message(&other, p.msg1, p.msg1_len, buf, sizeof buf, &len),
                        ==, -EBADMSG);
        g_assert_cmpint(other.state, ==, N2P_NOISE_FAILED);
        g_assert_cmpuint(len, ==, 0);
}

static void test_prologue_mismatch(void) {
        peers p;
        uint8_t buf[sizeof payload1];
        size_t len;

        peers_init(&p);
        write_msg1(&p);
        g_assert_cmpint(n2p_noise_init(&p.res, N2P_NOISE_RESPONDER, p.r_priv, p.r_pub, NULL,
                                       (const uint8_t *) "n2p/2", 5), ==, 0);
        g_assert_cmpint(n2p_noise_read_message(&p.res, p.msg1, p.msg1_len, buf, sizeof buf, &len),
                        ==, -EBADMSG);
}

static void test_msg1_bitflip(void) {
        peers p;

        peers_init(&p);
        write_msg1(&p);
        for (size_t pos = 0; pos < p.msg1_len; pos++) {
                uint8_t bad[sizeof p.msg1], buf[sizeof payload1];
                n2p_handshake r = p.res;
                size_t len;

                memcpy(bad, p.msg1, p.msg1_len);
                bad[pos] ^= 0x01;
                g_assert_cmpint(n2p_noise_read_message(&r, bad, p.msg1_len, buf, sizeof buf, &len),
                                ==, -EBADMSG);
                g_assert_cmpint(r.state, ==, N2P_NOISE_FAILED);
        }
}

static void test_msg2_bitflip(void) {
        peers p;

        peers_init(&p);
        write_msg1(&p);
        read_msg1(&p);
        write_msg2(&p);
        for (size_t pos = 0; pos < p.msg2_len; pos++) {
                uint8_t bad[sizeof p.msg2], buf[sizeof payload2];
                n2p_handshake i = p.ini;
                size_t len;

                memcpy(bad, p.msg2, p.msg2_len);
                bad[pos] ^= 0x80;
                g_assert_cmpint(n2p_noise_read_message(&i, bad, p.msg2_len, buf, sizeof buf, &len),
                                ==, -EBADMSG);
                g_assert_cmpint(i.state, ==, N2P_NOISE_FAILED);
        }
}

static void test_truncated(void) {
        peers p;

        peers_init(&p);
        write_msg1(&p);
        for (size_t n = 0; n < p.msg1_len; n++) {
                n2p_handshake r = p.res;
                uint8_t buf[sizeof payload1];
                size_t len;

                g_assert_cmpint(n2p_noise_read_message(&r, p.msg1, n, buf, sizeof buf, &len),
                                ==, -EBADMSG);
                g_assert_cmpint(r.state, ==, N2P_NOISE_FAILED);
        }

        read_msg1(&p);
        write_msg2(&p);
        for (size_t n = 0; n < p.msg2_len; n++) {
                n2p_handshake i = p.ini;
                uint8_t buf[sizeof payload2];
                size_t len;

                g_assert_cmpint(n2p_noise_read_message(&i, p.msg2, n, buf, sizeof buf, &len),
                                ==, -EBADMSG);
                g_assert_cmpint(i.state, ==, N2P_NOISE_FAILED);
        }
}

static void test_oversized(void) {
        peers p;
        size_t len;
        g_autofree uint8_t *big = g_malloc0(N2P_NOISE_MAX_MESSAGE + 1);
        g_autofree uint8_t *out = g_malloc0(N2P_NOISE_MAX_MESSAGE + 1);

        peers_init(&p);
        /* A payload that would make the message exceed the Noise limit. */
        g_assert_cmpint(n2p_noise_write_message(&p.ini, big, N2P_NOISE_MAX_MESSAGE, out,
                                                N2P_NOISE_MAX_MESSAGE + 1, &len), ==, -EINVAL);
        g_assert_cmpint(p.ini.state, ==, N2P_NOISE_WRITE_MSG1);
        g_assert_cmpint(n2p_noise_read_message(&p.res, big, N2P_NOISE_MAX_MESSAGE + 1, out,
                                               N2P_NOISE_MAX_MESSAGE + 1, &len), ==, -EBADMSG);
        g_assert_cmpint(p.res.state, ==, N2P_NOISE_FAILED);
}

static void test_small_buffers(void) {
        peers p;
        n2p_handshake before;
        uint8_t buf[sizeof payload1];
        size_t len;

        peers_init(&p);
        before = p.ini;
        g_assert_cmpint(n2p_noise_write_message(&p.ini, payload1, sizeof payload1, p.msg1,
                                                sizeof p.msg1 - 1, &len), ==, -EINVAL);
        assert_same(&p.ini, &before);

        write_msg1(&p);
        before = p.res;
        g_assert_cmpint(n2p_noise_read_message(&p.res, p.msg1, p.msg1_len, buf, sizeof buf - 1, &len),
                        ==, -EINVAL);
        assert_same(&p.res, &before);
        /* The caller may retry with a buffer that fits. */
        read_msg1(&p);
}

static void test_wrong_state(void) {
        peers p;
        n2p_cipher a, b;
        uint8_t buf[256] = {};
        size_t len;

        peers_init(&p);
        /* initiator must write first, responder must read first */
        g_assert_cmpint(n2p_noise_read_message(&p.ini, buf, 200, buf, sizeof buf, &len), ==, -EINVAL);
        g_assert_cmpint(p.ini.state, ==, N2P_NOISE_WRITE_MSG1);
        g_assert_cmpint(n2p_noise_write_message(&p.res, NULL, 0, buf, sizeof buf, &len), ==, -EINVAL);
        g_assert_cmpint(p.res.state, ==, N2P_NOISE_READ_MSG1);
        g_assert_cmpint(n2p_noise_split(&p.ini, &a, &b), ==, -EINVAL);

        write_msg1(&p);
        g_assert_cmpint(n2p_noise_write_message(&p.ini, NULL, 0, buf, sizeof buf, &len), ==, -EINVAL);
        read_msg1(&p);
        g_assert_cmpint(n2p_noise_read_message(&p.res, p.msg1, p.msg1_len, buf, sizeof buf, &len),
                        ==, -EINVAL);
        write_msg2(&p);
        g_assert_cmpint(n2p_noise_write_message(&p.res, NULL, 0, buf, sizeof buf, &len), ==, -EINVAL);
        g_assert_cmpint(n2p_noise_read_message(&p.res, p.msg2, p.msg2_len, buf, sizeof buf, &len),
                        ==, -EINVAL);
        g_assert_cmpint(p.res.state, ==, N2P_NOISE_SPLIT);

        /* a failed handshake stays failed */
        p.ini.state = N2P_NOISE_FAILED;
        g_assert_cmpint(n2p_noise_read_message(&p.ini, p.msg2, p.msg2_len, buf, sizeof buf, &len),
                        ==, -EINVAL);
        g_assert_cmpint(n2p_noise_split(&p.ini, &a, &b), ==, -EINVAL);
}

static void test_failed_read_keeps_state_msg1(void) {
        peers p;
        n2p_handshake before;
        uint8_t bad[sizeof p.msg1], buf[sizeof payload1];
        size_t len;

        peers_init(&p);
        write_msg1(&p);
        memcpy(bad, p.msg1, p.msg1_len);
        bad[p.msg1_len - 1] ^= 0xff;    /* only the payload tag: every earlier step passes */

        before = p.res;
        g_assert_cmpint(n2p_noise_read_message(&p.res, bad, p.msg1_len, buf, sizeof buf, &len),
                        ==, -EBADMSG);
        g_assert_cmpint(p.res.state, ==, N2P_NOISE_FAILED);
        assert_same_but_state(&p.res, &before);

        p.res.state = N2P_NOISE_READ_MSG1;
        read_msg1(&p);
        write_msg2(&p);
        read_msg2(&p);
        g_assert_cmpmem(n2p_noise_handshake_hash(&p.ini), N2P_NOISE_HASHLEN,
                        n2p_noise_handshake_hash(&p.res), N2P_NOISE_HASHLEN);
}

static void test_failed_read_keeps_state_msg2(void) {
        peers p;
        n2p_handshake before;
        uint8_t bad[sizeof p.msg2], buf[sizeof payload2];
        size_t len;

        peers_init(&p);
        write_msg1(&p);
        read_msg1(&p);
        write_msg2(&p);
        memcpy(bad, p.msg2, p.msg2_len);
        bad[p.msg2_len - 1] ^= 0xff;

        before = p.ini;
        g_assert_cmpint(n2p_noise_read_message(&p.ini, bad, p.msg2_len, buf, sizeof buf, &len),
                        ==, -EBADMSG);
        assert_same_but_state(&p.ini, &before);

        p.ini.state = N2P_NOISE_READ_MSG2;
        read_msg2(&p);
        g_assert_cmpmem(n2p_noise_handshake_hash(&p.ini), N2P_NOISE_HASHLEN,
                        n2p_noise_handshake_hash(&p.res), N2P_NOISE_HASHLEN);
}

static void test_low_order_keys(void) {
        peers p;
        n2p_handshake ini;
        uint8_t zero[32] = {}, out[N2P_NOISE_MSG1_OVERHEAD], bad[sizeof p.msg1], buf[sizeof payload1];
        size_t len;

        peers_init(&p);
        /* a remote static key of low order gives an all-zero DH: refuse to use it */
        g_assert_cmpint(n2p_noise_init(&ini, N2P_NOISE_INITIATOR, p.i_priv, p.i_pub, zero,
                                       NULL, 0), ==, 0);
        g_assert_cmpint(n2p_noise_write_message(&ini, NULL, 0, out, sizeof out, &len), ==, -EBADMSG);
        g_assert_cmpint(ini.state, ==, N2P_NOISE_FAILED);

        write_msg1(&p);
        memcpy(bad, p.msg1, p.msg1_len);
        memset(bad, 0, 32);     /* ephemeral = the zero point */
        g_assert_cmpint(n2p_noise_read_message(&p.res, bad, p.msg1_len, buf, sizeof buf, &len),
                        ==, -EBADMSG);
}

static void test_init_checks(void) {
        n2p_handshake hs;
        uint8_t priv[32], pub[32], other[32];

        keypair(priv, pub);
        memcpy(other, pub, 32);
        other[0] ^= 1;
        g_assert_cmpint(n2p_noise_init(&hs, N2P_NOISE_RESPONDER, priv, other, NULL, NULL, 0),
                        ==, -EINVAL);
        g_assert_cmpint(n2p_noise_init(&hs, N2P_NOISE_INITIATOR, priv, pub, NULL, NULL, 0),
                        ==, -EINVAL);
        g_assert_cmpint(n2p_noise_init(&hs, N2P_NOISE_RESPONDER, priv, pub, NULL, NULL, 3),
                        ==, -EINVAL);
        g_assert_cmpint(n2p_noise_init(&hs, N2P_NOISE_RESPONDER, priv, pub, NULL, NULL, 0), ==, 0);
        g_assert_cmpint(hs.state, ==, N2P_NOISE_READ_MSG1);
}

static void test_injected_ephemeral(void) {
        peers p;
        n2p_handshake again;
        uint8_t e[32], e_pub[32], out[sizeof p.msg1];
        size_t len;

        peers_init(&p);
        keypair(e, e_pub);
        again = p.ini;
        n2p_noise_set_ephemeral(&p.ini, e);
        n2p_noise_set_ephemeral(&again, e);
        write_msg1(&p);
        g_assert_cmpmem(p.msg1, 32, e_pub, 32);
        g_assert_cmpint(n2p_noise_write_message(&again, payload1, sizeof payload1, out, sizeof out,
                                                &len), ==, 0);
        g_assert_cmpmem(out, len, p.msg1, p.msg1_len);
}

static void test_split_wipes(void) {
        peers p;
        n2p_cipher a, b;
        uint8_t zero[N2P_NOISE_HASHLEN] = {};

        peers_init(&p);
        write_msg1(&p);
        read_msg1(&p);
        write_msg2(&p);
        g_assert_cmpint(n2p_noise_split(&p.res, &a, &b), ==, 0);
        g_assert_cmpint(p.res.state, ==, N2P_NOISE_FAILED);
        g_assert_cmpmem(p.res.ck, sizeof p.res.ck, zero, sizeof zero);
        g_assert_cmpmem(p.res.s_priv, sizeof p.res.s_priv, zero, sizeof p.res.s_priv);
        g_assert_cmpmem(p.res.e_priv, sizeof p.res.e_priv, zero, sizeof p.res.e_priv);
        g_assert_cmpint(n2p_noise_split(&p.res, &a, &b), ==, -EINVAL);
}

static void handshake_and_split(n2p_cipher *is, n2p_cipher *ir, n2p_cipher *rs, n2p_cipher *rr) {
        peers p;

        peers_init(&p);
        write_msg1(&p);
        read_msg1(&p);
        write_msg2(&p);
        read_msg2(&p);
        split_both(&p, is, ir, rs, rr);
}

static void test_transport_tamper(void) {
        n2p_cipher is, ir, rs, rr;
        uint8_t msg[100], ct[sizeof msg + N2P_NOISE_TAGLEN], pt[sizeof msg];
        const uint8_t ad[] = "header";

        handshake_and_split(&is, &ir, &rs, &rr);
        randombytes_buf(msg, sizeof msg);
        g_assert_cmpint(n2p_cipher_encrypt(&is, ad, sizeof ad, msg, sizeof msg, ct), ==, 0);

        for (size_t pos = 0; pos < sizeof ct; pos++) {
                ct[pos] ^= 0x04;
                g_assert_cmpint(n2p_cipher_decrypt(&rr, ad, sizeof ad, ct, sizeof ct, pt), ==, -EBADMSG);
                g_assert_cmpuint(rr.n, ==, 0);
                ct[pos] ^= 0x04;
        }
        /* wrong associated data, truncated */
        g_assert_cmpint(n2p_cipher_decrypt(&rr, ad, sizeof ad - 1, ct, sizeof ct, pt), ==, -EBADMSG);
        g_assert_cmpint(n2p_cipher_decrypt(&rr, ad, sizeof ad, ct, N2P_NOISE_TAGLEN - 1, pt),
                        ==, -EBADMSG);
        g_assert_cmpuint(rr.n, ==, 0);

        g_assert_cmpint(n2p_cipher_decrypt(&rr, ad, sizeof ad, ct, sizeof ct, pt), ==, 0);
        g_assert_cmpmem(pt, sizeof pt, msg, sizeof msg);
        g_assert_cmpuint(rr.n, ==, 1);
        /* a replay of the same record no longer decrypts */
        g_assert_cmpint(n2p_cipher_decrypt(&rr, ad, sizeof ad, ct, sizeof ct, pt), ==, -EBADMSG);
        g_assert_cmpuint(rr.n, ==, 1);
}

static void test_explicit_nonce(void) {
        n2p_cipher is, ir, rs, rr;
        uint8_t msg[40], ct[sizeof msg + N2P_NOISE_TAGLEN], pt[sizeof msg];

        handshake_and_split(&is, &ir, &rs, &rr);
        randombytes_buf(msg, sizeof msg);
        g_assert_cmpint(n2p_cipher_encrypt_at(&rs, 12345, NULL, 0, msg, sizeof msg, ct), ==, 0);
        g_assert_cmpint(n2p_cipher_decrypt_at(&ir, 12344, NULL, 0, ct, sizeof ct, pt), ==, -EBADMSG);
        g_assert_cmpint(n2p_cipher_decrypt_at(&ir, 12346, NULL, 0, ct, sizeof ct, pt), ==, -EBADMSG);
        g_assert_cmpint(n2p_cipher_decrypt_at(&ir, 12345, NULL, 0, ct, sizeof ct, pt), ==, 0);
        g_assert_cmpmem(pt, sizeof pt, msg, sizeof msg);
        /* the explicit-nonce calls leave the implicit counters alone */
        g_assert_cmpuint(rs.n, ==, 0);
        g_assert_cmpuint(ir.n, ==, 0);

        /* the implicit and explicit forms agree on the nonce encoding */
        rs.n = 7;
        g_assert_cmpint(n2p_cipher_encrypt(&rs, NULL, 0, msg, sizeof msg, ct), ==, 0);
        g_assert_cmpint(n2p_cipher_decrypt_at(&ir, 7, NULL, 0, ct, sizeof ct, pt), ==, 0);
        g_assert_cmpmem(pt, sizeof pt, msg, sizeof msg);

        /* in-place */
        memcpy(ct, msg, sizeof msg);
        g_assert_cmpint(n2p_cipher_encrypt_at(&rs, 1, NULL, 0, ct, sizeof msg, ct), ==, 0);
        g_assert_cmpint(n2p_cipher_decrypt_at(&ir, 1, NULL, 0, ct, sizeof ct, ct), ==, 0);
        g_assert_cmpmem(ct, sizeof msg, msg, sizeof msg);
}

static void test_nonce_exhausted(void) {
        n2p_cipher is, ir, rs, rr;
        uint8_t msg[8] = {}, ct[sizeof msg + N2P_NOISE_TAGLEN], pt[sizeof msg];

        handshake_and_split(&is, &ir, &rs, &rr);
        is.n = UINT64_MAX - 1;
        g_assert_cmpint(n2p_cipher_encrypt(&is, NULL, 0, msg, sizeof msg, ct), ==, 0);
        g_assert_cmpuint(is.n, ==, UINT64_MAX);
        g_assert_cmpint(n2p_cipher_encrypt(&is, NULL, 0, msg, sizeof msg, ct), ==, -EOVERFLOW);
        g_assert_cmpuint(is.n, ==, UINT64_MAX);
        g_assert_cmpint(n2p_cipher_encrypt_at(&is, UINT64_MAX, NULL, 0, msg, sizeof msg, ct),
                        ==, -EOVERFLOW);
        rr.n = UINT64_MAX;
        g_assert_cmpint(n2p_cipher_decrypt(&rr, NULL, 0, ct, sizeof ct, pt), ==, -EOVERFLOW);
        g_assert_cmpint(n2p_cipher_decrypt_at(&rr, UINT64_MAX, NULL, 0, ct, sizeof ct, pt),
                        ==, -EBADMSG);

        n2p_cipher_wipe(&is);
        g_assert_true(sodium_is_zero(is.k, sizeof is.k));
        n2p_cipher_wipe(NULL);
        n2p_noise_wipe(NULL);
}

static void test_tai64n(void) {
        uint8_t prev[12], cur[12];
        uint64_t sec;

        n2p_tai64n_now(prev);
        sec = n2p_get_be64(prev);
        g_assert_cmpuint(sec, >=, (UINT64_C(1) << 62) + (uint64_t) time(NULL) - 1);
        g_assert_cmpuint(sec, <=, (UINT64_C(1) << 62) + (uint64_t) time(NULL));
        g_assert_cmpuint(n2p_get_be32(prev + 8), <, 1000000000u);

        for (unsigned i = 0; i < 1000; i++) {
                n2p_tai64n_now(cur);
                g_assert_cmpint(memcmp(cur, prev, sizeof cur), >, 0);
                g_assert_cmpuint(n2p_get_be32(cur + 8), <, 1000000000u);
                memcpy(prev, cur, sizeof cur);
        }
}

int main(int argc, char **argv) {
        g_test_init(&argc, &argv, NULL);
        g_assert_cmpint(sodium_init(), >=, 0);

        g_test_add_func("/noise/handshake", test_handshake);
        g_test_add_func("/noise/empty-payloads", test_empty_payloads);
        g_test_add_func("/noise/wrong-responder-key", test_wrong_responder_key);
        g_test_add_func("/noise/prologue-mismatch", test_prologue_mismatch);
        g_test_add_func("/noise/msg1-bitflip", test_msg1_bitflip);
        g_test_add_func("/noise/msg2-bitflip", test_msg2_bitflip);
        g_test_add_func("/noise/truncated", test_truncated);
        g_test_add_func("/noise/oversized", test_oversized);
        g_test_add_func("/noise/small-buffers", test_small_buffers);
        g_test_add_func("/noise/wrong-state", test_wrong_state);
        g_test_add_func("/noise/failed-read-keeps-state/msg1", test_failed_read_keeps_state_msg1);
        g_test_add_func("/noise/failed-read-keeps-state/msg2", test_failed_read_keeps_state_msg2);
        g_test_add_func("/noise/low-order-keys", test_low_order_keys);
        g_test_add_func("/noise/init-checks", test_init_checks);
        g_test_add_func("/noise/injected-ephemeral", test_injected_ephemeral);
        g_test_add_func("/noise/split-wipes", test_split_wipes);
        g_test_add_func("/cipher/tamper", test_transport_tamper);
        g_test_add_func("/cipher/explicit-nonce", test_explicit_nonce);
        g_test_add_func("/cipher/nonce-exhausted", test_nonce_exhausted);
        g_test_add_func("/tai64n/increasing", test_tai64n);

        return g_test_run();
}
