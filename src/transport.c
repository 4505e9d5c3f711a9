/* SPDX-License-Identifier: MIT */
/*
 * Streams over one encrypted record pipe. Callbacks run only from the session
 * entry points that take input (feed, writable, deliver_frame, close, and a
 * deferred carrier failure); the stream calls (write, consumed, shutdown, reset,
 * release) never call back, so a handler may use them freely. Objects are freed
 * only when no entry point is on the stack ("busy"), which is what makes
 * release and session free safe from inside callbacks.
 */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include <glib.h>
#include <sodium.h>

#include "transport.h"
#include "util.h"

enum {
        RECORD_OVERHEAD = 2 + N2P_FRAME_HEADER + N2P_NOISE_TAGLEN,
        RECORD_MIN = N2P_FRAME_HEADER + N2P_NOISE_TAGLEN,   /* ciphertext of an empty frame */
        /* Control frames may go past the send buffer by this much so that credit,
         * FIN and RESET never wait behind data. A peer that makes us queue more
         * than that while it does not read ends the session. */
        CONTROL_SLACK = 32 * 1024,
        SEND_QUEUE_LIMIT = N2P_SESSION_SEND_BUFFER + CONTROL_SLACK,
        /* GOAWAY always finds room, even after the control slack ran out. */
        SEND_QUEUE_CAP = SEND_QUEUE_LIMIT + 64,
        ERRNO_MAX = 4095,
};

/* A peer may grant credit beyond our default window, but not without bound. */
#define CREDIT_MAX ((uint64_t) UINT32_MAX)

struct n2p_stream {
        n2p_session *session;
        n2p_stream *prev, *next;        /* every stream object until it is freed */
        uint32_t id;
        bool local;                     /* opened by this side */
        bool live;                      /* in the id table, counted against the limit */
        bool fin_sent, fin_received;
        bool reset;                     /* gone both ways */
        bool quiet;                     /* no more callbacks (reset locally or released) */
        bool released;
        bool has_handler;
        bool blocked;                   /* in session->blocked, waiting for on_writable */
        uint64_t send_credit;           /* bytes we may still send */
        uint64_t recv_avail;            /* bytes the peer may still send */
        uint64_t recv_unconsumed;       /* delivered to on_data, not yet consumed */
        uint64_t recv_grant;            /* consumed, not yet granted back with WINDOW */
        n2p_stream_handler handler;
        void *userdata;
};

struct n2p_session {
        bool initiator;
        n2p_cipher send, recv;
        bool sealed_carrier;            /* records carry no tag: the carrier seals */
        bool any_record;                /* sealed or opened one: the format is fixed */
        n2p_carrier_send_fn carrier_send;
        void *carrier_userdata;
        n2p_session_callbacks cb;
        void *userdata;

        GHashTable *live;               /* id -> live stream */
        n2p_stream *streams;            /* every stream object */
        unsigned n_local, n_peer;
        uint32_t next_local_id;         /* 0 once the id space is used up */
        uint32_t max_peer_id;

        GQueue blocked;                 /* streams waiting for send room, in turn order */

        uint8_t *sendq;                 /* sealed records for the carrier */
        size_t sq_start, sq_end;
        bool flushing;
        bool carrier_dead;

        uint8_t rbuf[N2P_RECORD_MAX];   /* a record split across feeds */
        size_t rlen;
        bool feeding;
        uint8_t plain[N2P_FRAME_HEADER + N2P_FRAME_MAX_PAYLOAD];
        uint8_t scratch[N2P_FRAME_HEADER + N2P_FRAME_MAX_PAYLOAD];

        unsigned busy;
        bool free_pending;
        bool closed;
        int close_error;
        int pending_error;              /* closes the session at the next safe point */
        guint fail_source;

        uint64_t bytes_sent, bytes_received;
        guint ping_source;
        uint32_t srtt_us;
        gint64 last_heard;              /* monotonic µs of the last authentic record; 0: none yet */
};

