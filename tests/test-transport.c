/* SPDX-License-Identifier: MIT */
/*
 * Two sessions over an in-memory carrier that delivers from the main loop in
 * chosen chunk sizes and takes only a bounded number of bytes at a time, so
 * records arrive split anywhere and senders see short writes. Raw tests drive a
 * single session with frames (n2p_session_deliver_frame) or sealed records and
 * read back what it sent with a copy of its cipher.
 */
#include <errno.h>
#include <string.h>

#include <glib.h>
#include <sodium.h>

#include "transport.h"
#include "util.h"

#define MIB (1024u * 1024u)
/* the bound transport.c promises for control frames beyond the data buffer */
#define CONTROL_ALLOWANCE (32u * 1024u + 64u)

/* ---- carrier ---- */

typedef struct pipe_end {
        n2p_session *self;              /* session that sends through this end */
        n2p_session **peer;             /* session fed from it */
        uint8_t *buf;
        size_t off, len, capacity;
        size_t chunk;                   /* 0: random sizes, else fixed */
        GRand *rand;
        guint idle;
        bool want_writable;
        bool fail;                      /* carrier error on send */
        bool blackhole;                 /* accept and lose everything (a vanished peer) */
        int feed_error;
        size_t max_queued_seen;         /* sender's session queue, sampled at each send */
} pipe_end;

static gboolean pipe_deliver(gpointer userdata);

static ssize_t pipe_send(const uint8_t *data, size_t len, void *userdata) {
        pipe_end *e = userdata;
        size_t n;

        if (e->self)
                e->max_queued_seen = MAX(e->max_queued_seen, n2p_session_send_queued(e->self));
        if (e->fail)
                return -EPIPE;
        if (e->off > 0 && e->off + e->len + len > e->capacity) {
                memmove(e->buf, e->buf + e->off, e->len);
                e->off = 0;
        }
        n = MIN(len, e->capacity - e->len);
        memcpy(e->buf + e->off + e->len, data, n);
        e->len += n;
        if (n < len)
                e->want_writable = true;
        if (n > 0 && e->idle == 0)
                e->idle = g_idle_add(pipe_deliver, e);
        return n == 0 ? -EAGAIN : (ssize_t) n;
}

static gboolean pipe_deliver(gpointer userdata) {
        pipe_end *e = userdata;
        size_t budget = 256 * 1024;

        while (e->len > 0 && budget > 0) {
                size_t c = e->chunk ? e->chunk : (size_t) g_rand_int_range(e->rand, 1, 3000);
                int r = 0;

                c = MIN(MIN(c, e->len), budget);
                if (*e->peer && e->feed_error == 0 && !e->blackhole)
                        r = n2p_session_feed(*e->peer, e->buf + e->off, c);
                if (r < 0)
                        e->feed_error = r;
                e->off += c;
                e->len -= c;
                budget -= c;
        }
        if (e->len == 0)
                e->off = 0;
        if (e->want_writable && e->len < e->capacity) {
                e->want_writable = false;
                if (e->self)
                        n2p_session_writable(e->self);
        }
        if (e->len > 0)
                return G_SOURCE_CONTINUE;
        e->idle = 0;
        return G_SOURCE_REMOVE;
}

static void pipe_init(pipe_end *e, n2p_session **peer, size_t chunk, size_t capacity, uint32_t seed) {
        *e = (pipe_end) {
                .peer = peer,
                .chunk = chunk,
                .capacity = capacity,
                .buf = g_malloc(capacity),
                .rand = g_rand_new_with_seed(seed),
        };
}

static void pipe_done(pipe_end *e) {
        if (e->idle)
                g_source_remove(e->idle);
        g_free(e->buf);
        g_rand_free(e->rand);
}

/* ---- session pair ---- */

static void fixed_cipher(n2p_cipher *c, uint8_t fill) {
        memset(c->k, fill, sizeof c->k);
        c->n = 0;
}

typedef struct pair pair;
typedef void (*opened_fn)(pair *p, n2p_session *s, n2p_stream *st);

struct pair {
        n2p_session *a, *b;             /* a = initiator */
        pipe_end ab, ba;
        opened_fn opened;
        bool a_closed, b_closed;
        int a_error, b_error;
        unsigned a_opened, b_opened;
        void *data;
};

static void pair_stream_opened(n2p_session *s, n2p_stream *st, void *userdata) {
        pair *p = userdata;

        if (s == p->a)
                p->a_opened++;
        else
                p->b_opened++;
        if (p->opened)
                p->opened(p, s, st);
}

static void pair_closed(n2p_session *s, int error, void *userdata) {
        pair *p = userdata;

        if (s == p->a) {
                g_assert_false(p->a_closed);
                p->a_closed = true;
                p->a_error = error;
        } else {
                g_assert_false(p->b_closed);
                p->b_closed = true;
                p->b_error = error;
        }
}

static const n2p_session_callbacks pair_callbacks = {
        .stream_opened = pair_stream_opened,
        .closed = pair_closed,
};

static void pair_init(pair *p, size_t chunk, size_t capacity, opened_fn opened) {
        n2p_cipher k1, k2, k3, k4;

        *p = (pair) { .opened = opened };
        fixed_cipher(&k1, 0x11);
        fixed_cipher(&k2, 0x22);
        fixed_cipher(&k3, 0x22);
        fixed_cipher(&k4, 0x11);
        pipe_init(&p->ab, &p->b, chunk, capacity, 1);
        pipe_init(&p->ba, &p->a, chunk, capacity, 2);
        p->a = n2p_session_new(true, &k1, &k2, pipe_send, &p->ab, &pair_callbacks, p);
        p->b = n2p_session_new(false, &k3, &k4, pipe_send, &p->ba, &pair_callbacks, p);
        g_assert_nonnull(p->a);
        g_assert_nonnull(p->b);
        p->ab.self = p->a;
        p->ba.self = p->b;
        /* the session wiped the caller's copies */
        g_assert_cmpint(k1.k[0], ==, 0);
        g_assert_cmpint(k3.k[0], ==, 0);
}

static void pair_done(pair *p) {
        p->a = n2p_session_free(p->a);
        p->b = n2p_session_free(p->b);
        pipe_done(&p->ab);
        pipe_done(&p->ba);
}

static gboolean timeout_cb(gpointer userdata) {
        *(bool *) userdata = true;
        return G_SOURCE_REMOVE;
}

/* Runs the main loop until cond holds; false on timeout. */
static bool run_until(bool (*cond)(void *), void *data, unsigned timeout_ms) {
        bool timed_out = false;
        guint t = g_timeout_add(timeout_ms, timeout_cb, &timed_out);

        while (!cond(data) && !timed_out)
                g_main_context_iteration(NULL, TRUE);
        if (!timed_out)
                g_source_remove(t);
        return cond(data);
}

static bool idle_cond(void *data) {
        pair *p = data;
        return p->ab.len == 0 && p->ba.len == 0;
}

/* Lets everything in flight arrive. */
static void pair_settle(pair *p) {
        g_assert_true(run_until(idle_cond, p, 10000));
}

/* ---- stream endpoints that send and check a deterministic byte pattern ---- */

static uint8_t pattern(uint32_t seed, uint64_t pos) {
        uint64_t x = (pos >> 3) * 0x9E3779B97F4A7C15ull + seed;
        x ^= x >> 31;
        x *= 0xBF58476D1CE4E5B9ull;
        x ^= x >> 29;
        return (uint8_t) (x >> ((pos & 7) * 8));
}

typedef struct endpoint {
        n2p_stream *st;
        uint32_t send_seed, recv_seed;
        uint64_t to_send, sent;
        bool infinite;                  /* keep writing forever */
        bool shutdown_when_done, shut;
        bool stalled;                   /* never calls consumed */
        uint64_t received;
        uint64_t expect;                /* bytes expected before EOF */
        bool eof, eof_after_all;
        bool content_ok;
        bool reset;
        int reset_error;
        unsigned callbacks_after_reset;
        bool release_on_reset;
        size_t *max_queued;             /* sample the session queue here */
        n2p_session *session;
} endpoint;

