/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * A session: many reliable, ordered, flow-controlled byte streams with per-stream
 * half-close, end-to-end encrypted, over one carrier.
 *
 * The carrier is a reliable byte pipe: since issue 4 the link (link.h) over ICE
 * datagrams, before that libnice's PseudoTCP. The session writes to it through a
 * send function and is fed what arrives with n2p_session_feed(); the stream
 * interface below does not depend on which carrier it is.
 *
 * Records on the carrier: [length u16 BE][ciphertext length bytes], the ciphertext
 * being one frame sealed with the session's cipher (implicit counter nonce).
 * Frames: [type u8][flags u8][stream u32][length u32][payload]
 *   DATA    payload = bytes (at most N2P_FRAME_MAX_PAYLOAD)
 *   WINDOW  payload = u32 credit granted to the sender of the stream
 *   OPEN    opens a stream (initiator's ids are odd, responder's even)
 *   FIN     the sender will send no more on this stream
 *   RESET   payload = u32 error code (positive errno), the stream is gone both ways
 *   GOAWAY  payload = u32 error code, the session ends
 *   PING    stream 0, payload = 8 opaque bytes; answered by PONG with the same bytes
 *   PONG    (each side pings every N2P_SESSION_PING_MS to measure the round trip)
 * A peer that exceeds its window, reuses an id, opens more than the limit or sends
 * anything malformed ends the session (N2P_SESSION_PROTOCOL_ERROR).
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "noise.h"

enum {
        N2P_FRAME_HEADER = 10,
        N2P_FRAME_MAX_PAYLOAD = 16384,
        N2P_RECORD_MAX = 2 + N2P_FRAME_HEADER + N2P_FRAME_MAX_PAYLOAD + N2P_NOISE_TAGLEN,

        N2P_FRAME_DATA = 0,
        N2P_FRAME_WINDOW = 1,
        N2P_FRAME_OPEN = 2,
        N2P_FRAME_FIN = 3,
        N2P_FRAME_RESET = 4,
        N2P_FRAME_GOAWAY = 5,
        N2P_FRAME_PING = 6,
        N2P_FRAME_PONG = 7,
        N2P_SESSION_PING_MS = 2000,
        /* A session that heard nothing authentic for this long (three pings and
         * their answers missed) is over: the peer or the path is gone. */
        N2P_SESSION_SILENCE_MS = 6500,

        /* Receive window per stream, bytes. One window per round trip is the most
         * a stream can move: 6 MiB covers 50 ms at 120 MB/s. */
        N2P_STREAM_WINDOW = 6 * 1024 * 1024,
        N2P_MAX_STREAMS = 64,                  /* open streams per session, each way */
        N2P_SESSION_SEND_BUFFER = 256 * 1024,  /* sealed bytes queued for the carrier */
};

typedef struct n2p_session n2p_session;
typedef struct n2p_stream n2p_stream;

/* Sends bytes on the carrier: returns bytes accepted (0..len) or negative errno.
 * After a short write the owner calls n2p_session_writable() when it can take more. */
typedef ssize_t (*n2p_carrier_send_fn)(const uint8_t *buf, size_t len, void *userdata);

typedef struct n2p_session_callbacks {
        /* The peer opened a stream: the callee must give it a handler
         * (n2p_stream_set_handler) or reset it before returning. */
        void (*stream_opened)(n2p_session *s, n2p_stream *st, void *userdata);
        /* The session is over (peer GOAWAY, protocol error, carrier error, or
         * n2p_session_close). Every stream got on_reset first. error is a negative
         * errno or 0 for an orderly end. Do not free the session inside. */
        void (*closed)(n2p_session *s, int error, void *userdata);
} n2p_session_callbacks;

/* initiator = the client side (odd stream ids). Takes copies of the ciphers and
 * wipes the caller's. */
n2p_session *n2p_session_new(bool initiator, n2p_cipher *send, n2p_cipher *recv,
                             n2p_carrier_send_fn carrier_send, void *carrier_userdata,
                             const n2p_session_callbacks *cb, void *userdata);