static void session_close_internal(n2p_session *s, int error, bool send_goaway);

static size_t sendq_len(const n2p_session *s) {
        return s->sq_end - s->sq_start;
}

static bool is_local_id(const n2p_session *s, uint32_t id) {
        return ((id & 1) == 1) == s->initiator;
}

static int errno_code(int error, int fallback) {
        if (error < 0)
                error = -error;
        return error > 0 && error <= ERRNO_MAX ? error : fallback;
}

static gboolean fail_cb(gpointer userdata);

/* Carrier and queue failures can happen inside stream calls, which promise not to
 * call back: the session closes at the end of the current entry point, or from
 * the main loop when there is none. */
static void session_fail_later(n2p_session *s, int error, bool carrier) {
        if (carrier)
                s->carrier_dead = true;
        if (s->closed || s->pending_error != 0)
                return;
        s->pending_error = error;
        if (s->busy == 0 && s->fail_source == 0)
                s->fail_source = g_idle_add(fail_cb, s);
}

static void session_flush(n2p_session *s) {
        if (s->flushing || s->carrier_dead)
                return;
        s->flushing = true;
        while (sendq_len(s) > 0) {
                ssize_t n = s->carrier_send(s->sendq + s->sq_start, sendq_len(s), s->carrier_userdata);
                if (n == -EAGAIN || n == -EWOULDBLOCK || n == -EINTR || n == 0)
                        break;
                if (n < 0) {
                        session_fail_later(s, (int) n, true);
                        break;
                }
                s->sq_start += MIN((size_t) n, sendq_len(s));
        }
        if (sendq_len(s) == 0)
                s->sq_start = s->sq_end = 0;
        s->flushing = false;
}

/* Seals one frame onto the send queue, which may grow to limit bytes. */
static int session_seal(n2p_session *s, uint8_t type, uint32_t id, const uint8_t *payload, size_t plen,
                        size_t limit) {
        size_t flen = N2P_FRAME_HEADER + plen, tag = s->sealed_carrier ? 0 : N2P_NOISE_TAGLEN;
        size_t need = 2 + flen + tag;
        int r;

        if (plen > N2P_FRAME_MAX_PAYLOAD)
                return -EINVAL;
        if (sendq_len(s) + need > limit)
                return -ENOBUFS;
        if (!s->sendq)
                s->sendq = g_malloc(SEND_QUEUE_CAP);
        if (s->sq_end + need > SEND_QUEUE_CAP) {
                memmove(s->sendq, s->sendq + s->sq_start, sendq_len(s));
                s->sq_end -= s->sq_start;
                s->sq_start = 0;
        }

        /* Over a carrier that seals, the frame is built in place; otherwise in
         * scratch, then sealed into place. */
        uint8_t *rec = s->sendq + s->sq_end;
        uint8_t *f = s->sealed_carrier ? rec + 2 : s->scratch;
        n2p_put_be16(rec, (uint16_t) (flen + tag));
        f[0] = type;
        f[1] = 0;
        n2p_put_be32(f + 2, id);
        n2p_put_be32(f + 6, (uint32_t) plen);
        if (plen > 0)
                memcpy(f + N2P_FRAME_HEADER, payload, plen);
        if (!s->sealed_carrier) {
                r = n2p_cipher_encrypt(&s->send, rec, 2, s->scratch, flen, rec + 2);
                if (r < 0)
                        return r;
        }
        s->sq_end += need;
        s->any_record = true;
        return 0;
}

static void session_control(n2p_session *s, uint8_t type, uint32_t id, uint32_t value, bool has_value) {
        uint8_t p[4];
        int r;

        if (s->closed || s->pending_error != 0)
                return;
        n2p_put_be32(p, value);
        r = session_seal(s, type, id, p, has_value ? 4 : 0, SEND_QUEUE_LIMIT);
        if (r < 0) {
                session_fail_later(s, r, false);
                return;
        }
        session_flush(s);
}

static void session_enter(n2p_session *s) {
        s->busy++;
}

