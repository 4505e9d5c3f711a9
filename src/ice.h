/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * One libnice agent, one ICE stream with one component, per session.
 * Candidates and credentials travel as an n2p_ice_desc inside the Noise payloads
 * (see wire.h), so a signalling path can neither read nor alter them.
 *
 * Encoded description (all integers big-endian):
 *   ufrag_len u8, ufrag, pwd_len u8, pwd, n u8, n x candidate
 *   candidate = type u8, priority u32, foundation_len u8, foundation,
 *               family u8 (4 or 6), address (4 or 16), port u16
 * ufrag 4..64 and pwd 22..128 printable ASCII (RFC 8445 ice-char); foundation
 * 1..32 ice-chars; at most N2P_ICE_MAX_CANDIDATES; nothing may follow.
 */

#include <glib.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

#include "wire.h"

typedef enum n2p_ice_cand_type {
        N2P_ICE_CAND_HOST = 0,
        N2P_ICE_CAND_SRFLX = 1,
        N2P_ICE_CAND_PRFLX = 2,
        N2P_ICE_CAND_RELAY = 3,
} n2p_ice_cand_type;

typedef struct n2p_ice_candidate {
        n2p_ice_cand_type type;
        uint32_t priority;
        char foundation[33];
        struct sockaddr_storage addr;
} n2p_ice_candidate;

typedef struct n2p_ice_desc {
        char ufrag[65];
        char pwd[129];
        size_t n_candidates;
        n2p_ice_candidate candidates[N2P_ICE_MAX_CANDIDATES];
} n2p_ice_desc;

/* Pure functions, fuzzed: -EINVAL on malformed input, -ENOBUFS if cap is short. */
int n2p_ice_desc_encode(const n2p_ice_desc *d, uint8_t *buf, size_t cap, size_t *ret_len);
int n2p_ice_desc_decode(const uint8_t *buf, size_t len, n2p_ice_desc *ret);

typedef struct n2p_ice_config {
        const char *stun_host;     /* numeric IP or NULL */
        unsigned stun_port;
        const char *local_address; /* numeric IP: gather only on it; NULL = every
                                    * non-loopback interface (libnice's default) */
        const char *turn_host;     /* numeric IP of a TURN server (UDP) or NULL */
        unsigned turn_port;
        const char *turn_user;
        const char *turn_pass;
        bool reliable;             /* libnice PseudoTCP (the issue-2 transport) */
} n2p_ice_config;

typedef enum n2p_ice_event {
        N2P_ICE_GATHERED,          /* local description is ready */
        N2P_ICE_CONNECTED,         /* a pair is selected and (reliable) the stream is open */
        N2P_ICE_FAILED,            /* checks failed or timed out, or consent was lost later */
} n2p_ice_event;

typedef struct n2p_ice n2p_ice;

typedef struct n2p_ice_callbacks {
        void (*event)(n2p_ice *ice, n2p_ice_event ev, void *userdata);
        void (*recv)(n2p_ice *ice, const uint8_t *buf, size_t len, void *userdata);
        void (*writable)(n2p_ice *ice, void *userdata);   /* after a short or -EAGAIN send */
} n2p_ice_callbacks;

/* The client is controlling. NULL on failure. Callbacks run from ctx; never free
 * the object from inside one of its callbacks (defer with g_idle_add). */
n2p_ice *n2p_ice_new(GMainContext *ctx, const n2p_ice_config *cfg, bool controlling,
                     const n2p_ice_callbacks *cb, void *userdata);

int n2p_ice_gather(n2p_ice *ice);                         /* -> N2P_ICE_GATHERED */
int n2p_ice_get_local(n2p_ice *ice, n2p_ice_desc *ret);   /* after N2P_ICE_GATHERED */

/* Starts connectivity checks: N2P_ICE_CONNECTED or N2P_ICE_FAILED follows, FAILED at
 * the latest N2P_ICE_TIMEOUT_MS later. */
int n2p_ice_set_remote(n2p_ice *ice, const n2p_ice_desc *remote);

/* Bytes accepted (may be fewer than len), -EAGAIN if none (wait for writable),
 * other negative errno if the path is gone. */
ssize_t n2p_ice_send(n2p_ice *ice, const uint8_t *buf, size_t len);

/* "host", "srflx", "prflx" or "relay" for the local and remote side of the selected
 * pair; "none" before N2P_ICE_CONNECTED. */
const char *n2p_ice_local_type(n2p_ice *ice);
const char *n2p_ice_remote_type(n2p_ice *ice);

n2p_ice *n2p_ice_free(n2p_ice *ice);