static void endpoint_pump(endpoint *ep) {
        uint8_t buf[40000];

        while (!ep->shut && (ep->infinite || ep->sent < ep->to_send)) {
                size_t n = ep->infinite ? sizeof buf : (size_t) MIN((uint64_t) sizeof buf, ep->to_send - ep->sent);
                ssize_t w;

                for (size_t i = 0; i < n; i++)
                        buf[i] = pattern(ep->send_seed, ep->sent + i);
                w = n2p_stream_write(ep->st, buf, n);
                g_assert_cmpint(w, >=, 0);
                if (ep->max_queued)
                        *ep->max_queued = MAX(*ep->max_queued, n2p_session_send_queued(ep->session));
                ep->sent += (uint64_t) w;
                if ((size_t) w < n)
                        return;
        }
        if (!ep->infinite && ep->sent == ep->to_send && ep->shutdown_when_done && !ep->shut) {
                n2p_stream_shutdown(ep->st);
                ep->shut = true;
        }
}

static void ep_data(n2p_stream *st, const uint8_t *buf, size_t len, void *userdata) {
        endpoint *ep = userdata;

        if (ep->reset)
                ep->callbacks_after_reset++;
        for (size_t i = 0; i < len; i++)
                if (buf[i] != pattern(ep->recv_seed, ep->received + i)) {
                        ep->content_ok = false;
                        break;
                }
        ep->received += len;
        if (!ep->stalled)
                n2p_stream_consumed(st, len);
}

static void ep_eof(n2p_stream *st, void *userdata) {
        endpoint *ep = userdata;

        g_assert_false(ep->eof);
        ep->eof = true;
        ep->eof_after_all = ep->received == ep->expect;
}

static void ep_writable(n2p_stream *st, void *userdata) {
        endpoint *ep = userdata;

        if (ep->reset)
                ep->callbacks_after_reset++;
        endpoint_pump(ep);
}

static void ep_reset(n2p_stream *st, int error, void *userdata) {
        endpoint *ep = userdata;

        if (ep->reset)
                ep->callbacks_after_reset++;
        ep->reset = true;
        ep->reset_error = error;
        if (ep->release_on_reset) {
                n2p_stream_release(st);
                ep->st = NULL;
        }
}

static const n2p_stream_handler ep_handler = {
        .on_data = ep_data,
        .on_eof = ep_eof,
        .on_writable = ep_writable,
        .on_reset = ep_reset,
};

static void endpoint_attach(endpoint *ep, n2p_stream *st, n2p_session *s) {
        ep->st = st;
        ep->session = s;
        ep->content_ok = true;
        n2p_stream_set_handler(st, &ep_handler, ep);
}

/* B's streams get endpoints from this array in the order they open. */
typedef struct fleet {
        endpoint a[N2P_MAX_STREAMS + 1], b[N2P_MAX_STREAMS + 1];
        unsigned n_b;
        unsigned n;                     /* streams the test opens */
} fleet;

static void fleet_opened(pair *p, n2p_session *s, n2p_stream *st) {
        fleet *f = p->data;

        g_assert_true(s == p->b);
        g_assert_cmpuint(f->n_b, <, N2P_ELEMENTSOF(f->b));
        endpoint_attach(&f->b[f->n_b], st, s);
        f->n_b++;
        endpoint_pump(&f->b[f->n_b - 1]);
}

static bool all_eof_cond(void *data) {
        fleet *f = data;

        if (f->n_b < f->n)
                return false;
        for (unsigned i = 0; i < f->n_b; i++)
                if ((f->b[i].expect > 0 || f->b[i].shut) && !f->b[i].eof)
                        return false;
        for (unsigned i = 0; i < f->n_b; i++)
                if (f->a[i].expect > 0 && !f->a[i].eof)
                        return false;
        return true;
}

/* n bidirectional streams: A sends a_bytes, B sends b_bytes, both then shut down. */
static void transfer(size_t chunk, size_t capacity, unsigned n, uint64_t a_bytes, uint64_t b_bytes) {
        pair p;
        fleet *f = g_new0(fleet, 1);

        pair_init(&p, chunk, capacity, fleet_opened);
        p.data = f;
        f->n = n;
        for (unsigned i = 0; i < n; i++) {
                f->b[i] = (endpoint) { .send_seed = 100 + i, .recv_seed = 200 + i, .to_send = b_bytes,
                                       .expect = a_bytes, .shutdown_when_done = true };
                f->a[i] = (endpoint) { .send_seed = 200 + i, .recv_seed = 100 + i, .to_send = a_bytes,
                                       .expect = b_bytes, .shutdown_when_done = true };
        }
        for (unsigned i = 0; i < n; i++) {
                n2p_stream *st = n2p_session_open_stream(p.a);
                g_assert_nonnull(st);
                endpoint_attach(&f->a[i], st, p.a);
                endpoint_pump(&f->a[i]);
        }
        g_assert_true(run_until(all_eof_cond, f, 60000));
        pair_settle(&p);
        for (unsigned i = 0; i < n; i++) {
                g_assert_true(f->a[i].content_ok);
                g_assert_true(f->b[i].content_ok);
                g_assert_cmpuint(f->a[i].received, ==, b_bytes);
                g_assert_cmpuint(f->b[i].received, ==, a_bytes);
                g_assert_true(f->a[i].eof_after_all);
                g_assert_true(f->b[i].eof_after_all);
                g_assert_false(f->a[i].reset);
        }
        g_assert_cmpuint(n2p_session_bytes_sent(p.a), ==, n * a_bytes);
        g_assert_cmpuint(n2p_session_bytes_received(p.b), ==, n * a_bytes);
        g_assert_cmpuint(n2p_session_bytes_sent(p.b), ==, n * b_bytes);
        g_assert_cmpuint(n2p_session_bytes_received(p.a), ==, n * b_bytes);
        /* both ways finished: the ids are free again, nothing was reset */
        g_assert_cmpuint(n2p_session_n_streams(p.a), ==, 0);
        g_assert_cmpuint(n2p_session_n_streams(p.b), ==, 0);
        for (unsigned i = 0; i < n; i++) {
                n2p_stream_release(f->a[i].st);
                n2p_stream_release(f->b[i].st);
        }
        pair_settle(&p);
        g_assert_false(p.a_closed);
        g_assert_false(p.b_closed);
        g_assert_cmpint(p.ab.feed_error, ==, 0);
        g_assert_cmpint(p.ba.feed_error, ==, 0);
        for (unsigned i = 0; i < n; i++)
                g_assert_false(f->b[i].reset);
        pair_done(&p);
        g_free(f);
}

static void test_bidi_random_chunks(void) {
        transfer(0, 64 * 1024, 1, 6 * MIB, 5 * MIB);
}

static void test_bidi_one_byte_chunks(void) {
        transfer(1, 4096, 1, 300 * 1024, 200 * 1024);
}

static void test_bidi_large_chunks(void) {
        transfer(65536, 1 * MIB, 2, 4 * MIB, 4 * MIB);
}

/* ---- half-close ---- */

static bool first_fins_cond(void *data) {
        fleet *f = data;
        return f->b[0].eof && f->a[1].eof;
}