static void stream_free(n2p_stream *st);

/* Returns false when the session was freed. */
static bool session_leave(n2p_session *s) {
        if (s->busy == 1) {
                if (s->pending_error != 0 && !s->closed)
                        session_close_internal(s, s->pending_error, !s->carrier_dead);

                for (n2p_stream *st = s->streams, *next; st; st = next) {
                        next = st->next;
                        if (st->released && !st->live)
                                stream_free(st);
                }
                if (s->free_pending) {
                        s->busy = 0;
                        n2p_session_free(s);
                        return false;
                }
        }
        s->busy--;
        return true;
}

static gboolean fail_cb(gpointer userdata) {
        n2p_session *s = userdata;

        s->fail_source = 0;
        session_enter(s);
        session_leave(s);
        return G_SOURCE_REMOVE;
}

static void stream_unblock(n2p_stream *st) {
        if (!st->blocked)
                return;
        g_queue_remove(&st->session->blocked, st);
        st->blocked = false;
}

static void stream_block(n2p_stream *st) {
        if (st->blocked)
                return;
        g_queue_push_tail(&st->session->blocked, st);
        st->blocked = true;
}

/* The stream leaves the protocol: its id no longer counts, late frames for it are
 * ignored. The object lives on until released. */
static void stream_retire(n2p_stream *st) {
        n2p_session *s = st->session;

        if (!st->live)
                return;
        st->live = false;
        g_hash_table_remove(s->live, GUINT_TO_POINTER(st->id));
        if (st->local)
                s->n_local--;
        else
                s->n_peer--;
        stream_unblock(st);
}

static n2p_stream *stream_new(n2p_session *s, uint32_t id, bool local) {
        n2p_stream *st = g_new0(n2p_stream, 1);

        st->session = s;
        st->id = id;
        st->local = local;
        st->live = true;
        st->send_credit = N2P_STREAM_WINDOW;
        st->recv_avail = N2P_STREAM_WINDOW;
        st->next = s->streams;
        if (s->streams)
                s->streams->prev = st;
        s->streams = st;
        g_hash_table_insert(s->live, GUINT_TO_POINTER(id), st);
        if (local)
                s->n_local++;
        else
                s->n_peer++;
        return st;
}

static void stream_free(n2p_stream *st) {
        n2p_session *s = st->session;

        stream_retire(st);
        if (st->prev)
                st->prev->next = st->next;
        else
                s->streams = st->next;
        if (st->next)
                st->next->prev = st->prev;
        g_free(st);
}

static bool stream_can_send(const n2p_stream *st) {
        return st->live && !st->fin_sent && !st->session->closed && st->session->pending_error == 0;
}

static size_t session_data_room(const n2p_session *s) {
        size_t q = sendq_len(s);
        return q >= N2P_SESSION_SEND_BUFFER ? 0 : N2P_SESSION_SEND_BUFFER - q;
}

/* The payload of the next DATA frame: within the credit and the send buffer. */
static size_t data_chunk(size_t want, uint64_t credit, size_t room) {
        if (room <= RECORD_OVERHEAD)
                return 0;
        return (size_t) MIN(MIN((uint64_t) want, credit), (uint64_t) MIN((size_t) N2P_FRAME_MAX_PAYLOAD, room - RECORD_OVERHEAD));
}

void n2p_session_ping(n2p_session *s) {
        uint8_t p[8];
        int r;

        if (!s || s->closed || s->pending_error != 0 || s->free_pending)
                return;
        n2p_put_be64(p, (uint64_t) g_get_monotonic_time());
        r = session_seal(s, N2P_FRAME_PING, 0, p, sizeof p, SEND_QUEUE_LIMIT);
        if (r < 0)
                session_fail_later(s, r, false);
        else
                session_flush(s);
}

