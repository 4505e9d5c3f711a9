/* SPDX-License-Identifier: MIT */
/*
 * The link over an in-memory datagram pipe that loses, reorders and duplicates
 * datagrams, every decision drawn from a seeded generator: whatever the pipe
 * does, the bytes arrive complete, in order and once. Forged, replayed and
 * malformed datagrams are dropped without effect.
 */
#include <errno.h>
#include <string.h>

#include <glib.h>
#include <sodium.h>

#include "link.h"
#include "transport.h"
#include "util.h"

enum {
        DEADLINE_S = 60,
};

typedef struct Dgram {
        uint8_t *buf;
        size_t len;
        gint64 due;
} Dgram;

typedef struct Pipe Pipe;

typedef struct End {
        Pipe *pipe;
        n2p_link *link;
        struct End *peer;
        GQueue wire;                  /* datagrams on their way to this end */
        const uint8_t *src;           /* what this end sends */
        size_t src_len, written;
        GByteArray *got;
        GPtrArray *captured;          /* copies of datagrams sent (for replay tests) */
        unsigned writable_calls;
        bool blocked;                 /* the path refuses datagrams (-EAGAIN) */
} End;

struct Pipe {
        GRand *rng;
        double loss, dup, reorder;
        bool coalesce;                /* hand due datagrams over back to back, as UDP GRO */
        End a, b;
        guint pump;
        unsigned sent, dropped, duplicated;
};

static void dgram_free(gpointer p) {
        Dgram *d = p;
        g_free(d->buf);
        g_free(d);
}

static void enqueue(End *to, const uint8_t *buf, size_t len, gint64 due) {
        Dgram *d = g_new0(Dgram, 1);
        d->buf = g_memdup2(buf, len);
        d->len = len;
        d->due = due;
        g_queue_push_tail(&to->wire, d);
}

static ssize_t pipe_send(End *from, const uint8_t *buf, size_t len) {
        Pipe *p = from->pipe;
        gint64 now = g_get_monotonic_time(), base = 500;

        if (from->blocked)
                return -EAGAIN;
        g_assert_cmpuint(len, <=, N2P_LINK_DATAGRAM);
        p->sent++;
        if (from->captured && from->captured->len < 64)
                g_ptr_array_add(from->captured, g_byte_array_append(g_byte_array_new(), buf, (guint) len));
        if (g_rand_double(p->rng) < p->loss) {
                p->dropped++;
                return (ssize_t) len;
        }
        gint64 extra = g_rand_double(p->rng) < p->reorder ? g_rand_int_range(p->rng, 0, 3000) : 0;
        enqueue(from->peer, buf, len, now + base + extra);
        if (g_rand_double(p->rng) < p->dup) {
                p->duplicated++;
                enqueue(from->peer, buf, len, now + base + g_rand_int_range(p->rng, 0, 5000));
        }
        return (ssize_t) len;
}

static ssize_t send_a(const uint8_t *buf, size_t len, void *userdata) {
        return pipe_send(&((Pipe *) userdata)->a, buf, len);
}

static ssize_t send_b(const uint8_t *buf, size_t len, void *userdata) {
        return pipe_send(&((Pipe *) userdata)->b, buf, len);
}

static void pump_writes(End *e) {
        while (e->written < e->src_len) {
                ssize_t n = n2p_link_write(e->link, e->src + e->written, MIN(e->src_len - e->written, (size_t) 65536));
                g_assert_cmpint(n, >=, 0);
                if (n == 0)
                        break;
                e->written += (size_t) n;
        }
}

static void deliver_due(End *e) {
        gint64 now = g_get_monotonic_time();
        GList *l = e->wire.head;
        uint8_t run[65000];
        size_t run_len = 0;

        while (l) {
                GList *next = l->next;
                Dgram *d = l->data;
                if (d->due <= now) {
                        g_queue_delete_link(&e->wire, l);
                        if (!e->pipe->coalesce) {
                                (void) n2p_link_input(e->link, d->buf, d->len);
                        } else {
                                if (run_len + d->len > sizeof run) {
                                        (void) n2p_link_input(e->link, run, run_len);
                                        run_len = 0;
                                }
                                memcpy(run + run_len, d->buf, d->len);
                                run_len += d->len;
                        }
                        dgram_free(d);
                }
                l = next;
        }
        if (run_len > 0)
                (void) n2p_link_input(e->link, run, run_len);
}

