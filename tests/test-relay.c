/* SPDX-License-Identifier: MIT */
/*
 * Two sessions over an in-memory carrier, one stream between them, a relay at
 * each end attached to one side of a socketpair; the test drives the outer sides:
 *
 *   outer A =sp= relay A ~ session A ~~carrier~~ session B ~ relay B =sp= outer B
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <glib-unix.h>
#include <glib.h>
#include <sodium.h>

#include "relay.h"
#include "util.h"

#define MIB (1024u * 1024u)

/* ---- carrier: bounded, delivers from the main loop in random chunks ---- */

typedef struct pipe_end {
        n2p_session *self;
        n2p_session **peer;
        uint8_t *buf;
        size_t off, len, capacity;
        GRand *rand;
        guint idle;
        bool want_writable;
} pipe_end;

static gboolean pipe_deliver(gpointer userdata) {
        pipe_end *e = userdata;
        size_t budget = 256 * 1024;

        while (e->len > 0 && budget > 0) {
                size_t c = (size_t) g_rand_int_range(e->rand, 1, 20000);   /* MIN evaluates twice */

                c = MIN(MIN(c, e->len), budget);
                if (*e->peer)
                        n2p_session_feed(*e->peer, e->buf + e->off, c);
                e->off += c;
                e->len -= c;
                budget -= c;
        }
        if (e->len == 0)
                e->off = 0;
        if (e->want_writable && e->len < e->capacity && e->self) {
                e->want_writable = false;
                n2p_session_writable(e->self);
        }
        if (e->len > 0)
                return G_SOURCE_CONTINUE;
        e->idle = 0;
        return G_SOURCE_REMOVE;
}

static ssize_t pipe_send(const uint8_t *data, size_t len, void *userdata) {
        pipe_end *e = userdata;
        size_t n;

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
        return (ssize_t) n;
}

/* ---- the outer sides of the socketpairs ---- */

static uint8_t pattern(uint32_t seed, uint64_t pos) {
        uint64_t x = (pos >> 3) * 0x9E3779B97F4A7C15ull + seed;
        x ^= x >> 31;
        x *= 0xBF58476D1CE4E5B9ull;
        x ^= x >> 29;
        return (uint8_t) (x >> ((pos & 7) * 8));
}

typedef struct outer {
        int fd;
        uint32_t send_seed, recv_seed;
        uint64_t to_send, sent;
        bool shut_when_sent, shut;
        bool reading;                   /* false: the reader has stopped */
        uint64_t received;
        bool eof;
        int read_error;
        int write_error;
        bool content_ok;
        guint in_source, out_source;
} outer;

static void outer_update(outer *o);

static gboolean outer_in(gint fd, GIOCondition cond, gpointer userdata) {
        outer *o = userdata;
        uint8_t buf[65536];

        for (unsigned i = 0; i < 4 && o->reading; i++) {
                ssize_t n = read(o->fd, buf, sizeof buf);
                if (n < 0) {
                        if (errno != EAGAIN)
                                o->read_error = errno;
                        break;
                }
                if (n == 0) {
                        o->eof = true;
                        break;
                }
                for (ssize_t k = 0; k < n; k++)
                        if (buf[k] != pattern(o->recv_seed, o->received + (uint64_t) k)) {
                                o->content_ok = false;
                                break;
                        }
                o->received += (uint64_t) n;
        }
        o->in_source = 0;
        outer_update(o);
        return G_SOURCE_REMOVE;
}

static gboolean outer_out(gint fd, GIOCondition cond, gpointer userdata) {
        outer *o = userdata;
        uint8_t buf[65536];

        while (o->sent < o->to_send) {
                size_t n = (size_t) MIN((uint64_t) sizeof buf, o->to_send - o->sent);
                ssize_t w;

                for (size_t k = 0; k < n; k++)
                        buf[k] = pattern(o->send_seed, o->sent + k);
                w = send(o->fd, buf, n, MSG_NOSIGNAL | MSG_DONTWAIT);
                if (w < 0) {
                        if (errno != EAGAIN)
                                o->write_error = errno;
                        break;
                }
                o->sent += (uint64_t) w;
        }
        if (o->sent == o->to_send && o->shut_when_sent && !o->shut) {
                shutdown(o->fd, SHUT_WR);
                o->shut = true;
        }
        o->out_source = 0;
        outer_update(o);
        return G_SOURCE_REMOVE;
}