static gboolean ping_cb(gpointer userdata) {
        n2p_session *s = userdata;
        /* Only once the peer was heard: before that the path may still be coming up,
         * and ICE has its own time limit for that. */
        if (s->last_heard && !s->closed &&
            g_get_monotonic_time() - s->last_heard > (gint64) N2P_SESSION_SILENCE_MS * 1000) {
                session_fail_later(s, -ETIMEDOUT, false);
                return G_SOURCE_CONTINUE;
        }
        n2p_session_ping(s);
        return G_SOURCE_CONTINUE;
}

static int handle_ping(n2p_session *s, uint8_t type, const uint8_t *p) {
        if (type == N2P_FRAME_PING) {
                int r = session_seal(s, N2P_FRAME_PONG, 0, p, 8, SEND_QUEUE_LIMIT);
                if (r < 0)
                        return r;
                session_flush(s);
                return 0;
        }
        /* A PONG carries our own clock back; anything implausible is ignored. */
        uint64_t sent = n2p_get_be64(p), now = (uint64_t) g_get_monotonic_time();
        if (sent <= now && now - sent < 60 * G_USEC_PER_SEC) {
                uint32_t sample = (uint32_t) (now - sent);
                s->srtt_us = s->srtt_us ? (uint32_t) (((uint64_t) s->srtt_us * 7 + sample) / 8) : sample;
        }
        return 0;
}

n2p_session *n2p_session_new(bool initiator, n2p_cipher *send, n2p_cipher *recv,
                             n2p_carrier_send_fn carrier_send, void *carrier_userdata,
                             const n2p_session_callbacks *cb, void *userdata) {
        n2p_session *s;

        if (!send || !recv || !carrier_send) {
                errno = EINVAL;
                return NULL;
        }

        s = g_new0(n2p_session, 1);
        s->initiator = initiator;
        s->send = *send;
        s->recv = *recv;
        n2p_cipher_wipe(send);
        n2p_cipher_wipe(recv);
        s->carrier_send = carrier_send;
        s->carrier_userdata = carrier_userdata;
        if (cb)
                s->cb = *cb;
        s->userdata = userdata;
        s->live = g_hash_table_new(g_direct_hash, g_direct_equal);
        s->next_local_id = initiator ? 1 : 2;
        g_queue_init(&s->blocked);
        s->ping_source = g_timeout_add(N2P_SESSION_PING_MS, ping_cb, s);
        return s;
}

n2p_session *n2p_session_free(n2p_session *s) {
        if (!s)
                return NULL;
        if (s->busy > 0) {
                /* From inside a callback: finish when the entry point returns. */
                s->free_pending = true;
                return NULL;
        }
        if (s->fail_source != 0)
                g_source_remove(s->fail_source);
        if (s->ping_source != 0)
                g_source_remove(s->ping_source);
        while (s->streams)
                stream_free(s->streams);
        g_queue_clear(&s->blocked);
        g_hash_table_destroy(s->live);
        g_free(s->sendq);
        n2p_cipher_wipe(&s->send);
        n2p_cipher_wipe(&s->recv);
        sodium_memzero(s->rbuf, sizeof s->rbuf);
        sodium_memzero(s->plain, sizeof s->plain);
        sodium_memzero(s->scratch, sizeof s->scratch);
        g_free(s);
        return NULL;
}

static void session_close_internal(n2p_session *s, int error, bool send_goaway) {
        int code = errno_code(error, ECONNRESET);

        if (s->closed)
                return;
        s->closed = true;
        s->close_error = error;

        session_enter(s);
        /* Closing stops new streams, so the list only shrinks below us, and
         * nothing is freed while busy. A session freed from a callback gets no
         * more callbacks. */
        for (n2p_stream *st = s->streams; st; st = st->next) {
                if (!st->live)
                        continue;
                st->reset = true;
                stream_retire(st);
                if (!st->quiet && st->has_handler && st->handler.on_reset && !s->free_pending)
                        st->handler.on_reset(st, code, st->userdata);
                st->quiet = true;
        }
        g_queue_clear(&s->blocked);
        for (n2p_stream *st = s->streams; st; st = st->next)
                st->blocked = false;

        if (send_goaway && !s->carrier_dead) {
                uint8_t p[4];
                n2p_put_be32(p, error < 0 ? (uint32_t) errno_code(error, EPROTO) : 0);
                if (session_seal(s, N2P_FRAME_GOAWAY, 0, p, sizeof p, SEND_QUEUE_CAP) >= 0)
                        session_flush(s);
        }

        if (s->cb.closed && !s->free_pending)
                s->cb.closed(s, error, s->userdata);
        session_leave(s);
}

