/* SPDX-License-Identifier: MIT */
/*
 * Input: [mode u8] then packets, each [length u16 BE][pn step u8][frames...]
 * (the last one is cut to what is left). With a fresh link that has already
 * sent some data (so ACKs have something to acknowledge):
 *   1. the whole input as one datagram through n2p_link_input (header checks,
 *      the replay window, authentication);
 *   2. every packet's frames through n2p_link_deliver_plaintext as if it had
 *      been decrypted, packet numbers advancing by the step (0 = a replay).
 * mode bit 0 makes the path refuse datagrams, bit 1 writes more before starting.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include <glib.h>
#include <sodium.h>

#include "link.h"
#include "util.h"

typedef struct fuzz_ctx {
        bool blocked;
        uint64_t received;
} fuzz_ctx;

static ssize_t path_send(const uint8_t *buf, size_t len, void *userdata) {
        fuzz_ctx *c = userdata;
        if (!buf || len == 0 || len > N2P_LINK_DATAGRAM)
                __builtin_trap();
        return c->blocked ? -EAGAIN : (ssize_t) len;
}

static void on_recv(n2p_link *l, const uint8_t *buf, size_t len, void *userdata) {
        fuzz_ctx *c = userdata;
        if (!buf || len == 0)
                __builtin_trap();
        c->received += len;
}

static const n2p_link_callbacks callbacks = {
        .recv = on_recv,
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        static uint8_t junk[200000];
        n2p_cipher tx = { .k = { 1 } }, rx = { .k = { 2 } };
        fuzz_ctx c = {};
        uint64_t pn = 0;
        n2p_link *l;

        if (size < 1)
                return 0;
        if (sodium_init() < 0)
                return 0;
        c.blocked = data[0] & 1;
        l = n2p_link_new(&tx, &rx, path_send, &callbacks, &c);
        if (!l)
                __builtin_trap();
        if (n2p_link_write(l, junk, data[0] & 2 ? sizeof junk : 5000) < 0)
                __builtin_trap();

        (void) n2p_link_input(l, data, size);

        data++;
        size--;
        while (size >= 3) {
                size_t len = MIN((size_t) n2p_get_be16(data), size - 3);
                pn += data[2];
                (void) n2p_link_deliver_plaintext(l, pn, data + 3, len);
                if (n2p_link_unacked(l) > N2P_LINK_BUFFER || c.received > pn * 65536 + 65536)
                        __builtin_trap();
                data += 3 + len;
                size -= 3 + len;
        }
        n2p_link_free(l);
        return 0;
}
