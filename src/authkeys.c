/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <glib.h>
#include <stdio.h>
#include <string.h>

#include "addr.h"
#include "authkeys.h"

struct n2p_authkeys {
        GHashTable *keys;   /* GBytes (32) set */
};

static guint bytes_hash(gconstpointer p) {
        return g_bytes_hash(p);
}

static gboolean bytes_equal(gconstpointer a, gconstpointer b) {
        return g_bytes_equal(a, b);
}

int n2p_authkeys_parse(const char *text, size_t len, n2p_authkeys **ret, char *err, size_t errlen) {
        n2p_authkeys *k;
        size_t off = 0;
        unsigned lineno = 0;

        if (len > N2P_AUTHKEYS_MAX_FILE) {
                snprintf(err, errlen, "larger than %d bytes", N2P_AUTHKEYS_MAX_FILE);
                return -E2BIG;
        }
        k = g_new0(n2p_authkeys, 1);
        k->keys = g_hash_table_new_full(bytes_hash, bytes_equal, (GDestroyNotify) g_bytes_unref, NULL);

        while (off < len) {
                const char *line = text + off, *nl = memchr(line, '\n', len - off);
                size_t llen = nl ? (size_t) (nl - line) : len - off;
                char word[N2P_ADDR_MAX_TEXT + 1], why[160];
                size_t i = 0, w = 0;
                n2p_addr a;

                off += llen + (nl ? 1 : 0);
                lineno++;
                if (memchr(line, '\0', llen)) {
                        snprintf(err, errlen, "line %u: contains a NUL byte", lineno);
                        goto fail;
                }
                while (i < llen && (line[i] == ' ' || line[i] == '\t' || line[i] == '\r'))
                        i++;
                if (i == llen || line[i] == '#')
                        continue;
                while (i < llen && line[i] != ' ' && line[i] != '\t' && line[i] != '\r') {
                        if (w >= N2P_ADDR_MAX_TEXT) {
                                snprintf(err, errlen, "line %u: not a key (too long)", lineno);
                                goto fail;
                        }
                        word[w++] = line[i++];
                }
                word[w] = '\0';
                /* What follows the key is a comment. */
                if (n2p_addr_parse(word, &a, why, sizeof why) < 0) {
                        snprintf(err, errlen, "line %u: %s", lineno, why);
                        goto fail;
                }
                if (g_hash_table_size(k->keys) >= N2P_AUTHKEYS_MAX) {
                        snprintf(err, errlen, "more than %d keys", N2P_AUTHKEYS_MAX);
                        n2p_authkeys_free(k);
                        return -E2BIG;
                }
                g_hash_table_add(k->keys, g_bytes_new(a.key, 32));
        }
        *ret = k;
        return 0;
fail:
        n2p_authkeys_free(k);
        return -EINVAL;
}

bool n2p_authkeys_contains(const n2p_authkeys *k, const uint8_t ed_public[32]) {
        g_autoptr(GBytes) b = g_bytes_new(ed_public, 32);
        return g_hash_table_contains(k->keys, b);
}

size_t n2p_authkeys_count(const n2p_authkeys *k) {
        return g_hash_table_size(k->keys);
}

n2p_authkeys *n2p_authkeys_free(n2p_authkeys *k) {
        if (!k)
                return NULL;
        g_hash_table_destroy(k->keys);
        g_free(k);
        return NULL;
}