static gboolean pump_cb(gpointer userdata) {
        Pipe *p = userdata;
        deliver_due(&p->a);
        deliver_due(&p->b);
        return G_SOURCE_CONTINUE;
}

static End *end_of(Pipe *p, n2p_link *l) {
        return p->a.link == l ? &p->a : &p->b;
}

static void on_recv(n2p_link *l, const uint8_t *buf, size_t len, void *userdata) {
        End *e = end_of(userdata, l);
        g_assert_nonnull(buf);
        g_assert_cmpuint(len, >, 0);
        g_byte_array_append(e->got, buf, (guint) len);
}

static void on_writable(n2p_link *l, void *userdata) {
        End *e = end_of(userdata, l);
        e->writable_calls++;
        pump_writes(e);
}

static const n2p_link_callbacks callbacks = {
        .recv = on_recv,
        .writable = on_writable,
};

static void keys(n2p_cipher *ka, n2p_cipher *kb, uint8_t seed) {
        memset(ka, 0, sizeof *ka);
        memset(kb, 0, sizeof *kb);
        for (size_t i = 0; i < sizeof ka->k; i++) {
                ka->k[i] = (uint8_t) (seed + i);
                kb->k[i] = (uint8_t) (seed * 7 + 3 * i + 1);
        }
}

/* Set before pipe_new(): end b neither opens nor seals AES-256-GCM. */
static bool b_without_aes;

static Pipe *pipe_new(guint32 seed, double loss, double dup, double reorder) {
        Pipe *p = g_new0(Pipe, 1);
        n2p_cipher ka, kb;

        p->rng = g_rand_new_with_seed(seed);
        p->loss = loss;
        p->dup = dup;
        p->reorder = reorder;
        keys(&ka, &kb, 1);
        p->a.pipe = p->b.pipe = p;
        p->a.peer = &p->b;
        p->b.peer = &p->a;
        g_queue_init(&p->a.wire);
        g_queue_init(&p->b.wire);
        p->a.link = n2p_link_new(&ka, &kb, send_a, &callbacks, p);
        p->b.link = n2p_link_new(&kb, &ka, send_b, &callbacks, p);
        g_assert_nonnull(p->a.link);
        g_assert_nonnull(p->b.link);
        if (b_without_aes)
                n2p_link_disable_aes(p->b.link);
        p->a.got = g_byte_array_new();
        p->b.got = g_byte_array_new();
        p->pump = g_timeout_add(1, pump_cb, p);
        return p;
}

static void pipe_free(Pipe *p) {
        g_source_remove(p->pump);
        p->a.link = n2p_link_free(p->a.link);
        p->b.link = n2p_link_free(p->b.link);
        g_queue_clear_full(&p->a.wire, dgram_free);
        g_queue_clear_full(&p->b.wire, dgram_free);
        g_byte_array_unref(p->a.got);
        g_byte_array_unref(p->b.got);
        if (p->a.captured)
                g_ptr_array_unref(p->a.captured);
        g_rand_free(p->rng);
        g_free(p);
}

static uint8_t *pattern(size_t len, guint32 seed) {
        uint8_t *b = g_malloc(len);
        GRand *r = g_rand_new_with_seed(seed);
        for (size_t i = 0; i < len; i += 4) {
                guint32 v = g_rand_int(r);
                memcpy(b + i, &v, MIN((size_t) 4, len - i));
        }
        g_rand_free(r);
        return b;
}

/* Runs the loop until both ends received everything or the deadline passed. */
static void run_until_done(Pipe *p) {
        gint64 deadline = g_get_monotonic_time() + DEADLINE_S * G_USEC_PER_SEC;

        while ((p->b.got->len < p->a.src_len || p->a.got->len < p->b.src_len) &&
               g_get_monotonic_time() < deadline)
                g_main_context_iteration(NULL, TRUE);
}

