/* SPDX-License-Identifier: MIT */
/*
 * The input, as a peer would send it:
 *   - as message 1 to a fresh responder (on success, message 2 is written too);
 *   - as message 2 to an initiator that sent a fixed message 1 (on success, the
 *     handshake is split and one transport record goes each way);
 *   - as a transport record for a fixed receiving cipher.
 * Keys and ephemerals are derived from constants so that every run, and the
 * seed corpus, see the same handshake.
 */

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "noise.h"
#include "wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint8_t resp_priv[32], resp_pub[32], resp_e[32];
static uint8_t init_priv[32], init_pub[32], init_e[32];
static n2p_handshake init_sent_msg1;
static uint8_t init_msg1[64 + N2P_NOISE_MSG1_OVERHEAD];
static size_t init_msg1_len;
static const uint8_t init_payload[64] = "n2p fuzz: tai64n || client key || ICE description";
static n2p_cipher fixed_recv;

static void derive(uint8_t out[32], const char *label) {
        crypto_generichash(out, 32, (const uint8_t *) label, strlen(label), NULL, 0);
}

static void setup(void) {
        static bool done;

        if (done)
                return;
        if (sodium_init() < 0)
                abort();

        derive(resp_priv, "n2p fuzz responder static");
        derive(resp_e, "n2p fuzz responder ephemeral");
        derive(init_priv, "n2p fuzz initiator static");
        derive(init_e, "n2p fuzz initiator ephemeral");
        derive(fixed_recv.k, "n2p fuzz transport key");
        crypto_scalarmult_base(resp_pub, resp_priv);
        crypto_scalarmult_base(init_pub, init_priv);

        if (n2p_noise_init(&init_sent_msg1, N2P_NOISE_INITIATOR, init_priv, init_pub, resp_pub,
                           (const uint8_t *) N2P_NOISE_PROLOGUE,
                           sizeof(N2P_NOISE_PROLOGUE) - 1) < 0)
                abort();
        n2p_noise_set_ephemeral(&init_sent_msg1, init_e);
        if (n2p_noise_write_message(&init_sent_msg1, init_payload, sizeof init_payload, init_msg1,
                                    sizeof init_msg1, &init_msg1_len) < 0)
                abort();
        done = true;
}

static void exchange(n2p_cipher *send, n2p_cipher *recv) {
        uint8_t rec[8 + N2P_NOISE_TAGLEN], back[8];

        /* Keys that came out of a handshake a fuzzer completed must be usable. */
        if (n2p_cipher_encrypt(send, NULL, 0, (const uint8_t *) "transpor", 8, rec) < 0)
                abort();
        (void) n2p_cipher_decrypt(recv, NULL, 0, rec, sizeof rec, back);
}

static void as_msg1(const uint8_t *data, size_t size) {
        static uint8_t payload[N2P_NOISE_MAX_MESSAGE], msg2[N2P_NOISE_MAX_MESSAGE];
        n2p_handshake r;
        n2p_cipher send, recv;
        size_t len, msg2_len;

        if (n2p_noise_init(&r, N2P_NOISE_RESPONDER, resp_priv, resp_pub, NULL,
                           (const uint8_t *) N2P_NOISE_PROLOGUE, sizeof(N2P_NOISE_PROLOGUE) - 1) < 0)
                abort();
        n2p_noise_set_ephemeral(&r, resp_e);
        if (n2p_noise_read_message(&r, data, size, payload, sizeof payload, &len) < 0) {
                if (r.state != N2P_NOISE_FAILED)
                        abort();
                goto out;
        }
        if (len != size - N2P_NOISE_MSG1_OVERHEAD || r.state != N2P_NOISE_WRITE_MSG2)
                abort();
        if (n2p_noise_write_message(&r, payload, len > 16 ? 16 : len, msg2, sizeof msg2,
                                    &msg2_len) < 0)
                goto out;
        if (n2p_noise_split(&r, &send, &recv) < 0)
                abort();
        exchange(&send, &recv);
        n2p_cipher_wipe(&send);
        n2p_cipher_wipe(&recv);
out:
        n2p_noise_wipe(&r);
}

static void as_msg2(const uint8_t *data, size_t size) {
        static uint8_t payload[N2P_NOISE_MAX_MESSAGE];
        n2p_handshake i = init_sent_msg1;
        n2p_cipher send, recv;
        size_t len;

        if (n2p_noise_read_message(&i, data, size, payload, sizeof payload, &len) < 0) {
                if (i.state != N2P_NOISE_FAILED)
                        abort();
                goto out;
        }
        if (len != size - N2P_NOISE_MSG2_OVERHEAD || i.state != N2P_NOISE_SPLIT)
                abort();
        if (n2p_noise_split(&i, &send, &recv) < 0)
                abort();
        exchange(&send, &recv);
        n2p_cipher_wipe(&send);
        n2p_cipher_wipe(&recv);
out:
        n2p_noise_wipe(&i);
}

static void as_record(const uint8_t *data, size_t size) {
        static uint8_t out[N2P_NOISE_MAX_MESSAGE];
        n2p_cipher c = fixed_recv;

        if (size > sizeof out)
                return;
        if (n2p_cipher_decrypt(&c, NULL, 0, data, size, out) == 0 && c.n != 1)
                abort();
        (void) n2p_cipher_decrypt_at(&fixed_recv, size, data, size, data, size, out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        setup();
        as_msg1(data, size);
        as_msg2(data, size);
        as_record(data, size);
        return 0;
}