/* Bytes that arrived on the carrier (any split). Returns 0, or a negative errno
 * after which the session is closed (callbacks already run). */
int n2p_session_feed(n2p_session *s, const uint8_t *buf, size_t len);

/* The carrier can take bytes again. */
void n2p_session_writable(n2p_session *s);

/* Opens a stream (NULL with errno set at the stream limit or when closed). */
n2p_stream *n2p_session_open_stream(n2p_session *s);

/* Resets every stream, sends GOAWAY(error) and runs `closed`. */
void n2p_session_close(n2p_session *s, int error);

/* The carrier authenticates, encrypts, orders and de-duplicates every byte itself
 * (link.h, keyed from these same ciphers), and the peer's session says the same:
 * records then carry their frame without a second AEAD pass, [length][frame].
 * Only before the first record either way (-EBUSY after). */
int n2p_session_set_sealed_carrier(n2p_session *s);

unsigned n2p_session_n_streams(const n2p_session *s);
/* Smoothed round trip from PING/PONG, in µs; 0 before the first answer. It is the
 * round trip the session sees, queueing behind bulk data included. */
uint32_t n2p_session_rtt_us(const n2p_session *s);

/* A PING now, besides the periodic ones: the owner sends one when the path comes
 * up, so the round trip is known at once and does not include the path's setup. */
void n2p_session_ping(n2p_session *s);
uint64_t n2p_session_bytes_sent(const n2p_session *s);      /* stream payload bytes */
uint64_t n2p_session_bytes_received(const n2p_session *s);

n2p_session *n2p_session_free(n2p_session *s);

typedef struct n2p_stream_handler {
        /* Payload arrived. The consumer owns nothing: copy what it keeps, and call
         * n2p_stream_consumed() once those bytes have left its hands; that reopens
         * the peer's window. Never more than the window is outstanding. */
        void (*on_data)(n2p_stream *st, const uint8_t *buf, size_t len, void *userdata);
        void (*on_eof)(n2p_stream *st, void *userdata);       /* peer sent FIN */
        void (*on_writable)(n2p_stream *st, void *userdata);  /* send room again */
        /* The stream is gone (peer RESET with error > 0, or the session closed).
         * The stream object stays valid until n2p_stream_release(). */
        void (*on_reset)(n2p_stream *st, int error, void *userdata);
} n2p_stream_handler;

void n2p_stream_set_handler(n2p_stream *st, const n2p_stream_handler *h, void *userdata);

/* Queues up to len bytes within the peer's window and the session's send buffer;
 * returns bytes accepted (0 = wait for on_writable) or -EPIPE after shutdown/reset. */
ssize_t n2p_stream_write(n2p_stream *st, const uint8_t *buf, size_t len);

/* How many bytes n2p_stream_write() would take now. */
size_t n2p_stream_write_room(const n2p_stream *st);

void n2p_stream_consumed(n2p_stream *st, size_t len);

/* FIN after everything queued. */
void n2p_stream_shutdown(n2p_stream *st);

/* RESET with a positive errno code; no more callbacks after this. */
void n2p_stream_reset(n2p_stream *st, int error);

uint32_t n2p_stream_id(const n2p_stream *st);

/* The owner is done with the stream (after it closed both ways or was reset).
 * A stream that is neither finished nor reset is reset with ECONNABORTED. */
void n2p_stream_release(n2p_stream *st);

/* Processes one decrypted frame exactly as if it came from the peer (tests and
 * fuzzing). Returns 0, or a negative errno after which the session is closed. */
int n2p_session_deliver_frame(n2p_session *s, const uint8_t *frame, size_t len);

/* Sealed bytes waiting for the carrier: at most N2P_SESSION_SEND_BUFFER of data
 * plus a small fixed allowance for control frames. */
size_t n2p_session_send_queued(const n2p_session *s);
