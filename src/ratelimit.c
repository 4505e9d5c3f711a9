/* SPDX-License-Identifier: MIT */
#include <netinet/in.h>
#include <sodium.h>
#include <string.h>

#include "ratelimit.h"

typedef struct Source {
        uint8_t addr[16];                 /* IPv4 as v4-mapped, IPv6 as its /64 */
        GList link;                       /* in lru, newest first */
        n2p_bucket bucket;
} Source;

struct n2p_ratelimit {
        double rate, burst;
        unsigned max;
        GHashTable *sources;              /* addr -> Source */
        GQueue lru;
};

/* Addresses are chosen by whoever sends: hash them with a secret key (one per
 * process) so that nobody can aim for one bucket of the table. */
static uint8_t hash_key[crypto_shorthash_KEYBYTES];

bool n2p_bucket_take(n2p_bucket *b, double rate, double burst, gint64 now) {
        b->tokens = MIN(burst, b->tokens + (double) (now - b->at) * rate / G_USEC_PER_SEC);
        b->at = now;
        if (b->tokens < 1.0)
                return false;
        b->tokens -= 1.0;
        return true;
}

static void source_key(const struct sockaddr_storage *sa, uint8_t out[16]) {
        memset(out, 0, 16);
        if (sa->ss_family == AF_INET) {
                out[10] = out[11] = 0xff;
                memcpy(out + 12, &((const struct sockaddr_in *) sa)->sin_addr, 4);
        } else if (sa->ss_family == AF_INET6) {
                const struct in6_addr *a = &((const struct sockaddr_in6 *) sa)->sin6_addr;
                memcpy(out, a, IN6_IS_ADDR_V4MAPPED(a) ? 16 : 8);
        }
}

static guint addr_hash(gconstpointer p) {
        uint8_t h[crypto_shorthash_BYTES];
        guint v;
        crypto_shorthash(h, p, 16, hash_key);
        memcpy(&v, h, sizeof v);
        return v;
}

static gboolean addr_equal(gconstpointer a, gconstpointer b) {
        return memcmp(a, b, 16) == 0;
}

n2p_ratelimit *n2p_ratelimit_new(double rate, double burst, unsigned max_sources) {
        static gsize keyed;
        n2p_ratelimit *rl = g_new0(n2p_ratelimit, 1);
        if (g_once_init_enter(&keyed)) {
                randombytes_buf(hash_key, sizeof hash_key);
                g_once_init_leave(&keyed, 1);
        }
        rl->rate = rate;
        rl->burst = burst;
        rl->max = max_sources ? max_sources : 1;
        rl->sources = g_hash_table_new_full(addr_hash, addr_equal, NULL, g_free);
        g_queue_init(&rl->lru);
        return rl;
}

static void source_drop(n2p_ratelimit *rl, Source *s) {
        g_queue_unlink(&rl->lru, &s->link);
        g_hash_table_remove(rl->sources, s->addr);
}

bool n2p_ratelimit_allow(n2p_ratelimit *rl, const struct sockaddr_storage *from, gint64 now) {
        uint8_t k[16];
        Source *s;

        source_key(from, k);
        s = g_hash_table_lookup(rl->sources, k);
        if (s)
                g_queue_unlink(&rl->lru, &s->link);
        else {
                if (g_hash_table_size(rl->sources) >= rl->max)
                        source_drop(rl, rl->lru.tail->data);
                s = g_new0(Source, 1);
                memcpy(s->addr, k, 16);
                s->link.data = s;
                s->bucket = (n2p_bucket) { rl->burst, now };
                g_hash_table_insert(rl->sources, s->addr, s);
        }
        g_queue_push_head_link(&rl->lru, &s->link);
        return n2p_bucket_take(&s->bucket, rl->rate, rl->burst, now);
}

void n2p_ratelimit_sweep(n2p_ratelimit *rl, gint64 now) {
        while (rl->lru.tail) {
                Source *s = rl->lru.tail->data;
                if (now - s->bucket.at < (gint64) (rl->burst * G_USEC_PER_SEC / rl->rate))
                        break;
                source_drop(rl, s);
        }
}

unsigned n2p_ratelimit_size(const n2p_ratelimit *rl) {
        return g_hash_table_size(rl->sources);
}

n2p_ratelimit *n2p_ratelimit_free(n2p_ratelimit *rl) {
        if (!rl)
                return NULL;
        /* The links live inside the sources, which the table frees. */
        g_queue_init(&rl->lru);
        g_hash_table_destroy(rl->sources);
        g_free(rl);
        return NULL;
}