static void outer_update(outer *o) {
        if (o->fd < 0)
                return;
        if (o->reading && !o->eof && o->read_error == 0 && o->in_source == 0)
                o->in_source = g_unix_fd_add(o->fd, G_IO_IN, outer_in, o);
        if (((o->sent < o->to_send && o->write_error == 0) || (o->shut_when_sent && !o->shut)) &&
            o->out_source == 0)
                o->out_source = g_unix_fd_add(o->fd, G_IO_OUT, outer_out, o);
}

static void outer_stop(outer *o) {
        if (o->in_source)
                g_source_remove(o->in_source);
        if (o->out_source)
                g_source_remove(o->out_source);
        o->in_source = o->out_source = 0;
        n2p_closep(&o->fd);
        o->fd = -1;
}

/* ---- the whole chain ---- */

typedef struct chain {
        n2p_session *a, *b;
        pipe_end ab, ba;
        n2p_stream *sta, *stb;
        n2p_relay *ra, *rb;
        int inner_b;                    /* relay B's socket, until B's stream opens */
        outer oa, ob;
        unsigned done_a, done_b;
        int error_a, error_b;
        uint64_t a_to_stream, b_to_socket;      /* counters read in done */
        bool a_closed, b_closed;
} chain;

static void relay_done(n2p_relay *r, int error, void *userdata) {
        chain *c = userdata;

        if (r == c->ra) {
                c->done_a++;
                c->error_a = error;
                c->a_to_stream = n2p_relay_bytes_to_stream(r);
                c->ra = n2p_relay_free(r);
        } else {
                g_assert_true(r == c->rb);
                c->done_b++;
                c->error_b = error;
                c->b_to_socket = n2p_relay_bytes_to_socket(r);
                c->rb = n2p_relay_free(r);
        }
}

static void chain_opened(n2p_session *s, n2p_stream *st, void *userdata) {
        chain *c = userdata;

        g_assert_true(s == c->b);
        g_assert_null(c->stb);
        c->stb = st;
        c->rb = n2p_relay_new(st, c->inner_b, relay_done, c);
        g_assert_nonnull(c->rb);
        c->inner_b = -1;
}

static void chain_closed(n2p_session *s, int error, void *userdata) {
        chain *c = userdata;

        if (g_test_verbose())
                g_printerr("session %c closed: %s\n", s == c->a ? 'A' : 'B', g_strerror(-error));
        if (s == c->a)
                c->a_closed = true;
        else
                c->b_closed = true;
}

static const n2p_session_callbacks chain_callbacks = {
        .stream_opened = chain_opened,
        .closed = chain_closed,
};