static void transfer(guint32 seed, double loss, double dup, double reorder, size_t a_to_b, size_t b_to_a) {
        Pipe *p = pipe_new(seed, loss, dup, reorder);
        g_autofree uint8_t *sa = pattern(a_to_b, seed), *sb = pattern(b_to_a, seed + 1000);

        p->a.src = sa;
        p->a.src_len = a_to_b;
        p->b.src = sb;
        p->b.src_len = b_to_a;
        pump_writes(&p->a);
        pump_writes(&p->b);
        run_until_done(p);

        /* complete, in order, once */
        g_assert_cmpuint(p->b.got->len, ==, a_to_b);
        g_assert_cmpuint(p->a.got->len, ==, b_to_a);
        g_assert_true(memcmp(p->b.got->data, sa, a_to_b) == 0);
        g_assert_true(b_to_a == 0 || memcmp(p->a.got->data, sb, b_to_a) == 0);
        if (loss > 0) {
                n2p_link_stats st;
                n2p_link_get_stats(p->a.link, &st);
                g_assert_cmpuint(p->dropped, >, 0);
                g_assert_cmpuint(st.bytes_retransmitted, >, 0);
        }
        if (dup > 0) {
                n2p_link_stats st;
                n2p_link_get_stats(p->b.link, &st);
                g_assert_cmpuint(p->duplicated, >, 0);
                g_assert_cmpuint(st.packets_dropped, >, 0);   /* the copies */
        }
        pipe_free(p);
}

static void test_clean(void) {
        transfer(1, 0, 0, 0, 3 * 1024 * 1024 + 17, 0);
}

static void test_both_ways(void) {
        transfer(2, 0, 0, 0, 1024 * 1024, 1024 * 1024 + 1);
}

static void test_loss(void) {
        transfer(3, 0.05, 0, 0, 2 * 1024 * 1024, 0);
}

static void test_heavy_loss(void) {
        transfer(4, 0.25, 0, 0, 256 * 1024, 64 * 1024);
}

static void test_reorder(void) {
        transfer(5, 0, 0, 0.3, 2 * 1024 * 1024, 0);
}

static void test_duplication(void) {
        transfer(6, 0, 0.2, 0, 1024 * 1024, 0);
}

static void test_everything(void) {
        for (guint32 seed = 10; seed < 13; seed++)
                transfer(seed, 0.08, 0.05, 0.2, 1024 * 1024 + seed, 300 * 1024);
}

/* Datagrams handed over back to back (as UDP GRO delivers a run of them), with
 * loss and reordering: each is split off by its length and taken on its own. */
/* a sends len pattern bytes to b; they arrive complete, in order, once. */
static void one_way(Pipe *p, size_t len, guint32 seed) {
        g_autofree uint8_t *src = pattern(len, seed);

        p->a.src = src;
        p->a.src_len = len;
        pump_writes(&p->a);
        run_until_done(p);
        g_assert_cmpuint(p->b.got->len, ==, len);
        g_assert_true(memcmp(p->b.got->data, src, len) == 0);
        p->a.src = NULL;
}

static void test_coalesced(void) {
        Pipe *p = pipe_new(14, 0.02, 0.02, 0.1);

        p->coalesce = true;
        one_way(p, 2 * 1024 * 1024, 14);
        pipe_free(p);
}

/* Both ends open AES-256-GCM (where the CPU has it): after the first ACK each
 * seals with it; the bytes are the same either way. */
static void test_cipher_agreed(void) {
        Pipe *p = pipe_new(15, 0, 0, 0);
        n2p_link_stats st;

        one_way(p, 1024 * 1024, 15);
        n2p_link_get_stats(p->a.link, &st);
        if (crypto_aead_aes256gcm_is_available()) {
                /* the first flight went out before any ACK: ChaCha20-Poly1305 */
                g_assert_cmpuint(st.packets_sent_aes, >, st.packets_sent / 2);
                g_assert_cmpuint(st.packets_sent_aes, <, st.packets_sent);
                g_assert_cmpstr(n2p_link_cipher(p->a.link), ==, "aes-256-gcm");
                /* b sent only ACKs, which nobody acknowledges: it never heard
                 * a's flag, so it still seals with ChaCha20-Poly1305 */
                g_assert_cmpstr(n2p_link_cipher(p->b.link), ==, "chacha20-poly1305");
        } else {
                g_assert_cmpuint(st.packets_sent_aes, ==, 0);
                g_assert_cmpstr(n2p_link_cipher(p->a.link), ==, "chacha20-poly1305");
        }
        g_assert_cmpuint(st.packets_dropped, ==, 0);
        n2p_link_get_stats(p->b.link, &st);
        g_assert_cmpuint(st.packets_dropped, ==, 0);
        pipe_free(p);
}

