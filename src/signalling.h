/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The signalling messages of wire.h: how a client's ICE offer reaches a node and
 * its answer comes back, sealed in the Noise IK handshake. Pure functions over
 * buffers (fuzzed); the programs own the sockets. Library code: never logs.
 */

#include <stddef.h>
#include <stdint.h>

#include "ice.h"
#include "key.h"
#include "noise.h"

/* What the server learns from a valid INIT. */
typedef struct n2p_init_info {
        uint32_t sender;                 /* client's session index */
        uint8_t tai64n[N2P_TAI64N_SIZE]; /* for replay protection */
        uint8_t client_ed[32];           /* Ed25519 identity, checked against Noise's s */
        uint8_t client_x[32];            /* X25519 static key authenticated by Noise */
        n2p_ice_desc offer;
} n2p_init_info;

/* Client: the INIT packet for a session. hs is initialised here and must be kept for
 * reading the answer. -ENOBUFS if the description does not fit N2P_PKT_MAX. */
int n2p_signal_make_init(const n2p_key *me, const uint8_t server_ed[32], uint32_t sender,
                         const n2p_ice_desc *offer, n2p_handshake *hs,
                         uint8_t *out, size_t cap, size_t *ret_len);

/*
 * Server: authenticates and decodes an INIT. On success hs is ready to write the
 * answer. -EBADMSG: not for this key, or tampered (a REJECT is the honest answer);
 * -EINVAL: malformed; -EPERM: the Ed25519 identity does not match the Noise key.
 */
int n2p_signal_read_init(const n2p_key *me, const uint8_t *pkt, size_t len,
                         n2p_handshake *hs, n2p_init_info *ret);

/* Server: the RESP packet; answer may be NULL when status != N2P_REFUSE_OK. */
int n2p_signal_make_resp(n2p_handshake *hs, uint32_t sender, uint32_t receiver, uint8_t status,
                         const n2p_ice_desc *answer, uint8_t *out, size_t cap, size_t *ret_len);

/* Client: -ESRCH if the packet is for another session (receiver mismatch), -EBADMSG
 * if it does not authenticate (the handshake state is unchanged then, so a forged
 * packet cannot kill the session), -EINVAL if malformed. */
int n2p_signal_read_resp(n2p_handshake *hs, uint32_t receiver, const uint8_t *pkt, size_t len,
                         uint8_t *ret_status, n2p_ice_desc *ret_answer);

void n2p_signal_make_reject(uint32_t receiver, uint8_t reason, uint8_t out[N2P_PKT_REJECT_SIZE]);
int n2p_signal_parse_reject(const uint8_t *pkt, size_t len, uint32_t *ret_receiver, uint8_t *ret_reason);

/* LAN discovery: an INIT wrapped with the key of the node it is for. */
int n2p_signal_make_discover(const uint8_t node_ed[32], const uint8_t *init, size_t init_len,
                             uint8_t *out, size_t cap, size_t *ret_len);
int n2p_signal_parse_discover(const uint8_t *pkt, size_t len, uint8_t ret_node_ed[32],
                              const uint8_t **ret_init, size_t *ret_init_len);

/* Packet type of a datagram, or -EINVAL. */
int n2p_signal_type(const uint8_t *pkt, size_t len);

/* "server busy", "not authorized", ... for a status / reject reason. */
const char *n2p_refuse_reason(uint8_t status);
