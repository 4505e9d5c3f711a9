/* SPDX-License-Identifier: MIT */
/* Every rendezvous parser on the same input; where one accepts it, building the
 * message again from what it returned must give back the same bytes (each
 * message has exactly one encoding). */
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "rendezvous.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void same(const uint8_t *a, size_t alen, const uint8_t *b, int blen) {
        if (blen < 0 || (size_t) blen != alen || memcmp(a, b, alen) != 0)
                abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        static uint8_t out[N2P_RV_MAX_PACKET + 64];
        static int ready;
        struct sockaddr_storage ep;
        const uint8_t *inner;
        size_t inner_len;
        uint8_t key[32], status, code;
        uint32_t lifetime, cookie;
        uint64_t time_ms;
        n2p_rv_creds creds;

        if (!ready) {
                if (sodium_init() < 0)
                        abort();
                ready = 1;
        }

        if (n2p_rv_parse_register(data, size, key, &time_ms) == 0 &&
            (memcmp(key, data + 4, 32) != 0 || size != N2P_RV_REGISTER_SIZE))
                abort();
        if (n2p_rv_parse_registered(data, size, &status, &lifetime, &ep, &creds) == 0)
                same(data, size, out, n2p_rv_make_registered(status, lifetime, &ep, &creds, out, sizeof out));
        if (n2p_rv_parse_offer(data, size, key, &inner, &inner_len) == 0)
                same(data, size, out, n2p_rv_make_offer(key, inner, inner_len, out, sizeof out));
        if (n2p_rv_parse_forward(data, size, &cookie, &ep, &inner, &inner_len) == 0)
                same(data, size, out, n2p_rv_make_forward(cookie, &ep, inner, inner_len, out, sizeof out));
        if (n2p_rv_parse_answer(data, size, &cookie, &inner, &inner_len) == 0)
                same(data, size, out, n2p_rv_make_answer(cookie, inner, inner_len, out, sizeof out));
        if (n2p_rv_parse_deliver(data, size, &inner, &inner_len) == 0)
                same(data, size, out, n2p_rv_make_deliver(inner, inner_len, out, sizeof out));
        if (n2p_rv_parse_error(data, size, &code, key) == 0)
                same(data, size, out, n2p_rv_make_error(code, key, out, sizeof out));
        if (n2p_rv_parse_creds(data, size, &status, &creds) == 0)
                same(data, size, out, n2p_rv_make_creds(status, &creds, out, sizeof out));
        if (size > 0)
                (void) n2p_rv_strerror(data[0]);
        return 0;
}