void n2p_session_close(n2p_session *s, int error) {
        if (!s || s->closed)
                return;
        session_enter(s);
        session_close_internal(s, error, true);
        session_leave(s);
}

static void dispatch_writable(n2p_session *s) {
        guint n = g_queue_get_length(&s->blocked);

        /* One turn each, in the order they blocked; a stream that blocks again
         * goes to the back, so the first one cannot keep the buffer to itself. */
        while (n-- > 0 && !s->closed && s->pending_error == 0 && !s->free_pending &&
               session_data_room(s) > RECORD_OVERHEAD) {
                n2p_stream *st = g_queue_pop_head(&s->blocked);
                if (!st)
                        break;
                st->blocked = false;
                if (!stream_can_send(st) || st->quiet)
                        continue;
                if (st->send_credit == 0) {
                        stream_block(st);
                        continue;
                }
                if (st->has_handler && st->handler.on_writable)
                        st->handler.on_writable(st, st->userdata);
        }
}

static int handle_open(n2p_session *s, uint32_t id) {
        n2p_stream *st;

        if (is_local_id(s, id) || id <= s->max_peer_id)
                return -EPROTO;
        s->max_peer_id = id;

        if (s->n_peer >= N2P_MAX_STREAMS) {
                session_control(s, N2P_FRAME_RESET, id, ECONNREFUSED, true);
                return 0;
        }

        st = stream_new(s, id, false);
        if (s->cb.stream_opened && !s->free_pending)
                s->cb.stream_opened(s, st, s->userdata);
        /* Without a handler nobody owns the stream: refuse it and let it go. */
        if (!st->has_handler && !st->released) {
                n2p_stream_reset(st, ECONNREFUSED);
                n2p_stream_release(st);
        }
        return 0;
}

static int handle_data(n2p_session *s, n2p_stream *st, const uint8_t *p, size_t len) {
        if (st->fin_received || len > st->recv_avail)
                return -EPROTO;
        st->recv_avail -= len;
        st->recv_unconsumed += len;
        s->bytes_received += len;
        if (!st->quiet && st->has_handler && st->handler.on_data)
                st->handler.on_data(st, p, len, st->userdata);
        else
                n2p_stream_consumed(st, len);
        return 0;
}

static int handle_window(n2p_stream *st, uint32_t inc) {
        if (st->send_credit + inc > CREDIT_MAX)
                return -EPROTO;
        st->send_credit += inc;
        return 0;
}

static int handle_fin(n2p_stream *st) {
        if (st->fin_received)
                return -EPROTO;
        st->fin_received = true;
        if (st->fin_sent)
                stream_retire(st);
        if (!st->quiet && st->has_handler && st->handler.on_eof)
                st->handler.on_eof(st, st->userdata);
        return 0;
}

static int handle_reset(n2p_stream *st, uint32_t code) {
        st->reset = true;
        stream_retire(st);
        if (!st->quiet && st->has_handler && st->handler.on_reset)
                st->handler.on_reset(st, (int) code, st->userdata);
        st->quiet = true;
        return 0;
}

