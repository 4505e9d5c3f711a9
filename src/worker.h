/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The control channel between the server and a session's worker process: one
 * SOCK_SEQPACKET socket (fd 3 in the worker), one message per packet,
 * [type u8][body]. The server does the handshake; the worker runs ICE, the
 * session and the relays, so a crash or a hostile peer takes down one session.
 *
 *   INIT   server -> worker   client Ed25519 key (32) || offer length u16 || the
 *                             client's ICE offer || TURN length u16 || TURN server as
 *                             "USER:PASS@HOST:PORT" (empty: none)
 *   ANSWER worker -> server   the worker's ICE description
 *   KEYS   server -> worker   send key (32) || receive key (32), after RESP went out
 *   FAIL   worker -> server   u32 errno: no answer can be made
 *   STATS  worker -> server   every second once connected: rtt µs u32, sent u64,
 *                             received u64, streams u32, local type, remote type
 *                             (each u8 length + text), for `n2pctl status`
 */

#include "wire.h"

enum {
        N2P_CTL_FD = 3,

        N2P_CTL_INIT = 1,
        N2P_CTL_ANSWER = 2,
        N2P_CTL_KEYS = 3,
        N2P_CTL_FAIL = 4,
        N2P_CTL_STATS = 5,
        N2P_CTL_STATS_FIXED = 1 + 4 + 8 + 8 + 4,

        N2P_CTL_MAX_TURN = 512,
        N2P_CTL_MAX = 1 + 32 + 2 + N2P_ICE_MAX_DESCRIPTION + 2 + N2P_CTL_MAX_TURN,
};
