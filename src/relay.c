/* SPDX-License-Identifier: MIT */
/*
 * Two directions, each with its own end:
 *   socket -> stream: read only what the stream takes now (write_room), so
 *     nothing is buffered here; socket EOF becomes FIN.
 *   stream -> socket: write at once, keep the rest; consumed() only after the
 *     socket took the bytes, so the peer's window bounds what is kept. FIN becomes
 *     shutdown(SHUT_WR) once the kept bytes are out.
 * The stream calls never call back (transport.c), so the only re-entrancy is the
 * done callback, which is always the last thing a path does.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <glib-unix.h>

#include "relay.h"
#include "util.h"

enum {
        READ_CHUNK = 64 * 1024,
};

struct n2p_relay {
        n2p_stream *stream;
        int fd;
        guint in_source, out_source;
        bool sock_eof;          /* socket EOF seen, FIN sent */
        bool stream_eof;        /* FIN received */
        bool sock_shut;         /* SHUT_WR done */
        bool finished;
        bool not_socket;

        uint8_t *rbuf;          /* socket -> stream, one read at a time */
        uint8_t *out;           /* stream -> socket, not yet written */
        size_t out_start, out_end, out_cap;

        uint64_t to_stream, to_socket;
        n2p_relay_done_fn done;
        void *userdata;
};

static size_t out_len(const n2p_relay *r) {
        return r->out_end - r->out_start;
}

static void remove_sources(n2p_relay *r) {
        if (r->in_source != 0)
                g_source_remove(r->in_source);
        if (r->out_source != 0)
                g_source_remove(r->out_source);
        r->in_source = r->out_source = 0;
}

/* Ends the relay and calls done, which may free it: callers return at once. */
static void finish(n2p_relay *r, int error) {
        r->finished = true;
        remove_sources(r);
        n2p_stream_release(r->stream);
        r->stream = NULL;
        n2p_closep(&r->fd);
        r->fd = -1;
        r->done(r, error, r->userdata);
}

static void fail(n2p_relay *r, int error) {
        n2p_stream_reset(r->stream, -error);
        finish(r, error);
}

static ssize_t sock_send(n2p_relay *r, const uint8_t *buf, size_t len) {
        ssize_t n;

        if (!r->not_socket) {
                n = send(r->fd, buf, len, MSG_DONTWAIT | MSG_NOSIGNAL);
                if (n >= 0 || errno != ENOTSOCK)
                        return n;
                r->not_socket = true;
        }
        return write(r->fd, buf, len);
}

/* Returns false when the relay finished (and may be freed). */
static bool maybe_done(n2p_relay *r) {
        if (r->stream_eof && !r->sock_shut && out_len(r) == 0) {
                r->sock_shut = true;
                /* The other end may be gone already (ENOTCONN): nothing left to tell it. */
                if (shutdown(r->fd, SHUT_WR) < 0 && errno != ENOTCONN && errno != ENOTSOCK) {
                        fail(r, -errno);
                        return false;
                }
        }
        if (r->sock_eof && r->sock_shut) {
                finish(r, 0);
                return false;
        }
        return true;
}

static gboolean on_fd_in(gint fd, GIOCondition cond, gpointer userdata);
static gboolean on_fd_out(gint fd, GIOCondition cond, gpointer userdata);

/*
 * g_unix_fd_add(), but the source may recurse: GLib then leaves its fd in the
 * poll set while it is dispatched instead of taking it out and putting it back,
 * which writes the loop's wakeup eventfd after every dispatch (one more
 * syscall and one more empty loop turn per read). Nothing here runs a nested
 * loop, so recursion never happens.
 */
static guint fd_watch(int fd, GIOCondition cond, GUnixFDSourceFunc fn, n2p_relay *r) {
        GSource *s = g_unix_fd_source_new(fd, cond);
        guint id;

        g_source_set_can_recurse(s, TRUE);
        g_source_set_callback(s, G_SOURCE_FUNC(fn), r, NULL);
        id = g_source_attach(s, NULL);
        g_source_unref(s);
        return id;
}

static void update_sources(n2p_relay *r) {
        bool want_in = !r->sock_eof && n2p_stream_write_room(r->stream) > 0;
        bool want_out = out_len(r) > 0;

        if (want_in && r->in_source == 0)
                r->in_source = fd_watch(r->fd, G_IO_IN, on_fd_in, r);
        else if (!want_in && r->in_source != 0) {
                g_source_remove(r->in_source);
                r->in_source = 0;
        }
        if (want_out && r->out_source == 0)
                r->out_source = fd_watch(r->fd, G_IO_OUT, on_fd_out, r);
        else if (!want_out && r->out_source != 0) {
                g_source_remove(r->out_source);
                r->out_source = 0;
        }
}

static bool pump_in(n2p_relay *r) {
        size_t budget = N2P_RELAY_BUFFER;

        while (!r->sock_eof && budget > 0) {
                size_t room = n2p_stream_write_room(r->stream), want;
                ssize_t n, w;

                if (room == 0)
                        break;
                want = MIN(MIN(room, budget), (size_t) READ_CHUNK);
                n = read(r->fd, r->rbuf, want);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        if (errno == EAGAIN || errno == EWOULDBLOCK)
                                break;
                        fail(r, -errno);
                        return false;
                }
                if (n == 0) {
                        r->sock_eof = true;
                        n2p_stream_shutdown(r->stream);
                        return maybe_done(r);
                }
                w = n2p_stream_write(r->stream, r->rbuf, (size_t) n);
                if (w != n) {
                        /* The room was checked: only a dying session gets here. */
                        fail(r, w < 0 ? (int) w : -EIO);
                        return false;
                }
                r->to_stream += (uint64_t) n;
                budget -= (size_t) n;
        }
        return true;
}