/* A peer without AES: nobody seals with it, nothing is dropped. */
static void test_cipher_peer_without_aes(void) {
        Pipe *p;
        g_autofree uint8_t *sa = pattern(1024 * 1024, 16), *sb = pattern(300 * 1024, 17);
        n2p_link_stats st;

        b_without_aes = true;
        p = pipe_new(16, 0, 0, 0);
        b_without_aes = false;
        p->a.src = sa;
        p->a.src_len = 1024 * 1024;
        p->b.src = sb;
        p->b.src_len = 300 * 1024;
        pump_writes(&p->a);
        pump_writes(&p->b);
        run_until_done(p);
        g_assert_cmpuint(p->b.got->len, ==, 1024 * 1024);
        g_assert_cmpuint(p->a.got->len, ==, 300 * 1024);
        g_assert_true(memcmp(p->b.got->data, sa, 1024 * 1024) == 0);
        g_assert_true(memcmp(p->a.got->data, sb, 300 * 1024) == 0);
        n2p_link_get_stats(p->a.link, &st);
        g_assert_cmpuint(st.packets_sent_aes, ==, 0);
        g_assert_cmpuint(st.packets_dropped, ==, 0);
        n2p_link_get_stats(p->b.link, &st);
        g_assert_cmpuint(st.packets_sent_aes, ==, 0);
        g_assert_cmpuint(st.packets_dropped, ==, 0);
        g_assert_cmpstr(n2p_link_cipher(p->a.link), ==, "chacha20-poly1305");
        g_assert_cmpstr(n2p_link_cipher(p->b.link), ==, "chacha20-poly1305");
        pipe_free(p);
}

static ssize_t swallow(const uint8_t *buf, size_t len, void *userdata) {
        (void) buf;
        (void) userdata;
        return (ssize_t) len;
}

/* A type-2 datagram sealed with the link's derived AES key opens only at an end
 * that has AES; one sealed with the session key itself opens nowhere. */
static void test_cipher_aes_datagram(void) {
        static const char ctx[crypto_kdf_CONTEXTBYTES] = "n2plink";
        n2p_cipher ka, kb;
        uint8_t k[32], npub[crypto_aead_aes256gcm_NPUBBYTES] = { 0 }, ping = N2P_LINK_FRAME_PING;
        uint8_t dg[N2P_LINK_OVERHEAD + 1];
        n2p_link *with, *without, *wrong;

        if (!crypto_aead_aes256gcm_is_available()) {
                g_test_skip("no AES-NI on this CPU");
                return;
        }
        keys(&ka, &kb, 1);
        with = n2p_link_new(&kb, &ka, swallow, NULL, NULL);
        without = n2p_link_new(&kb, &ka, swallow, NULL, NULL);
        n2p_link_disable_aes(without);
        g_assert_cmpint(crypto_kdf_derive_from_key(k, sizeof k, 2, ctx, ka.k), ==, 0);
        dg[0] = N2P_LINK_PKT_AES;
        n2p_put_be64(dg + 1, 7);
        n2p_put_be16(dg + 9, sizeof dg);
        n2p_put_be64(npub + 4, 7);
        g_assert_cmpint(crypto_aead_aes256gcm_encrypt(dg + N2P_LINK_HEADER, NULL, &ping, 1, dg,
                                                      N2P_LINK_HEADER, NULL, npub, k), ==, 0);
        g_assert_cmpint(n2p_link_input(without, dg, sizeof dg), ==, -EBADMSG);
        g_assert_cmpint(n2p_link_input(with, dg, sizeof dg), ==, 0);
        g_assert_cmpint(n2p_link_input(with, dg, sizeof dg), ==, -EBADMSG);   /* replay */

        wrong = n2p_link_new(&kb, &ka, swallow, NULL, NULL);
        g_assert_cmpint(crypto_aead_aes256gcm_encrypt(dg + N2P_LINK_HEADER, NULL, &ping, 1, dg,
                                                      N2P_LINK_HEADER, NULL, npub, ka.k), ==, 0);
        g_assert_cmpint(n2p_link_input(wrong, dg, sizeof dg), ==, -EBADMSG);
        n2p_link_free(with);
        n2p_link_free(without);
        n2p_link_free(wrong);
        sodium_memzero(k, sizeof k);
}

/* Small writes, each acknowledged before the next: the ack timer and probe
 * paths, not the window, carry the data. */