static void test_half_close(void) {
        pair p;
        fleet *f = g_new0(fleet, 1);

        pair_init(&p, 0, 32 * 1024, fleet_opened);
        p.data = f;
        f->n = 2;
        /* stream 0: A sends and shuts, B keeps sending after A's FIN arrived;
         * stream 1: the other way round. */
        f->a[0] = (endpoint) { .send_seed = 1, .recv_seed = 2, .to_send = MIB, .expect = 2 * MIB,
                               .shutdown_when_done = true };
        f->b[0] = (endpoint) { .send_seed = 2, .recv_seed = 1, .to_send = 0, .expect = MIB };
        f->a[1] = (endpoint) { .send_seed = 3, .recv_seed = 4, .to_send = 0, .expect = MIB };
        f->b[1] = (endpoint) { .send_seed = 4, .recv_seed = 3, .to_send = MIB, .expect = 2 * MIB,
                               .shutdown_when_done = true };
        for (unsigned i = 0; i < 2; i++) {
                n2p_stream *st = n2p_session_open_stream(p.a);
                g_assert_nonnull(st);
                endpoint_attach(&f->a[i], st, p.a);
                endpoint_pump(&f->a[i]);
        }
        /* stream 1: B's FIN reaches A, A's side has not shut */
        g_assert_true(run_until(first_fins_cond, f, 30000));
        g_assert_true(f->b[0].eof_after_all);
        g_assert_true(f->a[1].eof_after_all);
        g_assert_cmpint(n2p_stream_write(f->a[0].st, (const uint8_t *) "x", 1), ==, -EPIPE);
        g_assert_cmpint(n2p_stream_write(f->b[1].st, (const uint8_t *) "x", 1), ==, -EPIPE);
        g_assert_cmpuint(n2p_session_n_streams(p.a), ==, 2);

        /* the open halves still carry data */
        f->b[0].to_send = 2 * MIB;
        f->b[0].shutdown_when_done = true;
        f->b[0].expect = MIB;
        endpoint_pump(&f->b[0]);
        f->a[1].to_send = 2 * MIB;
        f->a[1].shutdown_when_done = true;
        endpoint_pump(&f->a[1]);
        g_assert_true(run_until(all_eof_cond, f, 30000));
        for (unsigned i = 0; i < 2; i++) {
                g_assert_true(f->a[i].content_ok);
                g_assert_true(f->b[i].content_ok);
                g_assert_false(f->a[i].reset);
                g_assert_false(f->b[i].reset);
        }
        g_assert_true(f->a[0].eof_after_all);
        g_assert_true(f->b[1].eof_after_all);
        g_assert_cmpuint(f->a[0].received, ==, 2 * MIB);
        g_assert_cmpuint(f->b[1].received, ==, 2 * MIB);
        g_assert_cmpuint(n2p_session_n_streams(p.a), ==, 0);
        pair_done(&p);
        g_free(f);
}

/* ---- fairness ---- */

typedef struct fair_state {
        fleet *f;
        unsigned n;
        bool first_done;
        uint64_t snapshot[8];
} fair_state;

static bool first_eof_cond(void *data) {
        fair_state *fs = data;

        for (unsigned i = 0; i < fs->f->n_b; i++)
                if (fs->f->b[i].eof)
                        return true;
        return false;
}

static void test_fair_streams(void) {
        const uint64_t each = 4 * MIB;
        pair p;
        fleet *f = g_new0(fleet, 1);
        fair_state fs = { .f = f, .n = 8 };

        /* a slow, small carrier so the send buffer is always the bottleneck */
        pair_init(&p, 0, 48 * 1024, fleet_opened);
        p.data = f;
        f->n = fs.n;
        for (unsigned i = 0; i < fs.n; i++) {
                f->a[i] = (endpoint) { .send_seed = i, .to_send = each, .shutdown_when_done = true };
                f->b[i] = (endpoint) { .recv_seed = i, .expect = each };
                n2p_stream *st = n2p_session_open_stream(p.a);
                g_assert_nonnull(st);
                endpoint_attach(&f->a[i], st, p.a);
        }
        for (unsigned i = 0; i < fs.n; i++)
                endpoint_pump(&f->a[i]);
        g_assert_true(run_until(first_eof_cond, &fs, 60000));
        for (unsigned i = 0; i < fs.n; i++)
                fs.snapshot[i] = f->b[i].received;
        for (unsigned i = 0; i < fs.n; i++) {
                if (g_test_verbose())
                        g_printerr("stream %u: %" G_GUINT64_FORMAT " bytes when the first finished\n",
                                   i, fs.snapshot[i]);
                /* round-robin turns: every stream is well along, none starved */
                g_assert_cmpuint(fs.snapshot[i], >=, each / 4);
        }
        g_assert_true(run_until(all_eof_cond, f, 60000));
        for (unsigned i = 0; i < fs.n; i++) {
                g_assert_true(f->b[i].content_ok);
                g_assert_cmpuint(f->b[i].received, ==, each);
        }
        pair_done(&p);
        g_free(f);
}

/* ---- a stalled reader ---- */

static bool stall_cond(void *data) {
        fleet *f = data;
        return f->n_b == 2 && f->b[1].eof;
}

static bool resumed_cond(void *data) {
        fleet *f = data;
        return f->b[0].eof;
}

static void test_stalled_reader(void) {
        pair p;
        fleet *f = g_new0(fleet, 1);
        size_t max_queued = 0;

        pair_init(&p, 0, 64 * 1024, fleet_opened);
        p.data = f;
        f->a[0] = (endpoint) { .send_seed = 1, .infinite = true, .max_queued = &max_queued };
        f->b[0] = (endpoint) { .recv_seed = 1, .stalled = true };
        f->a[1] = (endpoint) { .send_seed = 2, .to_send = 6 * MIB, .shutdown_when_done = true,
                               .max_queued = &max_queued };
        f->b[1] = (endpoint) { .recv_seed = 2, .expect = 6 * MIB };
        for (unsigned i = 0; i < 2; i++) {
                n2p_stream *st = n2p_session_open_stream(p.a);
                g_assert_nonnull(st);
                endpoint_attach(&f->a[i], st, p.a);
        }
        for (unsigned i = 0; i < 2; i++)
                endpoint_pump(&f->a[i]);

        g_assert_true(run_until(stall_cond, f, 60000));
        g_assert_true(f->b[1].eof_after_all);
        g_assert_true(f->b[1].content_ok);
        g_assert_true(f->b[0].content_ok);
        /* the stalled stream got exactly its window, not a byte more */
        g_assert_cmpuint(f->b[0].received, ==, N2P_STREAM_WINDOW);
        g_assert_cmpuint(f->a[0].sent, ==, N2P_STREAM_WINDOW);
        g_assert_cmpuint(n2p_stream_write_room(f->a[0].st), ==, 0);
        /* memory stays bounded on the sender */
        max_queued = MAX(max_queued, p.ab.max_queued_seen);
        g_assert_cmpuint(max_queued, >, 0);
        g_assert_cmpuint(max_queued, <=, N2P_SESSION_SEND_BUFFER + CONTROL_ALLOWANCE);

        /* the stalled reader catches up: the sender resumes */
        f->b[0].stalled = false;
        n2p_stream_consumed(f->b[0].st, (size_t) f->b[0].received);
        f->a[0].infinite = false;
        f->a[0].to_send = f->a[0].sent + 2 * MIB;
        f->a[0].shutdown_when_done = true;
        f->b[0].expect = f->a[0].to_send;
        endpoint_pump(&f->a[0]);
        g_assert_true(run_until(resumed_cond, f, 30000));
        g_assert_true(f->b[0].eof_after_all);
        g_assert_true(f->b[0].content_ok);
        pair_done(&p);
        g_free(f);
}

/* ---- raw tests: one session, frames and records made by the test ---- */

typedef struct raw {
        n2p_session *s;
        n2p_cipher peer_send;           /* seals what we feed */
        n2p_cipher peer_recv;           /* opens what the session sent */
        GByteArray *out;
        bool closed;
        int close_error;
        unsigned opened;
        n2p_stream *streams[N2P_MAX_STREAMS + 2];
        endpoint eps[N2P_MAX_STREAMS + 2];
        bool no_handler;                /* stream_opened leaves the stream alone */
} raw;

static ssize_t raw_send(const uint8_t *buf, size_t len, void *userdata) {
        raw *r = userdata;
        g_byte_array_append(r->out, buf, (guint) len);
        return (ssize_t) len;
}

static void raw_opened(n2p_session *s, n2p_stream *st, void *userdata) {
        raw *r = userdata;

        g_assert_cmpuint(r->opened, <, N2P_ELEMENTSOF(r->streams));
        r->streams[r->opened] = st;
        if (!r->no_handler)
                endpoint_attach(&r->eps[r->opened], st, s);
        r->eps[r->opened].stalled = true;
        r->opened++;
}

