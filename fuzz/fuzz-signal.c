/* SPDX-License-Identifier: MIT */
/* Signalling datagrams as the server reads them (INIT) and as a client reads them
 * (RESP, REJECT). Keys are fixed so that runs are reproducible. */
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "signalling.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        static n2p_key server, client;
        static n2p_handshake client_hs;
        static int ready;
        n2p_handshake hs;
        n2p_init_info info;
        n2p_ice_desc answer;
        uint32_t receiver;
        uint8_t status, reason;

        if (!ready) {
                uint8_t seed[32];
                uint8_t pkt[N2P_PKT_MAX];
                size_t len;
                n2p_ice_desc offer = { .ufrag = "abcd", .pwd = "abcdefghijklmnopqrstuv" };
                if (sodium_init() < 0)
                        abort();
                memset(seed, 1, sizeof seed);
                n2p_key_from_seed(seed, &server);
                memset(seed, 2, sizeof seed);
                n2p_key_from_seed(seed, &client);
                if (n2p_signal_make_init(&client, server.ed_public, 1, &offer, &client_hs, pkt, sizeof pkt, &len) < 0)
                        abort();
                ready = 1;
        }
        (void) n2p_signal_type(data, size);
        if (n2p_signal_read_init(&server, data, size, &hs, &info) == 0) {
                uint8_t out[N2P_PKT_MAX];
                size_t len;
                if (n2p_signal_make_resp(&hs, 2, info.sender, N2P_REFUSE_OK, &info.offer, out, sizeof out, &len) < 0)
                        abort();
                n2p_noise_wipe(&hs);
        }
        hs = client_hs;
        (void) n2p_signal_read_resp(&hs, 1, data, size, &status, &answer);
        n2p_noise_wipe(&hs);
        (void) n2p_signal_parse_reject(data, size, &receiver, &reason);
        {
                uint8_t key[32];
                const uint8_t *init;
                size_t init_len;
                if (n2p_signal_parse_discover(data, size, key, &init, &init_len) == 0 &&
                    (init_len > size || init < data || init + init_len != data + size))
                        abort();
        }
        return 0;
}
