/* SPDX-License-Identifier: MIT */
/*
 * noise-vectors FILE: runs the Noise_IK_25519_ChaChaPoly_BLAKE2b entries of a
 * cacophony-format vectors file through n2p's noise module, both sides, the
 * handshake and then the transport messages.
 */

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include <json-glib/json-glib.h>
#include <sodium.h>

#include "noise.h"

#define PROTOCOL "Noise_IK_25519_ChaChaPoly_BLAKE2b"

typedef struct vector_keys {
        uint8_t init_static[32], init_static_pub[32], init_ephemeral[32], init_remote_static[32];
        uint8_t resp_static[32], resp_static_pub[32], resp_ephemeral[32];
} vector_keys;

/* Decodes the hex string member `name` into a new buffer; NULL when missing or malformed. */
static uint8_t *get_hex(JsonObject *o, const char *name, size_t *ret_len) {
        const char *hex;
        size_t hex_len, len;
        uint8_t *buf;

        if (!json_object_has_member(o, name))
                return NULL;
        hex = json_object_get_string_member_with_default(o, name, NULL);
        if (!hex)
                return NULL;
        hex_len = strlen(hex);
        buf = g_malloc(hex_len / 2 + 1);
        if (sodium_hex2bin(buf, hex_len / 2 + 1, hex, hex_len, NULL, &len, NULL) != 0 ||
            len * 2 != hex_len) {
                g_free(buf);
                return NULL;
        }
        *ret_len = len;
        return buf;
}

static bool get_key(JsonObject *o, const char *name, uint8_t out[32], char **ret_reason) {
        g_autofree uint8_t *buf = NULL;
        size_t len = 0;

        buf = get_hex(o, name, &len);
        if (!buf || len != 32) {
                *ret_reason = g_strdup_printf("%s missing or not a 32-byte hex key", name);
                return false;
        }
        memcpy(out, buf, 32);
        return true;
}

static bool check_bytes(const char *what, size_t i, const uint8_t *got, size_t got_len,
                        const uint8_t *want, size_t want_len, char **ret_reason) {
        if (got_len == want_len && memcmp(got, want, got_len) == 0)
                return true;
        *ret_reason = g_strdup_printf("message %zu: %s differs (%zu bytes, expected %zu)",
                                      i, what, got_len, want_len);
        return false;
}