/* One decrypted frame. -EPROTO for anything the peer must not send. */
static int process_frame(n2p_session *s, const uint8_t *f, size_t len) {
        uint8_t type;
        uint32_t id, plen, value = 0;
        const uint8_t *p;
        n2p_stream *st;

        if (len < N2P_FRAME_HEADER)
                return -EPROTO;
        type = f[0];
        id = n2p_get_be32(f + 2);
        plen = n2p_get_be32(f + 6);
        p = f + N2P_FRAME_HEADER;
        if (f[1] != 0 || plen != len - N2P_FRAME_HEADER)
                return -EPROTO;

        switch (type) {
        case N2P_FRAME_DATA:
                if (plen < 1 || plen > N2P_FRAME_MAX_PAYLOAD)
                        return -EPROTO;
                break;
        case N2P_FRAME_WINDOW:
        case N2P_FRAME_RESET:
        case N2P_FRAME_GOAWAY:
                if (plen != 4)
                        return -EPROTO;
                value = n2p_get_be32(p);
                /* credit is never 0, error codes are errnos (0 = orderly GOAWAY) */
                if ((type != N2P_FRAME_GOAWAY && value == 0) || (type != N2P_FRAME_WINDOW && value > ERRNO_MAX))
                        return -EPROTO;
                break;
        case N2P_FRAME_OPEN:
        case N2P_FRAME_FIN:
                if (plen != 0)
                        return -EPROTO;
                break;
        case N2P_FRAME_PING:
        case N2P_FRAME_PONG:
                if (plen != 8 || id != 0)
                        return -EPROTO;
                return handle_ping(s, type, p);
        default:
                return -EPROTO;
        }
        if ((type == N2P_FRAME_GOAWAY) != (id == 0))
                return -EPROTO;

        if (type == N2P_FRAME_GOAWAY) {
                session_close_internal(s, -(int) value, false);
                return 0;
        }
        if (type == N2P_FRAME_OPEN)
                return handle_open(s, id);

        st = g_hash_table_lookup(s->live, GUINT_TO_POINTER(id));
        if (!st) {
                bool used = is_local_id(s, id) ? (s->next_local_id == 0 || id < s->next_local_id)
                                               : id <= s->max_peer_id;
                /* Frames may cross a RESET or a close in flight: ignore them. */
                return used ? 0 : -EPROTO;
        }

        switch (type) {
        case N2P_FRAME_DATA:
                return handle_data(s, st, p, plen);
        case N2P_FRAME_WINDOW:
                return handle_window(st, value);
        case N2P_FRAME_FIN:
                return handle_fin(st);
        default:
                return handle_reset(st, value);
        }
}

static bool record_len_ok(const n2p_session *s, size_t len) {
        if (s->sealed_carrier)
                return len >= N2P_FRAME_HEADER && len <= N2P_FRAME_HEADER + N2P_FRAME_MAX_PAYLOAD;
        return len >= RECORD_MIN && len <= N2P_RECORD_MAX - 2;
}

static int open_record(n2p_session *s, const uint8_t *rec, size_t len) {
        size_t clen = len - 2;

        s->any_record = true;
        if (s->sealed_carrier) {
                s->last_heard = g_get_monotonic_time();   /* the carrier authenticated it */
                return process_frame(s, rec + 2, clen);
        }
        if (n2p_cipher_decrypt(&s->recv, rec, 2, rec + 2, clen, s->plain) < 0)
                return -EBADMSG;
        s->last_heard = g_get_monotonic_time();
        return process_frame(s, s->plain, clen - N2P_NOISE_TAGLEN);
}

static int session_result(const n2p_session *s, int r) {
        if (r < 0)
                return r;
        return s->closed ? s->close_error : 0;
}