static void test_small_writes(void) {
        Pipe *p = pipe_new(7, 0.1, 0, 0);
        uint8_t msg[37];
        GByteArray *want = g_byte_array_new();

        for (unsigned i = 0; i < 40; i++) {
                gint64 deadline = g_get_monotonic_time() + 10 * G_USEC_PER_SEC;
                memset(msg, (int) i, sizeof msg);
                g_assert_cmpint(n2p_link_write(p->a.link, msg, sizeof msg), ==, sizeof msg);
                g_byte_array_append(want, msg, sizeof msg);
                while (p->b.got->len < want->len && g_get_monotonic_time() < deadline)
                        g_main_context_iteration(NULL, TRUE);
                g_assert_cmpuint(p->b.got->len, ==, want->len);
        }
        g_assert_true(memcmp(p->b.got->data, want->data, want->len) == 0);
        g_byte_array_unref(want);
        pipe_free(p);
}

/* A path that refuses datagrams for a while (-EAGAIN) loses nothing. */
static void test_path_blocked(void) {
        Pipe *p = pipe_new(8, 0, 0, 0);
        g_autofree uint8_t *src = pattern(512 * 1024, 8);
        gint64 until;

        p->a.src = src;
        p->a.src_len = 512 * 1024;
        p->a.blocked = true;
        pump_writes(&p->a);
        until = g_get_monotonic_time() + 200 * 1000;
        while (g_get_monotonic_time() < until)
                g_main_context_iteration(NULL, FALSE);
        g_assert_cmpuint(p->b.got->len, ==, 0);
        p->a.blocked = false;
        n2p_link_path_writable(p->a.link);
        run_until_done(p);
        g_assert_cmpuint(p->b.got->len, ==, 512 * 1024);
        g_assert_true(memcmp(p->b.got->data, src, 512 * 1024) == 0);
        pipe_free(p);
}

/* Captures a's first datagrams without delivering them, then plays with them. */
static Pipe *captured_pipe(void) {
        Pipe *p = pipe_new(9, 1.0, 0, 0);   /* the pipe itself delivers nothing */
        uint8_t msg[100];

        p->a.captured = g_ptr_array_new_with_free_func((GDestroyNotify) g_byte_array_unref);
        memset(msg, 'x', sizeof msg);
        g_assert_cmpint(n2p_link_write(p->a.link, msg, sizeof msg), ==, sizeof msg);
        g_assert_cmpuint(p->a.captured->len, >=, 1);
        return p;
}

static void test_forged(void) {
        Pipe *p = captured_pipe();
        GByteArray *d = g_ptr_array_index(p->a.captured, 0);
        g_autofree uint8_t *bad = g_memdup2(d->data, d->len);
        n2p_link_stats st;

        /* every single-byte change is caught: header (associated data), body, tag */
        for (size_t i = 0; i < d->len; i++) {
                bad[i] ^= 0x20;
                g_assert_cmpint(n2p_link_input(p->b.link, bad, d->len), ==, -EBADMSG);
                bad[i] ^= 0x20;
        }
        g_assert_cmpint(n2p_link_input(p->b.link, d->data, d->len - 1), ==, -EBADMSG);
        g_assert_cmpint(n2p_link_input(p->b.link, d->data, 3), ==, -EBADMSG);
        g_assert_cmpuint(p->b.got->len, ==, 0);
        n2p_link_get_stats(p->b.link, &st);
        g_assert_cmpuint(st.packets_dropped, ==, d->len + 2);
        g_assert_cmpuint(st.packets_received, ==, 0);

        /* the genuine one still goes through */
        g_assert_cmpint(n2p_link_input(p->b.link, d->data, d->len), ==, 0);
        g_assert_cmpuint(p->b.got->len, ==, 100);
        pipe_free(p);
}

static void test_replayed(void) {
        Pipe *p = captured_pipe();
        GByteArray *d = g_ptr_array_index(p->a.captured, 0);

        g_assert_cmpint(n2p_link_input(p->b.link, d->data, d->len), ==, 0);
        g_assert_cmpuint(p->b.got->len, ==, 100);
        for (int i = 0; i < 3; i++)
                g_assert_cmpint(n2p_link_input(p->b.link, d->data, d->len), ==, -EBADMSG);
        g_assert_cmpuint(p->b.got->len, ==, 100);
        pipe_free(p);
}