static void chain_init(chain *c) {
        n2p_cipher k1 = {}, k2 = {}, k3 = {}, k4 = {};
        int sa[2], sb[2];

        *c = (chain) {};
        memset(k1.k, 0x31, sizeof k1.k);
        memset(k2.k, 0x32, sizeof k2.k);
        memset(k3.k, 0x32, sizeof k3.k);
        memset(k4.k, 0x31, sizeof k4.k);
        c->ab = (pipe_end) { .peer = &c->b, .capacity = 128 * 1024, .rand = g_rand_new_with_seed(7) };
        c->ba = (pipe_end) { .peer = &c->a, .capacity = 128 * 1024, .rand = g_rand_new_with_seed(8) };
        c->ab.buf = g_malloc(c->ab.capacity);
        c->ba.buf = g_malloc(c->ba.capacity);
        c->a = n2p_session_new(true, &k1, &k2, pipe_send, &c->ab, &chain_callbacks, c);
        c->b = n2p_session_new(false, &k3, &k4, pipe_send, &c->ba, &chain_callbacks, c);
        c->ab.self = c->a;
        c->ba.self = c->b;

        g_assert_cmpint(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sa), ==, 0);
        g_assert_cmpint(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sb), ==, 0);
        c->oa = (outer) { .fd = sa[0], .send_seed = 1, .recv_seed = 2, .reading = true, .content_ok = true };
        c->ob = (outer) { .fd = sb[0], .send_seed = 2, .recv_seed = 1, .reading = true, .content_ok = true };
        g_assert_true(g_unix_set_fd_nonblocking(sa[0], TRUE, NULL));
        g_assert_true(g_unix_set_fd_nonblocking(sb[0], TRUE, NULL));
        c->inner_b = sb[1];

        c->sta = n2p_session_open_stream(c->a);
        g_assert_nonnull(c->sta);
        c->ra = n2p_relay_new(c->sta, sa[1], relay_done, c);
        g_assert_nonnull(c->ra);
        /* the relay made its socket non-blocking */
        g_assert_true(fcntl(sa[1], F_GETFL) & O_NONBLOCK);
}

static void chain_done(chain *c) {
        c->ra = n2p_relay_free(c->ra);
        c->rb = n2p_relay_free(c->rb);
        n2p_closep(&c->inner_b);
        outer_stop(&c->oa);
        outer_stop(&c->ob);
        c->a = n2p_session_free(c->a);
        c->b = n2p_session_free(c->b);
        for (pipe_end *e = &c->ab; e <= &c->ba; e++) {
                if (e->idle)
                        g_source_remove(e->idle);
                g_free(e->buf);
                g_rand_free(e->rand);
        }
}

static gboolean timeout_cb(gpointer userdata) {
        *(bool *) userdata = true;
        return G_SOURCE_REMOVE;
}

static bool run_until(bool (*cond)(chain *), chain *c, unsigned timeout_ms) {
        bool timed_out = false;
        guint t = g_timeout_add(timeout_ms, timeout_cb, &timed_out);

        while (!cond(c) && !timed_out)
                g_main_context_iteration(NULL, TRUE);
        if (!timed_out)
                g_source_remove(t);
        return cond(c);
}

/* Runs the loop for a while, however it goes. */
static void run_for(unsigned ms) {
        bool timed_out = false;
        g_timeout_add(ms, timeout_cb, &timed_out);
        while (!timed_out)
                g_main_context_iteration(NULL, TRUE);
}

static bool both_done(chain *c) {
        return c->done_a > 0 && c->done_b > 0;
}

static bool both_eof(chain *c) {
        return c->oa.eof && c->ob.eof;
}

/* ---- tests ---- */

static void test_both_ways(void) {
        const uint64_t n = 16 * MIB;
        chain c;

        chain_init(&c);
        c.oa.to_send = c.ob.to_send = n;
        c.oa.shut_when_sent = c.ob.shut_when_sent = true;
        outer_update(&c.oa);
        outer_update(&c.ob);

        g_assert_true(run_until(both_eof, &c, 60000));
        g_assert_true(run_until(both_done, &c, 10000));
        g_assert_true(c.oa.content_ok);
        g_assert_true(c.ob.content_ok);
        g_assert_cmpuint(c.oa.received, ==, n);
        g_assert_cmpuint(c.ob.received, ==, n);
        g_assert_cmpint(c.oa.read_error, ==, 0);
        g_assert_cmpint(c.ob.write_error, ==, 0);
        g_assert_cmpuint(c.done_a, ==, 1);
        g_assert_cmpuint(c.done_b, ==, 1);
        g_assert_cmpint(c.error_a, ==, 0);
        g_assert_cmpint(c.error_b, ==, 0);
        g_assert_cmpuint(c.a_to_stream, ==, n);
        g_assert_cmpuint(c.b_to_socket, ==, n);
        g_assert_cmpuint(n2p_session_bytes_sent(c.a), ==, n);
        g_assert_cmpuint(n2p_session_bytes_sent(c.b), ==, n);
        /* finished both ways: the streams are gone, nothing was reset */
        g_assert_cmpuint(n2p_session_n_streams(c.a), ==, 0);
        g_assert_cmpuint(n2p_session_n_streams(c.b), ==, 0);
        g_assert_false(c.a_closed);
        chain_done(&c);
}