int n2p_session_feed(n2p_session *s, const uint8_t *buf, size_t len) {
        int r = 0;

        if (!s || (!buf && len > 0))
                return -EINVAL;
        if (s->closed)
                return -ENOTCONN;
        if (s->feeding)
                return -EBUSY;

        session_enter(s);
        s->feeding = true;
        while (len > 0 && !s->closed && s->pending_error == 0 && !s->free_pending) {
                size_t want, take;

                if (s->rlen == 0 && len >= 2) {
                        size_t rl = n2p_get_be16(buf);
                        if (!record_len_ok(s, rl)) {
                                r = -EPROTO;
                                break;
                        }
                        if (len >= 2 + rl) {
                                /* Whole record in the input: no copy. */
                                r = open_record(s, buf, 2 + rl);
                                buf += 2 + rl;
                                len -= 2 + rl;
                                if (r < 0)
                                        break;
                                continue;
                        }
                }

                want = s->rlen < 2 ? 2 - s->rlen : 2 + (size_t) n2p_get_be16(s->rbuf) - s->rlen;
                take = MIN(want, len);
                memcpy(s->rbuf + s->rlen, buf, take);
                s->rlen += take;
                buf += take;
                len -= take;
                if (s->rlen < 2)
                        break;
                if (s->rlen == 2) {
                        if (!record_len_ok(s, n2p_get_be16(s->rbuf))) {
                                r = -EPROTO;
                                break;
                        }
                } else if (s->rlen == 2 + (size_t) n2p_get_be16(s->rbuf)) {
                        r = open_record(s, s->rbuf, s->rlen);
                        s->rlen = 0;
                        if (r < 0)
                                break;
                }
        }
        s->feeding = false;

        if (r < 0)
                session_close_internal(s, r, true);
        else if (!s->closed && !s->free_pending)
                dispatch_writable(s);
        r = session_result(s, r);
        session_leave(s);
        return r;
}

int n2p_session_deliver_frame(n2p_session *s, const uint8_t *frame, size_t len) {
        int r;

        if (!s || (!frame && len > 0))
                return -EINVAL;
        if (s->closed)
                return -ENOTCONN;

        session_enter(s);
        r = process_frame(s, frame, len);
        if (r < 0)
                session_close_internal(s, r, true);
        else if (!s->closed && !s->free_pending)
                dispatch_writable(s);
        r = session_result(s, r);
        session_leave(s);
        return r;
}

void n2p_session_writable(n2p_session *s) {
        if (!s)
                return;
        session_enter(s);
        session_flush(s);
        if (!s->closed && !s->free_pending)
                dispatch_writable(s);
        session_leave(s);
}

n2p_stream *n2p_session_open_stream(n2p_session *s) {
        n2p_stream *st;
        int r;

        if (!s) {
                errno = EINVAL;
                return NULL;
        }
        if (s->closed || s->pending_error != 0) {
                errno = ENOTCONN;
                return NULL;
        }
        if (s->n_local >= N2P_MAX_STREAMS) {
                errno = EMFILE;
                return NULL;
        }
        if (s->next_local_id == 0) {
                errno = ENOSPC;
                return NULL;
        }

        r = session_seal(s, N2P_FRAME_OPEN, s->next_local_id, NULL, 0, SEND_QUEUE_LIMIT);
        if (r < 0) {
                errno = -r;
                return NULL;
        }
        st = stream_new(s, s->next_local_id, true);
        s->next_local_id = s->next_local_id > UINT32_MAX - 2 ? 0 : s->next_local_id + 2;
        session_flush(s);
        return st;
}

int n2p_session_set_sealed_carrier(n2p_session *s) {
        if (!s)
                return -EINVAL;
        /* Switching with records on the wire would misparse them. */
        if (s->any_record || s->rlen > 0 || s->closed)
                return -EBUSY;
        s->sealed_carrier = true;
        return 0;
}

unsigned n2p_session_n_streams(const n2p_session *s) {
        return s ? s->n_local + s->n_peer : 0;
}

uint32_t n2p_session_rtt_us(const n2p_session *s) {
        return s->srtt_us;
}

uint64_t n2p_session_bytes_sent(const n2p_session *s) {
        return s ? s->bytes_sent : 0;
}

uint64_t n2p_session_bytes_received(const n2p_session *s) {
        return s ? s->bytes_received : 0;
}

size_t n2p_session_send_queued(const n2p_session *s) {
        return s ? sendq_len(s) : 0;
}