static void test_wrong_key(void) {
        Pipe *p = captured_pipe();
        GByteArray *d = g_ptr_array_index(p->a.captured, 0);
        n2p_cipher k1, k2;
        n2p_link *other;

        keys(&k1, &k2, 99);
        other = n2p_link_new(&k1, &k2, send_b, &callbacks, p);
        g_assert_cmpint(n2p_link_input(other, d->data, d->len), ==, -EBADMSG);
        n2p_link_free(other);

        /* The link's keys are derived, not the session's: a datagram sealed with
         * the session key itself does not open. */
        uint8_t dg[N2P_LINK_OVERHEAD + 1], ping = N2P_LINK_FRAME_PING;
        keys(&k1, &k2, 1);
        dg[0] = N2P_LINK_PKT_DATA;
        n2p_put_be64(dg + 1, 12345);
        n2p_put_be16(dg + 9, sizeof dg);
        g_assert_cmpint(n2p_cipher_encrypt_at(&k1, 12345, dg, N2P_LINK_HEADER, &ping, 1, dg + N2P_LINK_HEADER), ==, 0);
        g_assert_cmpint(n2p_link_input(p->b.link, dg, sizeof dg), ==, -EBADMSG);
        n2p_cipher_wipe(&k1);
        n2p_cipher_wipe(&k2);
        pipe_free(p);
}

/* A peer that never acknowledges cannot make us hold more than the buffer. */
static void test_send_buffer_bounded(void) {
        Pipe *p = pipe_new(10, 1.0, 0, 0);
        g_autofree uint8_t *chunk = g_malloc0(1024 * 1024);
        size_t total = 0;
        ssize_t n;

        while ((n = n2p_link_write(p->a.link, chunk, 1024 * 1024)) > 0)
                total += (size_t) n;
        g_assert_cmpint(n, ==, 0);
        g_assert_cmpuint(total, ==, N2P_LINK_BUFFER);
        g_assert_cmpuint(n2p_link_unacked(p->a.link), ==, N2P_LINK_BUFFER);
        pipe_free(p);
}

static size_t data_frame(uint8_t *f, uint64_t off, size_t len) {
        f[0] = N2P_LINK_FRAME_DATA;
        n2p_put_be64(f + 1, off);
        n2p_put_be16(f + 9, (uint16_t) len);
        memset(f + 11, 'd', len);
        return 11 + len;
}

/* Data beyond the receive window is refused; gaps cost bounded bookkeeping. */
static void test_receive_window_bounded(void) {
        Pipe *p = pipe_new(11, 1.0, 0, 0);
        uint8_t f[64];
        uint64_t pn = 0;

        g_assert_cmpint(n2p_link_deliver_plaintext(p->b.link, pn++, f, data_frame(f, N2P_LINK_BUFFER, 10)), ==, -EBADMSG);
        g_assert_cmpint(n2p_link_deliver_plaintext(p->b.link, pn++, f, data_frame(f, UINT64_MAX - 5, 10)), ==, -EBADMSG);
        /* many one-byte islands: accepted or dropped, never unbounded */
        for (unsigned i = 1; i < 5000; i++)
                g_assert_cmpint(n2p_link_deliver_plaintext(p->b.link, pn++, f, data_frame(f, (uint64_t) i * 2, 1)), ==, 0);
        g_assert_cmpuint(p->b.got->len, ==, 0);
        /* filling the first gap delivers exactly the contiguous prefix */
        g_assert_cmpint(n2p_link_deliver_plaintext(p->b.link, pn++, f, data_frame(f, 0, 2)), ==, 0);
        g_assert_cmpuint(p->b.got->len, ==, 3);
        pipe_free(p);
}