static void raw_closed(n2p_session *s, int error, void *userdata) {
        raw *r = userdata;

        g_assert_false(r->closed);
        r->closed = true;
        r->close_error = error;
}

static const n2p_session_callbacks raw_callbacks = {
        .stream_opened = raw_opened,
        .closed = raw_closed,
};

/* A responder session, as a peer initiator would see it. */
static raw *raw_new(void) {
        raw *r = g_new0(raw, 1);
        n2p_cipher send, recv;

        fixed_cipher(&send, 0x22);
        fixed_cipher(&recv, 0x11);
        fixed_cipher(&r->peer_send, 0x11);
        fixed_cipher(&r->peer_recv, 0x22);
        r->out = g_byte_array_new();
        r->s = n2p_session_new(false, &send, &recv, raw_send, r, &raw_callbacks, r);
        g_assert_nonnull(r->s);
        return r;
}

static void raw_free(raw *r) {
        n2p_session_free(r->s);
        g_byte_array_unref(r->out);
        g_free(r);
}

static size_t frame(uint8_t *buf, uint8_t type, uint32_t id, const void *payload, uint32_t len) {
        buf[0] = type;
        buf[1] = 0;
        n2p_put_be32(buf + 2, id);
        n2p_put_be32(buf + 6, len);
        if (len > 0)
                memcpy(buf + N2P_FRAME_HEADER, payload, len);
        return N2P_FRAME_HEADER + len;
}

static int deliver(raw *r, uint8_t type, uint32_t id, const void *payload, uint32_t len) {
        uint8_t buf[N2P_FRAME_HEADER + N2P_FRAME_MAX_PAYLOAD + 1];
        return n2p_session_deliver_frame(r->s, buf, frame(buf, type, id, payload, len));
}

static int deliver_u32(raw *r, uint8_t type, uint32_t id, uint32_t v) {
        uint8_t p[4];
        n2p_put_be32(p, v);
        return deliver(r, type, id, p, 4);
}

/* Seals a frame as the peer would put it on the carrier. */
static size_t seal(raw *r, uint8_t *rec, uint8_t type, uint32_t id, const void *payload, uint32_t len) {
        uint8_t f[N2P_FRAME_HEADER + N2P_FRAME_MAX_PAYLOAD];
        size_t flen = frame(f, type, id, payload, len);

        n2p_put_be16(rec, (uint16_t) (flen + N2P_NOISE_TAGLEN));
        g_assert_cmpint(n2p_cipher_encrypt(&r->peer_send, rec, 2, f, flen, rec + 2), ==, 0);
        return 2 + flen + N2P_NOISE_TAGLEN;
}

typedef struct sent_frame {
        uint8_t type;
        uint32_t id, value;
} sent_frame;

/* Opens every record the session sent so far. */
static GArray *raw_sent(raw *r) {
        GArray *a = g_array_new(false, true, sizeof(sent_frame));
        size_t off = 0;

        while (off + 2 <= r->out->len) {
                size_t len = n2p_get_be16(r->out->data + off);
                uint8_t f[N2P_FRAME_HEADER + N2P_FRAME_MAX_PAYLOAD];
                sent_frame sf = {};

                g_assert_cmpuint(off + 2 + len, <=, r->out->len);
                g_assert_cmpint(n2p_cipher_decrypt(&r->peer_recv, r->out->data + off, 2,
                                                   r->out->data + off + 2, len, f), ==, 0);
                sf.type = f[0];
                sf.id = n2p_get_be32(f + 2);
                if (n2p_get_be32(f + 6) == 4)
                        sf.value = n2p_get_be32(f + N2P_FRAME_HEADER);
                g_array_append_val(a, sf);
                off += 2 + len;
        }
        g_assert_cmpuint(off, ==, r->out->len);
        g_byte_array_set_size(r->out, 0);
        return a;
}

static bool raw_sent_has(raw *r, uint8_t type, uint32_t id, uint32_t value) {
        GArray *a = raw_sent(r);
        bool found = false;

        for (guint i = 0; i < a->len; i++) {
                sent_frame *sf = &g_array_index(a, sent_frame, i);
                if (sf->type == type && sf->id == id && sf->value == value)
                        found = true;
        }
        g_array_unref(a);
        return found;
}

static void test_stream_limit_local(void) {
        pair p;
        n2p_stream *st[N2P_MAX_STREAMS];

        pair_init(&p, 0, 64 * 1024, NULL);
        for (unsigned i = 0; i < N2P_MAX_STREAMS; i++) {
                st[i] = n2p_session_open_stream(p.a);
                g_assert_nonnull(st[i]);
                g_assert_cmpuint(n2p_stream_id(st[i]), ==, 2 * i + 1);
        }
        errno = 0;
        g_assert_null(n2p_session_open_stream(p.a));
        g_assert_cmpint(errno, ==, EMFILE);
        g_assert_cmpuint(n2p_session_n_streams(p.a), ==, N2P_MAX_STREAMS);
        /* a released stream frees its slot */
        n2p_stream_release(st[0]);
        st[0] = n2p_session_open_stream(p.a);
        g_assert_nonnull(st[0]);
        g_assert_cmpuint(n2p_stream_id(st[0]), ==, 2 * N2P_MAX_STREAMS + 1);
        pair_settle(&p);
        /* B has no stream_opened handler here: it refused every one */
        g_assert_cmpuint(p.b_opened, ==, N2P_MAX_STREAMS + 1);
        g_assert_cmpuint(n2p_session_n_streams(p.b), ==, 0);
        g_assert_cmpuint(n2p_session_n_streams(p.a), ==, 0);
        g_assert_false(p.a_closed);
        for (unsigned i = 0; i < N2P_MAX_STREAMS; i++)
                n2p_stream_release(st[i]);
        pair_done(&p);
}

static void test_stream_limit_peer(void) {
        raw *r = raw_new();
        unsigned i;

        for (i = 0; i < N2P_MAX_STREAMS; i++)
                g_assert_cmpint(deliver(r, N2P_FRAME_OPEN, 2 * i + 1, NULL, 0), ==, 0);
        g_assert_cmpuint(r->opened, ==, N2P_MAX_STREAMS);
        g_byte_array_set_size(r->out, 0);
        /* nothing is sent for accepted streams, so the peer cipher must follow */
        g_assert_cmpint(deliver(r, N2P_FRAME_OPEN, 2 * i + 1, NULL, 0), ==, 0);
        g_assert_cmpuint(r->opened, ==, N2P_MAX_STREAMS);
        g_assert_false(r->closed);
        g_assert_cmpuint(n2p_session_n_streams(r->s), ==, N2P_MAX_STREAMS);
        g_assert_true(raw_sent_has(r, N2P_FRAME_RESET, 2 * i + 1, ECONNREFUSED));
        /* data racing the refusal is dropped, the session lives on */
        g_assert_cmpint(deliver(r, N2P_FRAME_DATA, 2 * i + 1, "abc", 3), ==, 0);
        g_assert_false(r->closed);
        /* a closed stream makes room again */
        g_assert_cmpint(deliver_u32(r, N2P_FRAME_RESET, 1, ECONNRESET), ==, 0);
        g_assert_true(r->eps[0].reset);
        g_assert_cmpint(r->eps[0].reset_error, ==, ECONNRESET);
        g_assert_cmpint(deliver(r, N2P_FRAME_OPEN, 2 * i + 3, NULL, 0), ==, 0);
        g_assert_cmpuint(r->opened, ==, N2P_MAX_STREAMS + 1);
        raw_free(r);
}