void n2p_stream_set_handler(n2p_stream *st, const n2p_stream_handler *h, void *userdata) {
        if (!st)
                return;
        if (h)
                st->handler = *h;
        else
                st->handler = (n2p_stream_handler) {};
        st->userdata = userdata;
        st->has_handler = true;
}

size_t n2p_stream_write_room(const n2p_stream *st) {
        const n2p_session *s;
        size_t room, total = 0, c;
        uint64_t credit;

        if (!st || !stream_can_send(st))
                return 0;
        s = st->session;
        room = session_data_room(s);
        credit = st->send_credit;
        /* Mirrors the chunking of n2p_stream_write(): each frame costs a header. */
        while ((c = data_chunk(SIZE_MAX, credit, room)) > 0) {
                total += c;
                credit -= c;
                room -= c + RECORD_OVERHEAD;
        }
        if (total == 0)
                /* The caller will wait for on_writable: queue it for its turn. The
                 * stream is the caller's, the const only promises no visible change. */
                stream_block((n2p_stream *) st);
        return total;
}

ssize_t n2p_stream_write(n2p_stream *st, const uint8_t *buf, size_t len) {
        n2p_session *s;
        size_t done = 0;
        bool flushed = false;

        if (!st || (!buf && len > 0))
                return -EINVAL;
        if (!stream_can_send(st))
                return -EPIPE;
        s = st->session;

        while (done < len) {
                size_t c = data_chunk(len - done, st->send_credit, session_data_room(s));
                int r;

                if (c == 0) {
                        /* Out of buffer but with credit: the carrier may take some now. */
                        if (st->send_credit == 0 || flushed || s->carrier_dead)
                                break;
                        size_t before = sendq_len(s);
                        session_flush(s);
                        flushed = true;
                        if (sendq_len(s) == before)
                                break;
                        continue;
                }
                r = session_seal(s, N2P_FRAME_DATA, st->id, buf + done, c, N2P_SESSION_SEND_BUFFER);
                if (r < 0) {
                        session_fail_later(s, r, false);
                        if (done == 0)
                                return -EPIPE;
                        break;
                }
                st->send_credit -= c;
                done += c;
                flushed = false;
        }
        s->bytes_sent += done;
        if (done < len)
                stream_block(st);
        if (done > 0)
                session_flush(s);
        return (ssize_t) done;
}

void n2p_stream_consumed(n2p_stream *st, size_t len) {
        if (!st)
                return;
        len = (size_t) MIN((uint64_t) len, st->recv_unconsumed);
        st->recv_unconsumed -= len;
        if (!st->live || st->fin_received)
                return;
        st->recv_grant += len;
        /* Batch credit: one WINDOW per half window keeps the control traffic small
         * while the sender never drains its credit on a moving stream. */
        if (st->recv_grant >= N2P_STREAM_WINDOW / 2) {
                uint32_t g = (uint32_t) st->recv_grant;
                st->recv_avail += g;
                st->recv_grant = 0;
                session_control(st->session, N2P_FRAME_WINDOW, st->id, g, true);
        }
}

void n2p_stream_shutdown(n2p_stream *st) {
        if (!st || !st->live || st->fin_sent)
                return;
        st->fin_sent = true;
        session_control(st->session, N2P_FRAME_FIN, st->id, 0, false);
        if (st->fin_received)
                stream_retire(st);
        else
                stream_unblock(st);
}

void n2p_stream_reset(n2p_stream *st, int error) {
        if (!st)
                return;
        st->quiet = true;
        if (!st->live)
                return;
        session_control(st->session, N2P_FRAME_RESET, st->id, (uint32_t) errno_code(error, ECONNRESET), true);
        st->reset = true;
        stream_retire(st);
}

uint32_t n2p_stream_id(const n2p_stream *st) {
        return st ? st->id : 0;
}

void n2p_stream_release(n2p_stream *st) {
        if (!st || st->released)
                return;
        if (st->live)
                n2p_stream_reset(st, ECONNABORTED);
        st->released = true;
        st->quiet = true;
        if (st->session->busy == 0)
                stream_free(st);
}
