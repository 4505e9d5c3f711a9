/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The link: one reliable, ordered byte pipe (the session's carrier, transport.h)
 * over an unreliable datagram path (n2p_ice in datagram mode), every datagram
 * authenticated and encrypted.
 *
 * Datagram: [type u8][packet number u64 BE][length u16 BE][AEAD(frames)]
 *   type 1 = ChaCha20-Poly1305, type 2 = AES-256-GCM; the header is the
 *   associated data, the packet number the nonce; length is the whole
 *   datagram's, so datagrams the kernel coalesced (UDP GRO) can be split again.
 *   Keys are derived from the session's (BLAKE2b KDF, context "n2plink", one
 *   subkey per cipher), so link and session never share a key/nonce pair.
 *   Packet numbers are never reused: a retransmission is a new packet. A
 *   datagram that does not authenticate, or whose number was already seen or is
 *   older than the window, is dropped.
 * Cipher: every link sends ChaCha20-Poly1305 until the peer's ACKs carry the AES
 *   flag (it opens AES-256-GCM, i.e. its CPU has AES-NI and PCLMUL), then
 *   AES-256-GCM, which is ~1.5x faster there; both are accepted at any time.
 * Frames (one or more per datagram):
 *   ACK   [1][cumulative u64][delay_us u32][flags u8][n u8][n x (hi u64, lo u64)]
 *         cumulative = next in-order byte the receiver expects; ranges of packet
 *         numbers received, newest first; flags bit 0 = "I open AES-256-GCM"
 *   DATA  [2][offset u64][length u16][bytes]
 *   PING  [3]                          (asks for an ACK)
 * Loss: packet and time thresholds, probe timeouts (as RFC 9002). Congestion
 * control: delivery-rate based (BBR-like), paced, so random loss does not
 * collapse the rate. Memory: N2P_LINK_BUFFER bytes each way, at most.
 */

#include <glib.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "noise.h"

enum {
        N2P_LINK_DATAGRAM = 1350,                     /* largest datagram we send */
        N2P_LINK_HEADER = 11,
        N2P_LINK_OVERHEAD = N2P_LINK_HEADER + N2P_NOISE_TAGLEN,
        N2P_LINK_BUFFER = 16 * 1024 * 1024,           /* send buffer = receive window */
        N2P_LINK_MAX_RANGES = 16,                     /* ACK ranges kept and sent */

        N2P_LINK_PKT_DATA = 1,                        /* ChaCha20-Poly1305 */
        N2P_LINK_PKT_AES = 2,                         /* AES-256-GCM */
        N2P_LINK_FRAME_ACK = 1,
        N2P_LINK_FRAME_DATA = 2,
        N2P_LINK_FRAME_PING = 3,
};

typedef struct n2p_link n2p_link;

/* Sends one datagram: returns len, -EAGAIN (call n2p_link_path_writable() later)
 * or another negative errno (the path is gone). */
typedef ssize_t (*n2p_link_send_fn)(const uint8_t *buf, size_t len, void *userdata);

typedef struct n2p_link_callbacks {
        /* In-order bytes from the peer; each byte exactly once. */
        void (*recv)(n2p_link *l, const uint8_t *buf, size_t len, void *userdata);
        /* n2p_link_write() has room again after a short write. */
        void (*writable)(n2p_link *l, void *userdata);
} n2p_link_callbacks;

/* Derives the link keys from copies of the session's ciphers (which it leaves as
 * they are). Never free the link from inside one of its callbacks. */
n2p_link *n2p_link_new(const n2p_cipher *send, const n2p_cipher *recv, n2p_link_send_fn send_fn,
                       const n2p_link_callbacks *cb, void *userdata);

/* This end neither opens nor seals AES-256-GCM (as on a CPU without AES-NI);
 * call before any traffic. Also N2P_NO_AES=1 in the environment. */
void n2p_link_disable_aes(n2p_link *l);

/* Takes up to len bytes into the send buffer: bytes accepted (0 = full, wait for
 * writable), or a negative errno once the path failed. Never calls back. */
ssize_t n2p_link_write(n2p_link *l, const uint8_t *buf, size_t len);

/* One datagram from the path, or several back to back as UDP GRO hands them
 * over. 0, or -EBADMSG if one was dropped (forged, replayed, malformed, cut):
 * dropping is all that happens, the link goes on. */
int n2p_link_input(n2p_link *l, const uint8_t *buf, size_t len);

/* The path takes datagrams again after -EAGAIN. */
void n2p_link_path_writable(n2p_link *l);

/* The cipher this end seals with: "aes-256-gcm" or "chacha20-poly1305". */
const char *n2p_link_cipher(const n2p_link *l);

/* Bytes written but not yet acknowledged by the peer. */
size_t n2p_link_unacked(const n2p_link *l);

typedef struct n2p_link_stats {
        uint64_t packets_sent, packets_received, packets_lost, packets_dropped;
        uint64_t packets_sent_aes;                    /* of packets_sent */
        uint64_t bytes_retransmitted;
        uint32_t srtt_us, min_rtt_us;
        uint64_t cwnd, bw_bytes_per_s;
} n2p_link_stats;

void n2p_link_get_stats(const n2p_link *l, n2p_link_stats *ret);

/* Tests and fuzzing: processes decrypted frames as if they came in packet pn. */
int n2p_link_deliver_plaintext(n2p_link *l, uint64_t pn, const uint8_t *frames, size_t len);

n2p_link *n2p_link_free(n2p_link *l);