static bool run_vector(JsonObject *v, char **ret_reason) {
        n2p_handshake ini = {}, res = {};
        n2p_cipher isend = {}, irecv = {}, rsend = {}, rrecv = {};
        vector_keys keys = {};
        g_autofree uint8_t *iprologue = NULL, *rprologue = NULL, *hhash = NULL;
        size_t iprologue_len = 0, rprologue_len = 0, hhash_len = 0;
        JsonArray *messages;
        bool ok = false;
        int r;

        if (!get_key(v, "init_static", keys.init_static, ret_reason) ||
            !get_key(v, "init_ephemeral", keys.init_ephemeral, ret_reason) ||
            !get_key(v, "init_remote_static", keys.init_remote_static, ret_reason) ||
            !get_key(v, "resp_static", keys.resp_static, ret_reason) ||
            !get_key(v, "resp_ephemeral", keys.resp_ephemeral, ret_reason))
                goto out;
        iprologue = get_hex(v, "init_prologue", &iprologue_len);
        rprologue = get_hex(v, "resp_prologue", &rprologue_len);
        if (json_object_has_member(v, "handshake_hash")) {
                hhash = get_hex(v, "handshake_hash", &hhash_len);
                if (!hhash) {
                        *ret_reason = g_strdup("handshake_hash is not hex");
                        goto out;
                }
        }
        if (!json_object_has_member(v, "messages") ||
            !JSON_NODE_HOLDS_ARRAY(json_object_get_member(v, "messages"))) {
                *ret_reason = g_strdup("no messages array");
                goto out;
        }
        messages = json_object_get_array_member(v, "messages");
        if (json_array_get_length(messages) < 2) {
                *ret_reason = g_strdup("fewer than the two handshake messages");
                goto out;
        }

        crypto_scalarmult_base(keys.init_static_pub, keys.init_static);
        crypto_scalarmult_base(keys.resp_static_pub, keys.resp_static);

        r = n2p_noise_init(&ini, N2P_NOISE_INITIATOR, keys.init_static, keys.init_static_pub,
                           keys.init_remote_static, iprologue, iprologue_len);
        if (r < 0) {
                *ret_reason = g_strdup_printf("initiator init: %s", strerror(-r));
                goto out;
        }
        r = n2p_noise_init(&res, N2P_NOISE_RESPONDER, keys.resp_static, keys.resp_static_pub,
                           NULL, rprologue, rprologue_len);
        if (r < 0) {
                *ret_reason = g_strdup_printf("responder init: %s", strerror(-r));
                goto out;
        }
        n2p_noise_set_ephemeral(&ini, keys.init_ephemeral);
        n2p_noise_set_ephemeral(&res, keys.resp_ephemeral);

        for (guint i = 0; i < json_array_get_length(messages); i++) {
                JsonNode *node = json_array_get_element(messages, i);
                g_autofree uint8_t *payload = NULL, *ciphertext = NULL, *out = NULL, *back = NULL;
                size_t payload_len = 0, ciphertext_len = 0, out_len = 0, back_len = 0;
                bool from_initiator = i % 2 == 0;

                if (!JSON_NODE_HOLDS_OBJECT(node)) {
                        *ret_reason = g_strdup_printf("message %u is not an object", i);
                        goto out;
                }
                payload = get_hex(json_node_get_object(node), "payload", &payload_len);
                ciphertext = get_hex(json_node_get_object(node), "ciphertext", &ciphertext_len);
                if (!payload || !ciphertext || payload_len > N2P_NOISE_MAX_MESSAGE) {
                        *ret_reason = g_strdup_printf("message %u: bad payload or ciphertext", i);
                        goto out;
                }
                out = g_malloc(payload_len + N2P_NOISE_MSG1_OVERHEAD);
                back = g_malloc(ciphertext_len + 1);

                if (i < 2) {
                        n2p_handshake *w = from_initiator ? &ini : &res;
                        n2p_handshake *rd = from_initiator ? &res : &ini;

                        r = n2p_noise_write_message(w, payload, payload_len, out,
                                                    payload_len + N2P_NOISE_MSG1_OVERHEAD, &out_len);
                        if (r < 0) {
                                *ret_reason = g_strdup_printf("message %u: write: %s", i, strerror(-r));
                                goto out;
                        }
                        if (!check_bytes("written handshake message", i, out, out_len,
                                         ciphertext, ciphertext_len, ret_reason))
                                goto out;
                        r = n2p_noise_read_message(rd, ciphertext, ciphertext_len, back,
                                                   ciphertext_len + 1, &back_len);
                        if (r < 0) {
                                *ret_reason = g_strdup_printf("message %u: read: %s", i, strerror(-r));
                                goto out;
                        }
                        if (!check_bytes("read payload", i, back, back_len, payload, payload_len,
                                         ret_reason))
                                goto out;

                        if (i == 1) {
                                if (memcmp(n2p_noise_handshake_hash(&ini),
                                           n2p_noise_handshake_hash(&res), N2P_NOISE_HASHLEN) != 0) {
                                        *ret_reason = g_strdup("handshake hashes of the two sides differ");
                                        goto out;
                                }
                                if (hhash && !check_bytes("handshake hash", i,
                                                          n2p_noise_handshake_hash(&ini),
                                                          N2P_NOISE_HASHLEN, hhash, hhash_len,
                                                          ret_reason))
                                        goto out;
                                if (n2p_noise_split(&ini, &isend, &irecv) < 0 ||
                                    n2p_noise_split(&res, &rsend, &rrecv) < 0) {
                                        *ret_reason = g_strdup("split failed");
                                        goto out;
                                }
                        }
                        continue;
                }

                n2p_cipher *enc = from_initiator ? &isend : &rsend;
                n2p_cipher *dec = from_initiator ? &rrecv : &irecv;

                r = n2p_cipher_encrypt(enc, NULL, 0, payload, payload_len, out);
                if (r < 0) {
                        *ret_reason = g_strdup_printf("message %u: encrypt: %s", i, strerror(-r));
                        goto out;
                }
                if (!check_bytes("transport ciphertext", i, out, payload_len + N2P_NOISE_TAGLEN,
                                 ciphertext, ciphertext_len, ret_reason))
                        goto out;
                r = n2p_cipher_decrypt(dec, NULL, 0, ciphertext, ciphertext_len, back);
                if (r < 0) {
                        *ret_reason = g_strdup_printf("message %u: decrypt: %s", i, strerror(-r));
                        goto out;
                }
                if (!check_bytes("decrypted payload", i, back, ciphertext_len - N2P_NOISE_TAGLEN,
                                 payload, payload_len, ret_reason))
                        goto out;
        }
        ok = true;
out:
        n2p_noise_wipe(&ini);
        n2p_noise_wipe(&res);
        n2p_cipher_wipe(&isend);
        n2p_cipher_wipe(&irecv);
        n2p_cipher_wipe(&rsend);
        n2p_cipher_wipe(&rrecv);
        sodium_memzero(&keys, sizeof keys);
        return ok;
}

int main(int argc, char **argv) {
        g_autoptr(JsonParser) parser = NULL;
        g_autoptr(GError) error = NULL;
        JsonNode *root;
        JsonArray *vectors;
        unsigned passed = 0, failed = 0;

        if (argc != 2) {
                fprintf(stderr, "usage: %s FILE\n", argv[0]);
                return 2;
        }
        if (sodium_init() < 0) {
                fprintf(stderr, "libsodium failed to initialize\n");
                return 1;
        }

        parser = json_parser_new();
        if (!json_parser_load_from_file(parser, argv[1], &error)) {
                fprintf(stderr, "%s: %s\n", argv[1], error->message);
                return 1;
        }
        root = json_parser_get_root(parser);
        if (root && JSON_NODE_HOLDS_OBJECT(root) &&
            json_object_has_member(json_node_get_object(root), "vectors") &&
            JSON_NODE_HOLDS_ARRAY(json_object_get_member(json_node_get_object(root), "vectors")))
                vectors = json_object_get_array_member(json_node_get_object(root), "vectors");
        else if (root && JSON_NODE_HOLDS_ARRAY(root))
                vectors = json_node_get_array(root);
        else {
                fprintf(stderr, "%s: neither {\"vectors\": [...]} nor an array\n", argv[1]);
                return 1;
        }

        for (guint i = 0; i < json_array_get_length(vectors); i++) {
                JsonNode *node = json_array_get_element(vectors, i);
                g_autofree char *reason = NULL;
                JsonObject *v;
                const char *name;

                if (!JSON_NODE_HOLDS_OBJECT(node))
                        continue;
                v = json_node_get_object(node);
                name = json_object_get_string_member_with_default(v, "protocol_name", "");
                if (!name || strcmp(name, PROTOCOL) != 0)
                        continue;

                if (run_vector(v, &reason))
                        passed++;
                else {
                        printf("vector %u (%s): %s\n", i, name, reason ? reason : "failed");
                        failed++;
                }
        }

        printf("%u passed, %u failed\n", passed, failed);
        return failed > 0 || passed == 0 ? 1 : 0;
}