static void test_malformed(void) {
        Pipe *p = pipe_new(12, 1.0, 0, 0);
        uint8_t f[256] = {};
        uint64_t pn = 0;

        /* empty, unknown frame, truncated DATA, zero-length DATA */
        g_assert_cmpint(n2p_link_deliver_plaintext(p->b.link, pn++, f, 0), ==, -EBADMSG);
        f[0] = 0x7f;
        g_assert_cmpint(n2p_link_deliver_plaintext(p->b.link, pn++, f, 1), ==, -EBADMSG);
        data_frame(f, 0, 10);
        g_assert_cmpint(n2p_link_deliver_plaintext(p->b.link, pn++, f, 15), ==, -EBADMSG);
        data_frame(f, 0, 0);
        g_assert_cmpint(n2p_link_deliver_plaintext(p->b.link, pn++, f, 11), ==, -EBADMSG);

        /* an ACK for a packet never sent, ranges out of order, too many ranges */
        f[0] = N2P_LINK_FRAME_ACK;
        n2p_put_be64(f + 1, 0);
        n2p_put_be32(f + 9, 0);
        f[13] = 0;                      /* flags */
        f[14] = 1;
        n2p_put_be64(f + 15, 1000);
        n2p_put_be64(f + 23, 1000);
        g_assert_cmpint(n2p_link_deliver_plaintext(p->b.link, pn++, f, 31), ==, -EBADMSG);
        f[14] = 2;
        n2p_put_be64(f + 15, 0);
        n2p_put_be64(f + 23, 0);
        n2p_put_be64(f + 31, 5);
        n2p_put_be64(f + 39, 5);
        g_assert_cmpint(n2p_link_deliver_plaintext(p->b.link, pn++, f, 47), ==, -EBADMSG);
        f[14] = N2P_LINK_MAX_RANGES + 1;
        g_assert_cmpint(n2p_link_deliver_plaintext(p->b.link, pn++, f, sizeof f), ==, -EBADMSG);
        /* b sends one byte (packet 0, lost on the way): an ACK may cover that
         * byte and that packet, but claim no more */
        g_assert_cmpint(n2p_link_write(p->b.link, (const uint8_t *) "z", 1), ==, 1);
        f[14] = 1;
        n2p_put_be64(f + 15, 0);
        n2p_put_be64(f + 23, 0);
        n2p_put_be64(f + 1, 2);
        g_assert_cmpint(n2p_link_deliver_plaintext(p->b.link, pn++, f, 31), ==, -EBADMSG);
        g_assert_cmpuint(n2p_link_unacked(p->b.link), ==, 1);
        n2p_put_be64(f + 1, 1);
        g_assert_cmpint(n2p_link_deliver_plaintext(p->b.link, pn++, f, 31), ==, 0);
        g_assert_cmpuint(n2p_link_unacked(p->b.link), ==, 0);

        /* a packet number that was used already */
        f[0] = N2P_LINK_FRAME_PING;
        g_assert_cmpint(n2p_link_deliver_plaintext(p->b.link, 0, f, 1), ==, -EBADMSG);
        g_assert_cmpint(n2p_link_deliver_plaintext(p->b.link, pn++, f, 1), ==, 0);
        g_assert_cmpuint(p->b.got->len, ==, 0);
        pipe_free(p);
}

/* ---- the session's records over the link, as the programs run them ---- */

typedef struct Carried {
        Pipe *p;
        n2p_session *sa, *sb;
        n2p_stream *st;
        const uint8_t *src;
        size_t len, written;
        GByteArray *got;
        bool eof;
} Carried;

static Carried *carried;

static ssize_t carrier_a(const uint8_t *buf, size_t len, void *userdata) {
        return n2p_link_write(((Pipe *) userdata)->a.link, buf, len);
}

static ssize_t carrier_b(const uint8_t *buf, size_t len, void *userdata) {
        return n2p_link_write(((Pipe *) userdata)->b.link, buf, len);
}

static void carried_recv(n2p_link *l, const uint8_t *buf, size_t len, void *userdata) {
        Pipe *p = userdata;
        g_assert_cmpint(n2p_session_feed(l == p->a.link ? carried->sa : carried->sb, buf, len), ==, 0);
}

static void carried_writable(n2p_link *l, void *userdata) {
        Pipe *p = userdata;
        n2p_session_writable(l == p->a.link ? carried->sa : carried->sb);
}

static const n2p_link_callbacks carried_callbacks = {
        .recv = carried_recv,
        .writable = carried_writable,
};

static void carried_pump(n2p_stream *st, void *userdata) {
        Carried *c = userdata;
        while (c->written < c->len) {
                ssize_t n = n2p_stream_write(st, c->src + c->written, c->len - c->written);
                g_assert_cmpint(n, >=, 0);
                if (n == 0)
                        return;
                c->written += (size_t) n;
        }
        n2p_stream_shutdown(st);
}

static void carried_data(n2p_stream *st, const uint8_t *buf, size_t len, void *userdata) {
        Carried *c = userdata;
        g_byte_array_append(c->got, buf, (guint) len);
        n2p_stream_consumed(st, len);
}

static void carried_eof(n2p_stream *st, void *userdata) {
        ((Carried *) userdata)->eof = true;
}

static const n2p_stream_handler sender_handler = { .on_writable = carried_pump };
static const n2p_stream_handler receiver_handler = { .on_data = carried_data, .on_eof = carried_eof };

static void carried_opened(n2p_session *s, n2p_stream *st, void *userdata) {
        n2p_stream_set_handler(st, &receiver_handler, userdata);
}

static const n2p_session_callbacks carried_session_cb = { .stream_opened = carried_opened };