static void test_window_exceeded(void) {
        raw *r = raw_new();
        uint8_t data[N2P_FRAME_MAX_PAYLOAD];

        memset(data, 'w', sizeof data);
        g_assert_cmpint(deliver(r, N2P_FRAME_OPEN, 1, NULL, 0), ==, 0);
        for (unsigned i = 0; i < N2P_STREAM_WINDOW / N2P_FRAME_MAX_PAYLOAD; i++)
                g_assert_cmpint(deliver(r, N2P_FRAME_DATA, 1, data, sizeof data), ==, 0);
        g_assert_false(r->closed);
        g_assert_cmpuint(r->eps[0].received, ==, N2P_STREAM_WINDOW);
        g_byte_array_set_size(r->out, 0);
        /* one byte past the window */
        g_assert_cmpint(deliver(r, N2P_FRAME_DATA, 1, data, 1), ==, -EPROTO);
        g_assert_true(r->closed);
        g_assert_cmpint(r->close_error, ==, -EPROTO);
        g_assert_true(r->eps[0].reset);
        g_assert_cmpint(r->eps[0].reset_error, ==, EPROTO);
        g_assert_true(raw_sent_has(r, N2P_FRAME_GOAWAY, 0, EPROTO));
        g_assert_cmpuint(n2p_session_n_streams(r->s), ==, 0);
        /* a closed session takes nothing more */
        g_assert_cmpint(deliver(r, N2P_FRAME_OPEN, 3, NULL, 0), ==, -ENOTCONN);
        g_assert_cmpint(n2p_stream_write(r->streams[0], (const uint8_t *) "x", 1), ==, -EPIPE);
        raw_free(r);
}

static void test_window_granted(void) {
        raw *r = raw_new();
        uint8_t data[N2P_FRAME_MAX_PAYLOAD];

        memset(data, 'g', sizeof data);
        g_assert_cmpint(deliver(r, N2P_FRAME_OPEN, 1, NULL, 0), ==, 0);
        for (unsigned i = 0; i < N2P_STREAM_WINDOW / N2P_FRAME_MAX_PAYLOAD; i++)
                g_assert_cmpint(deliver(r, N2P_FRAME_DATA, 1, data, sizeof data), ==, 0);
        g_byte_array_set_size(r->out, 0);
        /* just under half a window consumed: no WINDOW yet (batching) */
        n2p_stream_consumed(r->streams[0], N2P_STREAM_WINDOW / 2 - 1);
        g_assert_cmpuint(r->out->len, ==, 0);
        n2p_stream_consumed(r->streams[0], 1);
        g_assert_true(raw_sent_has(r, N2P_FRAME_WINDOW, 1, N2P_STREAM_WINDOW / 2));
        /* exactly the granted credit is accepted, then the peer is over again */
        for (unsigned i = 0; i < N2P_STREAM_WINDOW / 2 / N2P_FRAME_MAX_PAYLOAD; i++)
                g_assert_cmpint(deliver(r, N2P_FRAME_DATA, 1, data, sizeof data), ==, 0);
        g_assert_false(r->closed);
        /* consuming more than was delivered grants nothing extra */
        n2p_stream_consumed(r->streams[0], 10 * N2P_STREAM_WINDOW);
        g_assert_true(raw_sent_has(r, N2P_FRAME_WINDOW, 1, N2P_STREAM_WINDOW));
        g_assert_cmpint(deliver(r, N2P_FRAME_DATA, 1, data, 1), ==, 0);
        raw_free(r);
}

static void test_tampered_record(void) {
        raw *r = raw_new();
        uint8_t rec[N2P_RECORD_MAX];
        size_t n;

        n = seal(r, rec, N2P_FRAME_OPEN, 1, NULL, 0);
        g_assert_cmpint(n2p_session_feed(r->s, rec, n), ==, 0);
        g_assert_cmpuint(r->opened, ==, 1);
        n = seal(r, rec, N2P_FRAME_DATA, 1, "hello", 5);
        rec[n - 3] ^= 0x40;
        g_assert_cmpint(n2p_session_feed(r->s, rec, n), ==, -EBADMSG);
        g_assert_true(r->closed);
        g_assert_cmpint(r->close_error, ==, -EBADMSG);
        g_assert_cmpuint(r->eps[0].received, ==, 0);
        g_assert_true(r->eps[0].reset);
        g_assert_cmpint(n2p_session_feed(r->s, rec, n), ==, -ENOTCONN);
        raw_free(r);
}

static void test_replayed_record(void) {
        raw *r = raw_new();
        uint8_t rec[N2P_RECORD_MAX];
        size_t n;

        n = seal(r, rec, N2P_FRAME_OPEN, 1, NULL, 0);
        g_assert_cmpint(n2p_session_feed(r->s, rec, n), ==, 0);
        /* the implicit nonce moved on: the same record again does not open */
        g_assert_cmpint(n2p_session_feed(r->s, rec, n), ==, -EBADMSG);
        g_assert_true(r->closed);
        raw_free(r);
}

static void check_bad_length(uint16_t len) {
        raw *r = raw_new();
        uint8_t hdr[2];

        n2p_put_be16(hdr, len);
        /* split: the length is judged as soon as both bytes are in */
        g_assert_cmpint(n2p_session_feed(r->s, hdr, 1), ==, 0);
        g_assert_false(r->closed);
        g_assert_cmpint(n2p_session_feed(r->s, hdr + 1, 1), ==, -EPROTO);
        g_assert_true(r->closed);
        g_assert_cmpint(r->close_error, ==, -EPROTO);
        raw_free(r);

        r = raw_new();
        g_assert_cmpint(n2p_session_feed(r->s, hdr, 2), ==, -EPROTO);
        g_assert_true(r->closed);
        raw_free(r);
}

static void test_oversized_record(void) {
        check_bad_length(0xffff);
        check_bad_length(N2P_RECORD_MAX - 1);
}

static void test_undersized_record(void) {
        check_bad_length(0);
        check_bad_length(N2P_NOISE_TAGLEN);
        check_bad_length(N2P_NOISE_TAGLEN + N2P_FRAME_HEADER - 1);
}

static void test_largest_record(void) {
        raw *r = raw_new();
        uint8_t rec[N2P_RECORD_MAX], data[N2P_FRAME_MAX_PAYLOAD];
        size_t n;

        memset(data, 7, sizeof data);
        n = seal(r, rec, N2P_FRAME_OPEN, 1, NULL, 0);
        g_assert_cmpint(n2p_session_feed(r->s, rec, n), ==, 0);
        n = seal(r, rec, N2P_FRAME_DATA, 1, data, sizeof data);
        g_assert_cmpuint(n, ==, N2P_RECORD_MAX);
        /* byte by byte */
        for (size_t i = 0; i < n; i++)
                g_assert_cmpint(n2p_session_feed(r->s, rec + i, 1), ==, 0);
        g_assert_cmpuint(r->eps[0].received, ==, sizeof data);
        g_assert_false(r->closed);
        raw_free(r);
}

typedef struct bad_frame {
        const char *name;
        uint8_t bytes[32];
        size_t len;
} bad_frame;