static bool b_eof(chain *c) {
        return c->ob.eof;
}

static bool a_got_all(chain *c) {
        return c->oa.received == c->ob.to_send && c->ob.sent == c->ob.to_send;
}

static void test_half_close(void) {
        chain c;

        chain_init(&c);
        c.oa.to_send = 3 * MIB;
        c.oa.shut_when_sent = true;
        outer_update(&c.oa);
        outer_update(&c.ob);

        /* A's outer side shut its writing half: B's outer side reads EOF */
        g_assert_true(run_until(b_eof, &c, 30000));
        g_assert_cmpuint(c.ob.received, ==, 3 * MIB);
        g_assert_true(c.ob.content_ok);
        g_assert_cmpuint(c.done_a + c.done_b, ==, 0);

        /* the other direction still works */
        c.ob.to_send = 5 * MIB;
        outer_update(&c.ob);
        g_assert_true(run_until(a_got_all, &c, 30000));
        g_assert_true(c.oa.content_ok);
        g_assert_false(c.oa.eof);
        g_assert_cmpuint(c.done_a + c.done_b, ==, 0);

        /* and ends with its own EOF */
        shutdown(c.ob.fd, SHUT_WR);
        c.ob.shut = true;
        g_assert_true(run_until(both_done, &c, 30000));
        g_assert_true(run_until(both_eof, &c, 10000));
        g_assert_cmpint(c.error_a, ==, 0);
        g_assert_cmpint(c.error_b, ==, 0);
        g_assert_cmpuint(c.oa.received, ==, 5 * MIB);
        chain_done(&c);
}

static bool b_received_some(chain *c) {
        return c->ob.received > 0;
}

static void test_backpressure(void) {
        const uint64_t n = 12 * MIB;
        chain c;
        uint64_t sent, in_flight;

        chain_init(&c);
        c.ob.reading = false;
        c.oa.to_send = n;
        c.oa.shut_when_sent = true;
        outer_update(&c.oa);

        /* let it fill up until the writer makes no more progress */
        sent = 0;
        for (unsigned i = 0; i < 100 && (sent == 0 || c.oa.sent != sent); i++) {
                sent = c.oa.sent;
                run_for(150);
        }
        g_assert_cmpuint(c.oa.sent, ==, sent);
        g_assert_cmpuint(sent, <, n);
        g_assert_cmpuint(c.done_a + c.done_b, ==, 0);
        /* what left relay A but did not reach B's socket is bounded by the window:
         * the session queue, the carrier and relay B's buffer together */
        in_flight = n2p_relay_bytes_to_stream(c.ra) - n2p_relay_bytes_to_socket(c.rb);
        g_assert_cmpuint(in_flight, <=, N2P_STREAM_WINDOW);
        g_assert_cmpuint(in_flight, >, 0);
        g_assert_cmpuint(n2p_session_send_queued(c.a), <=, N2P_SESSION_SEND_BUFFER + 64 * 1024);

        /* the reader comes back: everything arrives */
        c.ob.reading = true;
        outer_update(&c.ob);
        g_assert_true(run_until(b_received_some, &c, 10000));
        g_assert_true(run_until(b_eof, &c, 60000));
        g_assert_cmpuint(c.ob.received, ==, n);
        g_assert_true(c.ob.content_ok);
        g_assert_cmpuint(c.done_a + c.done_b, ==, 0);
        chain_done(&c);
}

