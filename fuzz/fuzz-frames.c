/* SPDX-License-Identifier: MIT */
/*
 * Input: [mode u8] then frames, each [length u16 BE][frame bytes] (the last one
 * is cut to what is left). Three passes over it, each with a fresh responder:
 *   1. every frame through n2p_session_deliver_frame, until the session closes;
 *   2. the raw input through n2p_session_feed (record lengths, bad tags);
 *   3. the frames sealed as the peer would, fed in pieces of a size taken from
 *      the mode byte (record reassembly and the decrypt path).
 * Handlers answer like a busy application: they echo, consume, shut down, reset
 * and release from inside callbacks. mode bit 0 makes the carrier refuse all
 * bytes, so the send queue fills up.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include <glib.h>
#include <sodium.h>

#include "transport.h"
#include "util.h"

typedef struct fuzz_ctx {
        bool blocked;
        unsigned events;
} fuzz_ctx;

static ssize_t carrier(const uint8_t *buf, size_t len, void *userdata) {
        fuzz_ctx *c = userdata;
        return c->blocked ? -EAGAIN : (ssize_t) len;
}

static void on_data(n2p_stream *st, const uint8_t *buf, size_t len, void *userdata) {
        fuzz_ctx *c = userdata;

        c->events++;
        if (len & 1)
                n2p_stream_consumed(st, len);
        if (len > 0 && buf[0] == 'e')
                (void) n2p_stream_write(st, buf, len);
        if (len > 0 && buf[0] == 'r') {
                n2p_stream_reset(st, EIO);
                n2p_stream_release(st);
        }
}

static void on_eof(n2p_stream *st, void *userdata) {
        n2p_stream_shutdown(st);
}

static void on_writable(n2p_stream *st, void *userdata) {
        static const uint8_t x[100] = { 'x' };
        (void) n2p_stream_write(st, x, sizeof x);
}

static void on_reset(n2p_stream *st, int error, void *userdata) {
        n2p_stream_release(st);
}

static const n2p_stream_handler handler = {
        .on_data = on_data,
        .on_eof = on_eof,
        .on_writable = on_writable,
        .on_reset = on_reset,
};

static void stream_opened(n2p_session *s, n2p_stream *st, void *userdata) {
        fuzz_ctx *c = userdata;

        /* leave every third one without a handler: the session refuses it */
        if (++c->events % 3 != 0)
                n2p_stream_set_handler(st, &handler, c);
}

static void closed(n2p_session *s, int error, void *userdata) {
}

static const n2p_session_callbacks callbacks = {
        .stream_opened = stream_opened,
        .closed = closed,
};

static n2p_session *new_session(fuzz_ctx *c) {
        n2p_cipher send = {}, recv = {};
        n2p_session *s;
        n2p_stream *st;

        memset(send.k, 0x22, sizeof send.k);
        memset(recv.k, 0x11, sizeof recv.k);
        s = n2p_session_new(false, &send, &recv, carrier, c, &callbacks, c);
        if (!s)
                abort();
        /* one stream of our own, id 2, so frames for our ids have a target */
        st = n2p_session_open_stream(s);
        if (st)
                n2p_stream_set_handler(st, &handler, c);
        return s;
}

/* The next frame of the input, or false at its end. */
static bool next_frame(const uint8_t **p, size_t *left, const uint8_t **ret, size_t *ret_len) {
        size_t len;

        if (*left < 2)
                return false;
        len = MIN((size_t) n2p_get_be16(*p), *left - 2);
        *ret = *p + 2;
        *ret_len = len;
        *p += 2 + len;
        *left -= 2 + len;
        return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        static uint8_t rec[1 << 17];
        fuzz_ctx c = {};
        n2p_session *s;
        const uint8_t *p, *f;
        size_t left, flen;
        uint8_t mode;

        if (size < 1 || sodium_init() < 0)
                return 0;
        mode = data[0];
        c.blocked = mode & 1;

        /* 1: frames */
        s = new_session(&c);
        p = data + 1;
        left = size - 1;
        while (next_frame(&p, &left, &f, &flen))
                if (n2p_session_deliver_frame(s, f, flen) < 0)
                        break;
        if (mode & 2)
                n2p_session_close(s, -ECONNRESET);
        n2p_session_free(s);

        /* 2: raw records */
        s = new_session(&c);
        n2p_session_feed(s, data, size);
        n2p_session_free(s);

        /* 3: sealed frames, fed in pieces */
        {
                n2p_cipher peer = {};
                size_t piece = (size_t) (mode >> 2) * 97 + 1, n = 0;

                memset(peer.k, 0x11, sizeof peer.k);
                s = new_session(&c);
                p = data + 1;
                left = size - 1;
                while (next_frame(&p, &left, &f, &flen)) {
                        /* frames the record format cannot carry are left to pass 1 */
                        if (flen + N2P_NOISE_TAGLEN > N2P_RECORD_MAX - 2 || n + 2 + flen + N2P_NOISE_TAGLEN > sizeof rec)
                                break;
                        n2p_put_be16(rec + n, (uint16_t) (flen + N2P_NOISE_TAGLEN));
                        if (n2p_cipher_encrypt(&peer, rec + n, 2, f, flen, rec + n + 2) < 0)
                                break;
                        n += 2 + flen + N2P_NOISE_TAGLEN;
                }
                for (size_t off = 0; off < n; off += piece)
                        if (n2p_session_feed(s, rec + off, MIN(piece, n - off)) < 0)
                                break;
                n2p_session_free(s);
                n2p_cipher_wipe(&peer);
        }
        return 0;
}