static void test_malformed_frames(void) {
        /* each after OPEN 1 on a fresh responder */
        static const bad_frame bad[] = {
                { "short header", { 0, 0, 0, 0, 0, 1, 0, 0, 0 }, 9 },
                { "flags", { 0, 1, 0, 0, 0, 1, 0, 0, 0, 1, 'x' }, 11 },
                { "length too long", { 0, 0, 0, 0, 0, 1, 0, 0, 0, 2, 'x' }, 11 },
                { "length too short", { 0, 0, 0, 0, 0, 1, 0, 0, 0, 1, 'x', 'y' }, 12 },
                { "unknown type", { 6, 0, 0, 0, 0, 1, 0, 0, 0, 0 }, 10 },
                { "empty data", { 0, 0, 0, 0, 0, 1, 0, 0, 0, 0 }, 10 },
                { "window size", { 1, 0, 0, 0, 0, 1, 0, 0, 0, 3, 0, 0, 1 }, 13 },
                { "window zero", { 1, 0, 0, 0, 0, 1, 0, 0, 0, 4, 0, 0, 0, 0 }, 14 },
                { "open payload", { 2, 0, 0, 0, 0, 3, 0, 0, 0, 1, 0 }, 11 },
                { "open own parity", { 2, 0, 0, 0, 0, 2, 0, 0, 0, 0 }, 10 },
                { "open zero", { 2, 0, 0, 0, 0, 0, 0, 0, 0, 0 }, 10 },
                { "open reused", { 2, 0, 0, 0, 0, 1, 0, 0, 0, 0 }, 10 },
                { "fin payload", { 3, 0, 0, 0, 0, 1, 0, 0, 0, 1, 0 }, 11 },
                { "reset zero", { 4, 0, 0, 0, 0, 1, 0, 0, 0, 4, 0, 0, 0, 0 }, 14 },
                { "reset huge", { 4, 0, 0, 0, 0, 1, 0, 0, 0, 4, 0, 1, 0, 0 }, 14 },
                { "goaway stream", { 5, 0, 0, 0, 0, 1, 0, 0, 0, 4, 0, 0, 0, 0 }, 14 },
                { "goaway huge", { 5, 0, 0, 0, 0, 0, 0, 0, 0, 4, 0x80, 0, 0, 0 }, 14 },
                { "data never opened", { 0, 0, 0, 0, 0, 5, 0, 0, 0, 1, 'x' }, 11 },
                { "data own never opened", { 0, 0, 0, 0, 0, 2, 0, 0, 0, 1, 'x' }, 11 },
                { "window never opened", { 1, 0, 0, 0, 0, 7, 0, 0, 0, 4, 0, 0, 0, 1 }, 14 },
                { "data stream zero", { 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 'x' }, 11 },
        };

        for (size_t i = 0; i < N2P_ELEMENTSOF(bad); i++) {
                raw *r = raw_new();

                g_assert_cmpint(deliver(r, N2P_FRAME_OPEN, 1, NULL, 0), ==, 0);
                if (g_test_verbose())
                        g_printerr("%s\n", bad[i].name);
                g_assert_cmpint(n2p_session_deliver_frame(r->s, bad[i].bytes, bad[i].len), ==, -EPROTO);
                g_assert_true(r->closed);
                g_assert_cmpint(r->close_error, ==, -EPROTO);
                raw_free(r);
        }
}

static void test_data_after_fin(void) {
        raw *r = raw_new();

        g_assert_cmpint(deliver(r, N2P_FRAME_OPEN, 1, NULL, 0), ==, 0);
        g_assert_cmpint(deliver(r, N2P_FRAME_FIN, 1, NULL, 0), ==, 0);
        g_assert_true(r->eps[0].eof);
        g_assert_cmpint(deliver(r, N2P_FRAME_DATA, 1, "x", 1), ==, -EPROTO);
        g_assert_true(r->closed);
        raw_free(r);
}

static void test_frames_after_close_ignored(void) {
        raw *r = raw_new();

        g_assert_cmpint(deliver(r, N2P_FRAME_OPEN, 1, NULL, 0), ==, 0);
        g_assert_cmpint(deliver(r, N2P_FRAME_OPEN, 3, NULL, 0), ==, 0);
        /* we reset stream 1; the peer's frames in flight must not end the session */
        n2p_stream_reset(r->streams[0], ECONNRESET);
        g_assert_true(raw_sent_has(r, N2P_FRAME_RESET, 1, ECONNRESET));
        g_assert_cmpint(deliver(r, N2P_FRAME_DATA, 1, "x", 1), ==, 0);
        g_assert_cmpint(deliver_u32(r, N2P_FRAME_WINDOW, 1, 100), ==, 0);
        g_assert_cmpint(deliver(r, N2P_FRAME_FIN, 1, NULL, 0), ==, 0);
        g_assert_cmpint(deliver_u32(r, N2P_FRAME_RESET, 1, EPIPE), ==, 0);
        g_assert_false(r->closed);
        /* no callbacks after our own reset */
        g_assert_false(r->eps[0].eof);
        g_assert_false(r->eps[0].reset);
        g_assert_cmpuint(r->eps[0].received, ==, 0);
        /* an id below the highest seen that was never opened counts as closed */
        g_assert_cmpint(deliver(r, N2P_FRAME_OPEN, 7, NULL, 0), ==, 0);
        g_assert_cmpint(deliver(r, N2P_FRAME_DATA, 5, "x", 1), ==, 0);
        g_assert_false(r->closed);
        /* an id of ours we never used is a protocol error */
        g_assert_cmpint(deliver(r, N2P_FRAME_FIN, 4, NULL, 0), ==, -EPROTO);
        raw_free(r);
}

static void test_unhandled_stream_refused(void) {
        raw *r = raw_new();

        r->no_handler = true;
        g_assert_cmpint(deliver(r, N2P_FRAME_OPEN, 1, NULL, 0), ==, 0);
        g_assert_true(raw_sent_has(r, N2P_FRAME_RESET, 1, ECONNREFUSED));
        g_assert_cmpuint(n2p_session_n_streams(r->s), ==, 0);
        raw_free(r);
}

/* ---- reset, goaway, release ---- */

static void test_reset_propagates(void) {
        pair p;
        fleet *f = g_new0(fleet, 1);

        pair_init(&p, 0, 64 * 1024, fleet_opened);
        p.data = f;
        for (unsigned i = 0; i < 2; i++) {
                f->a[i] = (endpoint) { .send_seed = i, .to_send = 100000 };
                f->b[i] = (endpoint) { .recv_seed = i, .expect = 100000 };
                n2p_stream *st = n2p_session_open_stream(p.a);
                endpoint_attach(&f->a[i], st, p.a);
                endpoint_pump(&f->a[i]);
        }
        pair_settle(&p);
        g_assert_cmpuint(f->b[0].received, ==, 100000);

        /* A resets stream 0, B resets stream 1 */
        n2p_stream_reset(f->a[0].st, EHOSTUNREACH);
        n2p_stream_reset(f->b[1].st, ENETDOWN);
        g_assert_cmpint(n2p_stream_write(f->a[0].st, (const uint8_t *) "x", 1), ==, -EPIPE);
        g_assert_cmpuint(n2p_stream_write_room(f->a[0].st), ==, 0);
        pair_settle(&p);
        g_assert_true(f->b[0].reset);
        g_assert_cmpint(f->b[0].reset_error, ==, EHOSTUNREACH);
        g_assert_true(f->a[1].reset);
        g_assert_cmpint(f->a[1].reset_error, ==, ENETDOWN);
        /* the side that reset hears nothing more */
        g_assert_false(f->a[0].reset);
        g_assert_false(f->b[1].reset);
        g_assert_cmpuint(n2p_session_n_streams(p.a), ==, 0);
        g_assert_cmpuint(n2p_session_n_streams(p.b), ==, 0);
        g_assert_false(p.a_closed);
        g_assert_false(p.b_closed);
        for (unsigned i = 0; i < 2; i++) {
                n2p_stream_release(f->a[i].st);
                n2p_stream_release(f->b[i].st);
        }
        pair_done(&p);
        g_free(f);
}

static bool both_closed_cond(void *data) {
        pair *p = data;
        return p->a_closed && p->b_closed;
}

static void check_goaway(int error, int stream_error) {
        pair p;
        fleet *f = g_new0(fleet, 1);
        n2p_stream *st;

        pair_init(&p, 0, 64 * 1024, fleet_opened);
        p.data = f;
        st = n2p_session_open_stream(p.a);
        endpoint_attach(&f->a[0], st, p.a);
        pair_settle(&p);
        g_assert_cmpuint(f->n_b, ==, 1);

        n2p_session_close(p.a, error);
        /* closed runs at once on the side that closes, after the streams' resets */
        g_assert_true(p.a_closed);
        g_assert_cmpint(p.a_error, ==, error);
        g_assert_true(f->a[0].reset);
        g_assert_cmpint(f->a[0].reset_error, ==, stream_error);
        g_assert_null(n2p_session_open_stream(p.a));
        g_assert_cmpint(n2p_stream_write(st, (const uint8_t *) "x", 1), ==, -EPIPE);

        g_assert_true(run_until(both_closed_cond, &p, 10000));
        g_assert_cmpint(p.b_error, ==, error);
        g_assert_true(f->b[0].reset);
        g_assert_cmpint(f->b[0].reset_error, ==, stream_error);
        g_assert_cmpuint(f->a[0].callbacks_after_reset, ==, 0);
        g_assert_cmpuint(n2p_session_n_streams(p.b), ==, 0);
        n2p_stream_release(f->a[0].st);
        n2p_stream_release(f->b[0].st);
        pair_done(&p);
        g_free(f);
}