static bool a_flowing(chain *c) {
        return c->oa.received > 0 && c->ob.received == c->oa.to_send;
}

static bool b_eof_or_error(chain *c) {
        return c->ob.eof || c->ob.read_error != 0;
}

static void test_abrupt_close(void) {
        chain c;
        uint8_t buf[16];
        ssize_t n;

        chain_init(&c);
        /* B's outer side writes more than can ever be buffered */
        c.ob.to_send = 64 * MIB;
        c.oa.to_send = 100 * 1024;
        outer_update(&c.ob);
        outer_update(&c.oa);
        g_assert_true(run_until(a_flowing, &c, 10000));

        /* A's outer side goes away without a word */
        outer_stop(&c.oa);
        g_assert_true(run_until(both_done, &c, 30000));
        g_assert_cmpuint(c.done_a, ==, 1);
        g_assert_cmpuint(c.done_b, ==, 1);
        g_assert_cmpint(c.error_a, ==, -EPIPE);
        g_assert_cmpint(c.error_b, ==, -EPIPE);
        /* B's outer side sees its peer gone, after what A had sent */
        g_assert_true(run_until(b_eof_or_error, &c, 10000));
        g_assert_cmpuint(c.ob.received, ==, 100 * 1024);
        g_assert_true(c.ob.content_ok);
        n = read(c.ob.fd, buf, sizeof buf);
        g_assert_true(n == 0 || (n < 0 && errno == ECONNRESET));
        g_assert_cmpuint(n2p_session_n_streams(c.a), ==, 0);
        g_assert_cmpuint(n2p_session_n_streams(c.b), ==, 0);
        g_assert_false(c.a_closed);
        g_assert_false(c.b_closed);
        chain_done(&c);
}

static bool b_open(chain *c) {
        return c->rb != NULL;
}

static bool a_done_and_eof(chain *c) {
        return c->done_a > 0 && (c->oa.eof || c->oa.read_error != 0);
}

static void test_peer_reset(void) {
        chain c;

        chain_init(&c);
        outer_update(&c.oa);
        outer_update(&c.ob);
        g_assert_true(run_until(b_open, &c, 10000));
        /* B's side gives up on the stream: relay A ends with the peer's code */
        c.rb = n2p_relay_free(c.rb);
        g_assert_true(run_until(b_eof, &c, 10000));
        g_assert_true(run_until(a_done_and_eof, &c, 10000));
        g_assert_cmpuint(c.done_a, ==, 1);
        g_assert_cmpint(c.error_a, ==, -ECONNABORTED);
        /* relay A closed its socket: A's outer side reads EOF */
        g_assert_true(c.oa.eof || c.oa.read_error == ECONNRESET);
        chain_done(&c);
}

static void test_session_close(void) {
        chain c;

        chain_init(&c);
        outer_update(&c.oa);
        outer_update(&c.ob);
        g_assert_true(run_until(b_open, &c, 10000));
        n2p_session_close(c.a, -ETIMEDOUT);
        g_assert_cmpuint(c.done_a, ==, 1);
        g_assert_cmpint(c.error_a, ==, -ETIMEDOUT);
        g_assert_true(run_until(both_done, &c, 10000));
        g_assert_cmpint(c.error_b, ==, -ETIMEDOUT);
        g_assert_true(run_until(both_eof, &c, 10000));
        chain_done(&c);
}

int main(int argc, char **argv) {
        g_test_init(&argc, &argv, NULL);
        g_assert_cmpint(sodium_init(), >=, 0);

        g_test_add_func("/relay/both-ways", test_both_ways);
        g_test_add_func("/relay/half-close", test_half_close);
        g_test_add_func("/relay/backpressure", test_backpressure);
        g_test_add_func("/relay/abrupt-close", test_abrupt_close);
        g_test_add_func("/relay/peer-reset", test_peer_reset);
        g_test_add_func("/relay/session-close", test_session_close);
        return g_test_run();
}
