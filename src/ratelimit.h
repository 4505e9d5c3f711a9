/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * Token buckets per source address, in a bounded table: what any service that
 * answers unauthenticated datagrams needs (the node's handshakes, the rendezvous
 * service). IPv4 hosts count one by one, IPv6 by /64 (one host usually owns a
 * whole /64). When the table is full the least recently seen source is dropped,
 * which only ever makes it start again with a full bucket.
 */

#include <glib.h>
#include <stdbool.h>
#include <sys/socket.h>

typedef struct n2p_ratelimit n2p_ratelimit;

n2p_ratelimit *n2p_ratelimit_new(double rate, double burst, unsigned max_sources);

/* Takes one token from the source's bucket; false when it is empty. now in µs
 * of a monotonic clock (g_get_monotonic_time()). */
bool n2p_ratelimit_allow(n2p_ratelimit *rl, const struct sockaddr_storage *from, gint64 now);

/* Forgets sources whose bucket has refilled (they need no state). */
void n2p_ratelimit_sweep(n2p_ratelimit *rl, gint64 now);

unsigned n2p_ratelimit_size(const n2p_ratelimit *rl);

n2p_ratelimit *n2p_ratelimit_free(n2p_ratelimit *rl);

/* A single bucket, for limits that are not per source. */
typedef struct n2p_bucket {
        double tokens;
        gint64 at;                        /* monotonic µs of the last refill */
} n2p_bucket;

bool n2p_bucket_take(n2p_bucket *b, double rate, double burst, gint64 now);