static void test_goaway_error(void) {
        check_goaway(-ETIMEDOUT, ETIMEDOUT);
}

static void test_goaway_orderly(void) {
        check_goaway(0, ECONNRESET);
}

static void test_release(void) {
        pair p;
        fleet *f = g_new0(fleet, 1);

        pair_init(&p, 0, 64 * 1024, fleet_opened);
        p.data = f;
        for (unsigned i = 0; i < 3; i++) {
                f->a[i] = (endpoint) { .send_seed = i };
                f->b[i] = (endpoint) { .recv_seed = i, .release_on_reset = true };
                endpoint_attach(&f->a[i], n2p_session_open_stream(p.a), p.a);
        }
        pair_settle(&p);
        g_assert_cmpuint(f->n_b, ==, 3);

        /* 0: released while open -> the peer sees ECONNABORTED */
        n2p_stream_release(f->a[0].st);
        /* 1: finished both ways first -> released quietly */
        n2p_stream_shutdown(f->a[1].st);
        n2p_stream_shutdown(f->b[1].st);
        pair_settle(&p);
        g_assert_true(f->a[1].eof);
        g_assert_true(f->b[1].eof);
        n2p_stream_release(f->a[1].st);
        n2p_stream_release(f->b[1].st);
        /* 2: half-closed by us only -> still a reset */
        n2p_stream_shutdown(f->a[2].st);
        n2p_stream_release(f->a[2].st);
        pair_settle(&p);

        g_assert_true(f->b[0].reset);
        g_assert_cmpint(f->b[0].reset_error, ==, ECONNABORTED);
        g_assert_false(f->b[1].reset);
        g_assert_true(f->b[2].reset);
        g_assert_cmpint(f->b[2].reset_error, ==, ECONNABORTED);
        g_assert_true(f->b[2].eof);
        g_assert_cmpuint(n2p_session_n_streams(p.a), ==, 0);
        g_assert_cmpuint(n2p_session_n_streams(p.b), ==, 0);
        /* releasing twice is harmless only before the object is gone: not tested;
         * NULL is accepted */
        n2p_stream_release(NULL);
        g_assert_false(p.a_closed);
        pair_done(&p);
        g_free(f);
}

/* ---- re-entrancy ---- */

static void reentrant_data(n2p_stream *st, const uint8_t *buf, size_t len, void *userdata) {
        endpoint *ep = userdata;

        ep->received += len;
        /* everything at once from inside the callback */
        n2p_stream_consumed(st, len);
        g_assert_cmpint(n2p_stream_write(st, buf, len), ==, (ssize_t) len);
        n2p_stream_shutdown(st);
        n2p_stream_reset(st, EIO);
        n2p_stream_release(st);
        ep->st = NULL;
}

static const n2p_stream_handler reentrant_handler = { .on_data = reentrant_data };

static void reentrant_opened(pair *p, n2p_session *s, n2p_stream *st) {
        fleet *f = p->data;
        n2p_stream_set_handler(st, &reentrant_handler, &f->b[f->n_b++]);
}

static void test_reentrant_release(void) {
        pair p;
        fleet *f = g_new0(fleet, 1);

        pair_init(&p, 0, 64 * 1024, reentrant_opened);
        p.data = f;
        f->a[0] = (endpoint) { .recv_seed = 9 };
        endpoint_attach(&f->a[0], n2p_session_open_stream(p.a), p.a);
        g_assert_cmpint(n2p_stream_write(f->a[0].st, (const uint8_t *) "ping", 4), ==, 4);
        pair_settle(&p);
        g_assert_cmpuint(f->b[0].received, ==, 4);
        /* the echo went out before the reset, in order */
        g_assert_cmpuint(f->a[0].received, ==, 4);
        g_assert_true(f->a[0].reset);
        g_assert_cmpint(f->a[0].reset_error, ==, EIO);
        g_assert_cmpuint(n2p_session_n_streams(p.b), ==, 0);
        g_assert_false(p.b_closed);
        n2p_stream_release(f->a[0].st);
        pair_done(&p);
        g_free(f);
}

static void closing_reset(n2p_stream *st, int error, void *userdata) {
        pair *p = userdata;

        n2p_stream_release(st);
        if (p->data)
                return;         /* nested: the other stream, from the close below */
        p->data = p;
        /* close and free the session from inside a stream callback */
        n2p_session_close(p->b, -ECANCELED);
        p->b = n2p_session_free(p->b);
        p->ba.self = NULL;
}

static const n2p_stream_handler closing_handler = { .on_reset = closing_reset };

static void closing_opened(pair *p, n2p_session *s, n2p_stream *st) {
        n2p_stream_set_handler(st, &closing_handler, p);
}

static void test_free_inside_callback(void) {
        pair p;
        n2p_stream *st;

        pair_init(&p, 0, 64 * 1024, closing_opened);
        st = n2p_session_open_stream(p.a);
        g_assert_nonnull(st);
        n2p_session_open_stream(p.a);
        pair_settle(&p);
        n2p_stream_reset(st, EIO);
        pair_settle(&p);
        g_assert_null(p.b);
        g_assert_true(p.b_closed);
        g_assert_cmpint(p.b_error, ==, -ECANCELED);
        /* A heard the GOAWAY that B queued on its way out */
        g_assert_true(p.a_closed);
        g_assert_cmpint(p.a_error, ==, -ECANCELED);
        pair_done(&p);
}

static void freeing_opened(n2p_session *s, n2p_stream *st, void *userdata) {
        raw *r = userdata;

        r->opened++;
        r->s = n2p_session_free(r->s);
}

static const n2p_session_callbacks freeing_callbacks = {
        .stream_opened = freeing_opened,
        .closed = raw_closed,
};

static void test_free_in_opened(void) {
        raw *r = raw_new();
        n2p_cipher send = {}, recv = {};
        uint8_t rec[3 * 64];
        size_t n = 0;

        n2p_session_free(r->s);
        memset(send.k, 0x22, sizeof send.k);
        memset(recv.k, 0x11, sizeof recv.k);
        r->s = n2p_session_new(false, &send, &recv, raw_send, r, &freeing_callbacks, r);
        n += seal(r, rec + n, N2P_FRAME_OPEN, 1, NULL, 0);
        n += seal(r, rec + n, N2P_FRAME_OPEN, 3, NULL, 0);
        n += seal(r, rec + n, N2P_FRAME_DATA, 1, "x", 1);
        /* the session is freed by the first callback: the rest of the input is
         * dropped, no further callback runs (not even closed), nothing leaks */
        n2p_session_feed(r->s, rec, n);
        g_assert_null(r->s);
        g_assert_cmpuint(r->opened, ==, 1);
        g_assert_false(r->closed);
        raw_free(r);
}

static void test_free_with_open_streams(void) {
        pair p;
        fleet *f = g_new0(fleet, 1);

        pair_init(&p, 0, 64 * 1024, fleet_opened);
        p.data = f;
        for (unsigned i = 0; i < 4; i++) {
                f->a[i] = (endpoint) { .send_seed = i, .infinite = true };
                f->b[i] = (endpoint) { .recv_seed = i, .stalled = true };
                endpoint_attach(&f->a[i], n2p_session_open_stream(p.a), p.a);
                endpoint_pump(&f->a[i]);
        }
        for (unsigned i = 0; i < 50; i++)
                g_main_context_iteration(NULL, FALSE);
        /* free with everything in flight: no callbacks, no leaks (ASan) */
        p.a = n2p_session_free(p.a);
        p.ab.self = NULL;
        for (unsigned i = 0; i < 4; i++)
                g_assert_false(f->a[i].reset);
        g_assert_false(p.a_closed);
        pair_done(&p);
        g_free(f);
}