/* Streams over the link with records that carry no tag of their own: through
 * loss, reordering and duplication the stream's bytes arrive intact. */
static void test_session_over_link(void) {
        Carried c = {};
        Pipe *p = g_new0(Pipe, 1);
        n2p_cipher ka, kb, ka2, kb2;
        const size_t len = 3 * 1024 * 1024 + 5;
        g_autofree uint8_t *src = pattern(len, 21);
        gint64 deadline = g_get_monotonic_time() + DEADLINE_S * G_USEC_PER_SEC;

        carried = &c;
        c.p = p;
        c.src = src;
        c.len = len;
        c.got = g_byte_array_new();
        p->rng = g_rand_new_with_seed(21);
        p->loss = 0.03;
        p->dup = 0.02;
        p->reorder = 0.1;
        keys(&ka, &kb, 5);
        ka2 = ka;
        kb2 = kb;
        p->a.pipe = p->b.pipe = p;
        p->a.peer = &p->b;
        p->b.peer = &p->a;
        g_queue_init(&p->a.wire);
        g_queue_init(&p->b.wire);
        p->a.got = g_byte_array_new();
        p->b.got = g_byte_array_new();
        p->a.link = n2p_link_new(&ka, &kb, send_a, &carried_callbacks, p);
        p->b.link = n2p_link_new(&kb, &ka, send_b, &carried_callbacks, p);
        c.sa = n2p_session_new(true, &ka, &kb, carrier_a, p, &carried_session_cb, &c);
        c.sb = n2p_session_new(false, &kb2, &ka2, carrier_b, p, &carried_session_cb, &c);
        g_assert_nonnull(c.sa);
        g_assert_nonnull(c.sb);
        g_assert_cmpint(n2p_session_set_sealed_carrier(c.sa), ==, 0);
        g_assert_cmpint(n2p_session_set_sealed_carrier(c.sb), ==, 0);
        p->pump = g_timeout_add(1, pump_cb, p);

        c.st = n2p_session_open_stream(c.sa);
        g_assert_nonnull(c.st);
        n2p_stream_set_handler(c.st, &sender_handler, &c);
        /* too late to switch once a record (the OPEN) exists */
        g_assert_cmpint(n2p_session_set_sealed_carrier(c.sa), ==, -EBUSY);
        carried_pump(c.st, &c);

        while (!c.eof && g_get_monotonic_time() < deadline)
                g_main_context_iteration(NULL, TRUE);
        g_assert_true(c.eof);
        g_assert_cmpuint(c.got->len, ==, len);
        g_assert_true(memcmp(c.got->data, src, len) == 0);
        g_assert_cmpuint(p->dropped, >, 0);

        n2p_stream_release(c.st);
        c.sa = n2p_session_free(c.sa);
        c.sb = n2p_session_free(c.sb);
        g_byte_array_unref(c.got);
        carried = NULL;
        pipe_free(p);
}

int main(int argc, char **argv) {
        g_test_init(&argc, &argv, NULL);
        g_assert_cmpint(sodium_init(), >=, 0);

        g_test_add_func("/link/clean", test_clean);
        g_test_add_func("/link/both-ways", test_both_ways);
        g_test_add_func("/link/loss", test_loss);
        g_test_add_func("/link/heavy-loss", test_heavy_loss);
        g_test_add_func("/link/reorder", test_reorder);
        g_test_add_func("/link/duplication", test_duplication);
        g_test_add_func("/link/loss-reorder-duplication", test_everything);
        g_test_add_func("/link/coalesced", test_coalesced);
        g_test_add_func("/link/cipher-agreed", test_cipher_agreed);
        g_test_add_func("/link/cipher-peer-without-aes", test_cipher_peer_without_aes);
        g_test_add_func("/link/cipher-aes-datagram", test_cipher_aes_datagram);
        g_test_add_func("/link/small-writes", test_small_writes);
        g_test_add_func("/link/path-blocked", test_path_blocked);
        g_test_add_func("/link/forged", test_forged);
        g_test_add_func("/link/replayed", test_replayed);
        g_test_add_func("/link/wrong-key", test_wrong_key);
        g_test_add_func("/link/send-buffer-bounded", test_send_buffer_bounded);
        g_test_add_func("/link/receive-window-bounded", test_receive_window_bounded);
        g_test_add_func("/link/malformed", test_malformed);
        g_test_add_func("/link/session-over-link", test_session_over_link);
        return g_test_run();
}
