/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * Everything n2p puts on a wire, with its sizes and limits, in one place.
 *
 * Signalling (UDP, to the server's --listen port; all integers big-endian):
 *
 *   INIT   client -> server   [type=1][0 0 0][sender u32][Noise IK message 1]
 *   RESP   server -> client   [type=2][0 0 0][sender u32][receiver u32][Noise IK message 2]
 *   REJECT server -> client   [type=3][reason u8][0 0][receiver u32]      (unauthenticated hint)
 *   DISCOVER client -> LAN    [type=4][0 0 0][node Ed25519 key 32][INIT packet]
 *                             broadcast to the default port: only the node with that key
 *                             answers (with RESP, directly), every other node stays silent
 *
 * The Noise payload of message 1 is
 *   [tai64n 12][client Ed25519 public key 32][ICE description...]
 * and of message 2
 *   [status u8][ICE description...]        status 0 = ok, else an N2P_REFUSE_* reason
 *
 * After ICE connects, the session carries records (transport.h) over the ICE
 * component; inside the records, stream frames:
 *
 *   [type u8][flags u8][stream id u32][length u32][payload...]
 */

#include <stdint.h>

enum {
        N2P_PROTOCOL_VERSION = 1,

        N2P_DEFAULT_PORT = 7787,          /* UDP signalling, --listen */

        N2P_PKT_INIT = 1,
        N2P_PKT_RESP = 2,
        N2P_PKT_REJECT = 3,
        N2P_PKT_DISCOVER = 4,

        N2P_PKT_INIT_HEADER = 8,          /* type, 3 reserved, sender index */
        N2P_PKT_RESP_HEADER = 12,         /* type, 3 reserved, sender, receiver */
        N2P_PKT_REJECT_SIZE = 8,          /* type, reason, 2 reserved, receiver */
        N2P_PKT_DISCOVER_HEADER = 36,     /* type, 3 reserved, node key */

        N2P_PKT_MAX = 4096,               /* largest signalling datagram accepted */

        N2P_TAI64N_SIZE = 12,
        N2P_KEY_SIZE = 32,

        /* REJECT reasons and message-2 status codes */
        N2P_REFUSE_OK = 0,
        N2P_REFUSE_UNDECRYPTABLE = 1,     /* message 1 was not for this node's key */
        N2P_REFUSE_BUSY = 2,              /* session limit reached */
        N2P_REFUSE_UNAUTHORIZED = 3,      /* client key not allowed */
        N2P_REFUSE_INTERNAL = 4,          /* the server could not start a session */
};

/* Prologue mixed into every handshake: binds the protocol name and version. */
#define N2P_NOISE_PROLOGUE "n2p/1"

/* Limits on what a peer controls (see STYLE.md: every quantity is bounded). */
enum {
        N2P_MAX_SESSIONS = 64,            /* concurrent worker processes per node */
        N2P_MAX_PENDING_HANDSHAKES = 32,  /* message 1 answered, worker not yet keyed */
        N2P_HANDSHAKE_TIMEOUT_MS = 10000, /* client gives up on an answer after this */
        N2P_ICE_TIMEOUT_MS = 10000,       /* connectivity checks must succeed within this */
        N2P_ICE_MAX_CANDIDATES = 16,
        N2P_ICE_MAX_DESCRIPTION = 2048,   /* encoded ICE description, bytes */
        /* Handshakes cost a node three X25519 operations each: bounded per source
         * address (--handshake-rate) and in total. */
        N2P_HANDSHAKE_RATE = 10,          /* per second per source address */
        N2P_HANDSHAKE_BURST = 20,
        N2P_HANDSHAKE_RATE_TOTAL = 500,   /* per second, all sources together */
        N2P_MAX_SOURCES = 4096,           /* source addresses tracked for the rate */
        N2P_MAX_REPLAY_KEYS = 4096,       /* client keys whose newest INIT time is kept */
};