static bool a_closed_cond(void *data) {
        return ((pair *) data)->a_closed;
}

static void test_carrier_error(void) {
        pair p;
        fleet *f = g_new0(fleet, 1);

        pair_init(&p, 0, 64 * 1024, fleet_opened);
        p.data = f;
        endpoint_attach(&f->a[0], n2p_session_open_stream(p.a), p.a);
        pair_settle(&p);
        p.ab.fail = true;
        /* the stream call itself does not call back; the session closes soon after */
        g_assert_cmpint(n2p_stream_write(f->a[0].st, (const uint8_t *) "x", 1), ==, 1);
        g_assert_false(p.a_closed);
        g_assert_false(f->a[0].reset);
        g_assert_cmpint(n2p_stream_write(f->a[0].st, (const uint8_t *) "x", 1), ==, -EPIPE);
        g_assert_true(run_until(a_closed_cond, &p, 5000));
        g_assert_cmpint(p.a_error, ==, -EPIPE);
        g_assert_true(f->a[0].reset);
        g_assert_cmpint(f->a[0].reset_error, ==, EPIPE);
        n2p_stream_release(f->a[0].st);
        pair_done(&p);
        g_free(f);
}

/* ---- round-trip time ---- */

static bool rtt_cond(void *data) {
        pair *p = data;
        return n2p_session_rtt_us(p->a) > 0 && n2p_session_rtt_us(p->b) > 0;
}

static void test_ping_rtt(void) {
        pair p;

        pair_init(&p, 0, 64 * 1024, NULL);
        g_assert_cmpuint(n2p_session_rtt_us(p.a), ==, 0);
        g_assert_true(run_until(rtt_cond, &p, 3 * N2P_SESSION_PING_MS));
        /* In-memory carrier: well under a second. */
        g_assert_cmpuint(n2p_session_rtt_us(p.a), <, G_USEC_PER_SEC);
        g_assert_cmpuint(n2p_session_rtt_us(p.b), <, G_USEC_PER_SEC);
        g_assert_false(p.a_closed);
        g_assert_false(p.b_closed);
        pair_done(&p);
}

static bool rtt_a_cond(void *data) {
        pair *p = data;
        return n2p_session_rtt_us(p->a) > 0;
}

/* An explicit ping gives the round trip at once, well before the periodic one. */
static void test_ping_now(void) {
        pair p;

        pair_init(&p, 0, 64 * 1024, NULL);
        n2p_session_ping(p.a);
        g_assert_true(run_until(rtt_a_cond, &p, N2P_SESSION_PING_MS / 4));
        g_assert_cmpuint(n2p_session_rtt_us(p.b), ==, 0);
        pair_done(&p);
}

static bool b_closed_cond(void *data) {
        return ((pair *) data)->b_closed;
}

/* A peer that goes silent (its path or process gone, nothing said) ends the
 * session after N2P_SESSION_SILENCE_MS, not never. */
static void test_silent_peer(void) {
        pair p;
        gint64 t0;

        pair_init(&p, 0, 64 * 1024, NULL);
        n2p_session_ping(p.a);
        n2p_session_ping(p.b);
        g_assert_true(run_until(rtt_cond, &p, N2P_SESSION_PING_MS));
        p.ab.blackhole = true;          /* nothing from a reaches b any more */
        t0 = g_get_monotonic_time();
        g_assert_true(run_until(b_closed_cond, &p, N2P_SESSION_SILENCE_MS + 2 * N2P_SESSION_PING_MS + 1000));
        g_assert_cmpint(p.b_error, ==, -ETIMEDOUT);
        g_assert_cmpint(g_get_monotonic_time() - t0, >=, (gint64) (N2P_SESSION_SILENCE_MS - N2P_SESSION_PING_MS) * 1000);
        pair_done(&p);
}

static void test_ping_answered(void) {
        raw *r = raw_new();
        uint8_t stamp[8] = { 1, 2, 3, 4, 5, 6, 7, 8 };

        g_assert_cmpint(deliver(r, N2P_FRAME_PING, 0, stamp, sizeof stamp), ==, 0);
        g_assert_true(raw_sent_has(r, N2P_FRAME_PONG, 0, 0));
        /* A PONG that does not carry a plausible time of ours is ignored. */
        g_assert_cmpint(deliver(r, N2P_FRAME_PONG, 0, stamp, sizeof stamp), ==, 0);
        g_assert_cmpuint(n2p_session_rtt_us(r->s), ==, 0);
        g_assert_false(r->closed);
        raw_free(r);
}

static void test_ping_malformed(void) {
        uint8_t stamp[8] = {};
        raw *r = raw_new();
        g_assert_cmpint(deliver(r, N2P_FRAME_PING, 0, stamp, 4), ==, -EPROTO);
        g_assert_true(r->closed);
        raw_free(r);
        r = raw_new();
        g_assert_cmpint(deliver(r, N2P_FRAME_PONG, 3, stamp, 8), ==, -EPROTO);
        g_assert_true(r->closed);
        raw_free(r);
}

int main(int argc, char **argv) {
        g_test_init(&argc, &argv, NULL);
        g_assert_cmpint(sodium_init(), >=, 0);

        g_test_add_func("/transport/bidi/random-chunks", test_bidi_random_chunks);
        g_test_add_func("/transport/ping/rtt", test_ping_rtt);
        g_test_add_func("/transport/ping/now", test_ping_now);
        g_test_add_func("/transport/ping/silent-peer", test_silent_peer);
        g_test_add_func("/transport/ping/answered", test_ping_answered);
        g_test_add_func("/transport/ping/malformed", test_ping_malformed);
        g_test_add_func("/transport/bidi/one-byte-chunks", test_bidi_one_byte_chunks);
        g_test_add_func("/transport/bidi/large-chunks", test_bidi_large_chunks);
        g_test_add_func("/transport/half-close", test_half_close);
        g_test_add_func("/transport/fair-streams", test_fair_streams);
        g_test_add_func("/transport/stalled-reader", test_stalled_reader);
        g_test_add_func("/transport/limit/local", test_stream_limit_local);
        g_test_add_func("/transport/limit/peer", test_stream_limit_peer);
        g_test_add_func("/transport/window/exceeded", test_window_exceeded);
        g_test_add_func("/transport/window/granted", test_window_granted);
        g_test_add_func("/transport/record/tampered", test_tampered_record);
        g_test_add_func("/transport/record/replayed", test_replayed_record);
        g_test_add_func("/transport/record/oversized", test_oversized_record);
        g_test_add_func("/transport/record/undersized", test_undersized_record);
        g_test_add_func("/transport/record/largest", test_largest_record);
        g_test_add_func("/transport/frame/malformed", test_malformed_frames);
        g_test_add_func("/transport/frame/data-after-fin", test_data_after_fin);
        g_test_add_func("/transport/frame/after-close-ignored", test_frames_after_close_ignored);
        g_test_add_func("/transport/stream/unhandled-refused", test_unhandled_stream_refused);
        g_test_add_func("/transport/stream/reset-propagates", test_reset_propagates);
        g_test_add_func("/transport/session/goaway-error", test_goaway_error);
        g_test_add_func("/transport/session/goaway-orderly", test_goaway_orderly);
        g_test_add_func("/transport/stream/release", test_release);
        g_test_add_func("/transport/reentrant/release-in-data", test_reentrant_release);
        g_test_add_func("/transport/reentrant/free-in-callback", test_free_inside_callback);
        g_test_add_func("/transport/session/free-with-open-streams", test_free_with_open_streams);
        g_test_add_func("/transport/reentrant/free-in-opened", test_free_in_opened);
        g_test_add_func("/transport/session/carrier-error", test_carrier_error);
        return g_test_run();
}
