/* SPDX-License-Identifier: MIT */
#include <glib.h>
#include <netinet/in.h>
#include <sodium.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "addr.h"

static bool sockaddr_equal(const struct sockaddr_storage *a, const struct sockaddr_storage *b) {
        if (a->ss_family != b->ss_family)
                return false;
        if (a->ss_family == AF_INET) {
                const struct sockaddr_in *x = (const void *) a, *y = (const void *) b;
                return x->sin_port == y->sin_port && x->sin_addr.s_addr == y->sin_addr.s_addr;
        }
        if (a->ss_family == AF_INET6) {
                const struct sockaddr_in6 *x = (const void *) a, *y = (const void *) b;
                return x->sin6_port == y->sin6_port && memcmp(&x->sin6_addr, &y->sin6_addr, 16) == 0;
        }
        return false;
}

static bool addr_equal(const n2p_addr *a, const n2p_addr *b) {
        if (memcmp(a->key, b->key, sizeof a->key) != 0 || a->is_long != b->is_long ||
            a->n_endpoints != b->n_endpoints || strcmp(a->rendezvous, b->rendezvous) != 0)
                return false;
        for (size_t i = 0; i < a->n_endpoints; i++)
                if (!sockaddr_equal(&a->endpoints[i], &b->endpoints[i]))
                        return false;
        return true;
}

static void check_addr(const char *text) {
        n2p_addr a, b;
        char err[256];

        if (n2p_addr_parse(text, &a, err, sizeof err) < 0) {
                /* The reason must be one non-empty line. */
                if (err[0] == '\0' || strchr(err, '\n'))
                        abort();
                return;
        }
        if (a.n_endpoints > N2P_ADDR_MAX_ENDPOINTS || strlen(a.rendezvous) > N2P_ADDR_MAX_HINT)
                abort();

        g_autofree char *s = a.is_long ? n2p_addr_format_long(&a) : n2p_addr_format_short(a.key);
        if (!s)
                abort();
        if (n2p_addr_parse(s, &b, err, sizeof err) < 0 || !addr_equal(&a, &b))
                abort();

        /* Exactly one text per address: re-formatting gives back the input, up to
         * case and surrounding whitespace. */
        g_autofree char *trimmed = g_ascii_strdown(text, -1);
        g_strstrip(trimmed);
        if (strcmp(trimmed, s) != 0)
                abort();
}

static void check_endpoint(const char *text, int default_port) {
        struct sockaddr_storage a, b;
        char err[256], buf[64];

        if (n2p_endpoint_parse(text, default_port, &a, err, sizeof err) < 0) {
                if (err[0] == '\0' || strchr(err, '\n'))
                        abort();
                return;
        }
        n2p_endpoint_format(&a, buf, sizeof buf);
        if (n2p_endpoint_parse(buf, 0, &b, err, sizeof err) < 0 || !sockaddr_equal(&a, &b))
                abort();
}

/* Also treat the input as a body and give it a valid checksum: otherwise the
 * fuzzer would almost never get past the checksum into the field parser. */
static void check_as_body(const uint8_t *data, size_t size) {
        static const char b32[] = "abcdefghijklmnopqrstuvwxyz234567";
        uint8_t body[N2P_ADDR_MAX_TEXT];
        char text[N2P_ADDR_MAX_TEXT + 16];
        crypto_generichash_state st;
        uint32_t acc = 0;
        unsigned bits = 0;
        size_t o = 0;

        /* The longest body that fits in N2P_ADDR_MAX_TEXT, with its checksum. */
        if (size + 4 > (N2P_ADDR_MAX_TEXT - 4) * 5 / 8)
                return;
        memcpy(body, data, size);
        crypto_generichash_init(&st, NULL, 0, 4);
        crypto_generichash_update(&st, (const uint8_t *) "n2p-address1", 12);
        crypto_generichash_update(&st, body, size);
        crypto_generichash_final(&st, body + size, 4);
        size += 4;

        memcpy(text, "n2p1", 4);
        o = 4;
        for (size_t i = 0; i < size; i++) {
                acc = (acc << 8) | body[i];
                bits += 8;
                while (bits >= 5) {
                        bits -= 5;
                        text[o++] = b32[(acc >> bits) & 31];
                }
        }
        if (bits > 0)
                text[o++] = b32[(acc << (5 - bits)) & 31];
        text[o] = '\0';
        check_addr(text);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        static bool initialized;
        char text[N2P_ADDR_MAX_TEXT + 16 + 1];

        if (!initialized) {
                if (sodium_init() < 0)
                        abort();
                initialized = true;
        }
        if (size > sizeof text - 1)
                size = sizeof text - 1;
        memcpy(text, data, size);
        text[size] = '\0';

        check_addr(text);
        check_as_body(data, size);
        check_endpoint(text, 0);
        check_endpoint(text, 7787);
        return 0;
}