static bool pump_out(n2p_relay *r) {
        while (out_len(r) > 0) {
                ssize_t n = sock_send(r, r->out + r->out_start, out_len(r));
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        if (errno == EAGAIN || errno == EWOULDBLOCK)
                                break;
                        fail(r, -errno);
                        return false;
                }
                r->out_start += (size_t) n;
                r->to_socket += (uint64_t) n;
                n2p_stream_consumed(r->stream, (size_t) n);
        }
        if (out_len(r) == 0)
                r->out_start = r->out_end = 0;
        return maybe_done(r);
}

static gboolean on_fd_in(gint fd, GIOCondition cond, gpointer userdata) {
        n2p_relay *r = userdata;
        guint self = r->in_source;

        if (!pump_in(r))
                return G_SOURCE_REMOVE;
        update_sources(r);
        return r->in_source == self ? G_SOURCE_CONTINUE : G_SOURCE_REMOVE;
}

static gboolean on_fd_out(gint fd, GIOCondition cond, gpointer userdata) {
        n2p_relay *r = userdata;
        guint self = r->out_source;

        if (!pump_out(r))
                return G_SOURCE_REMOVE;
        update_sources(r);
        return r->out_source == self ? G_SOURCE_CONTINUE : G_SOURCE_REMOVE;
}

static void on_data(n2p_stream *st, const uint8_t *buf, size_t len, void *userdata) {
        n2p_relay *r = userdata;

        if (out_len(r) == 0) {
                ssize_t n = sock_send(r, buf, len);
                if (n < 0) {
                        if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
                                fail(r, -errno);
                                return;
                        }
                        n = 0;
                }
                r->to_socket += (uint64_t) n;
                n2p_stream_consumed(st, (size_t) n);
                buf += n;
                len -= (size_t) n;
        }
        if (len > 0) {
                /* The transport never delivers more than the window unconsumed. */
                if (out_len(r) + len > N2P_STREAM_WINDOW) {
                        fail(r, -ENOBUFS);
                        return;
                }
                if (r->out_end + len > r->out_cap && r->out_start > 0) {
                        memmove(r->out, r->out + r->out_start, out_len(r));
                        r->out_end -= r->out_start;
                        r->out_start = 0;
                }
                if (r->out_end + len > r->out_cap) {
                        r->out_cap = MIN(MAX(r->out_cap * 2, r->out_end + len), (size_t) N2P_STREAM_WINDOW);
                        r->out = g_realloc(r->out, r->out_cap);
                }
                memcpy(r->out + r->out_end, buf, len);
                r->out_end += len;
        }
        update_sources(r);
}

static void on_eof(n2p_stream *st, void *userdata) {
        n2p_relay *r = userdata;

        r->stream_eof = true;
        if (maybe_done(r))
                update_sources(r);
}

static void on_writable(n2p_stream *st, void *userdata) {
        n2p_relay *r = userdata;

        /* Read now rather than wait for the watch, so the session's turn order
         * decides which stream fills the send buffer. */
        if (pump_in(r))
                update_sources(r);
}

static void on_reset(n2p_stream *st, int error, void *userdata) {
        n2p_relay *r = userdata;

        finish(r, -(error > 0 ? error : ECONNRESET));
}

static const n2p_stream_handler relay_handler = {
        .on_data = on_data,
        .on_eof = on_eof,
        .on_writable = on_writable,
        .on_reset = on_reset,
};

n2p_relay *n2p_relay_new(n2p_stream *st, int fd, n2p_relay_done_fn done, void *userdata) {
        n2p_relay *r;
        GError *error = NULL;

        if (!st || fd < 0 || !done) {
                errno = EINVAL;
                return NULL;
        }
        if (!g_unix_set_fd_nonblocking(fd, TRUE, &error)) {
                g_error_free(error);
                errno = EINVAL;
                return NULL;
        }

        r = g_new0(n2p_relay, 1);
        r->stream = st;
        r->fd = fd;
        r->done = done;
        r->userdata = userdata;
        r->rbuf = g_malloc(READ_CHUNK);
        n2p_stream_set_handler(st, &relay_handler, r);
        update_sources(r);
        return r;
}

uint64_t n2p_relay_bytes_to_stream(const n2p_relay *r) {
        return r ? r->to_stream : 0;
}

uint64_t n2p_relay_bytes_to_socket(const n2p_relay *r) {
        return r ? r->to_socket : 0;
}

n2p_relay *n2p_relay_free(n2p_relay *r) {
        if (!r)
                return NULL;
        if (!r->finished) {
                remove_sources(r);
                n2p_stream_release(r->stream);
                n2p_closep(&r->fd);
        }
        g_free(r->rbuf);
        g_free(r->out);
        g_free(r);
        return NULL;
}
