/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * Noise_IK_25519_ChaChaPoly_BLAKE2b on libsodium.
 *
 *   IK:
 *     <- s
 *     ...
 *     -> e, es, s, ss
 *     <- e, ee, se
 *
 * The client (initiator) knows the server's static key from its address, so the
 * handshake is one round trip with no window for a man in the middle.
 * Library code: returns negative errno, never logs; every secret is wiped.
 */

#include <stddef.h>
#include <stdint.h>

enum {
        N2P_NOISE_DHLEN = 32,
        N2P_NOISE_HASHLEN = 64,
        N2P_NOISE_KEYLEN = 32,
        N2P_NOISE_TAGLEN = 16,
        N2P_NOISE_MAX_MESSAGE = 65535,
        /* overhead of the two handshake messages around their payloads */
        N2P_NOISE_MSG1_OVERHEAD = 32 + 32 + 16 + 16,   /* e, s + tag, payload tag */
        N2P_NOISE_MSG2_OVERHEAD = 32 + 16,             /* e, payload tag */
};

typedef enum n2p_noise_role {
        N2P_NOISE_INITIATOR,
        N2P_NOISE_RESPONDER,
} n2p_noise_role;

typedef enum n2p_noise_state {
        N2P_NOISE_WRITE_MSG1,   /* initiator, fresh */
        N2P_NOISE_READ_MSG1,    /* responder, fresh */
        N2P_NOISE_READ_MSG2,    /* initiator, message 1 sent */
        N2P_NOISE_WRITE_MSG2,   /* responder, message 1 read */
        N2P_NOISE_SPLIT,        /* handshake complete: call n2p_noise_split() */
        N2P_NOISE_FAILED,
} n2p_noise_state;

/* One direction of transport encryption (Noise CipherState). */
typedef struct n2p_cipher {
        uint8_t k[N2P_NOISE_KEYLEN];   /* secret */
        uint64_t n;                    /* next nonce */
} n2p_cipher;

typedef struct n2p_handshake {
        n2p_noise_role role;
        n2p_noise_state state;
        uint8_t h[N2P_NOISE_HASHLEN];
        uint8_t ck[N2P_NOISE_HASHLEN];      /* secret */
        uint8_t k[N2P_NOISE_KEYLEN];        /* secret */
        uint64_t n;
        int has_k;
        uint8_t s_pub[32], s_priv[32];      /* s_priv secret */
        uint8_t e_pub[32], e_priv[32];      /* e_priv secret */
        int has_e;                          /* ephemeral injected (tests) */
        uint8_t rs[32];                     /* remote static: set by init (initiator) or msg1 */
        uint8_t re[32];
} n2p_handshake;

/* rs is required for the initiator and ignored for the responder. */
int n2p_noise_init(n2p_handshake *hs, n2p_noise_role role,
                   const uint8_t s_priv[32], const uint8_t s_pub[32],
                   const uint8_t rs[32], const uint8_t *prologue, size_t prologue_len);

/* Tests only: use this ephemeral private key instead of a random one. */
void n2p_noise_set_ephemeral(n2p_handshake *hs, const uint8_t e_priv[32]);

/*
 * Write/read the next handshake message. out must hold len + overhead bytes.
 * Reading authenticates: on any failure the state becomes N2P_NOISE_FAILED and
 * -EBADMSG is returned (wrong key, corrupt, truncated). -EINVAL: wrong state or
 * sizes. On success *ret_len is the bytes written (message or payload).
 */
int n2p_noise_write_message(n2p_handshake *hs, const uint8_t *payload, size_t payload_len,
                            uint8_t *out, size_t out_cap, size_t *ret_len);
int n2p_noise_read_message(n2p_handshake *hs, const uint8_t *msg, size_t msg_len,
                           uint8_t *payload, size_t payload_cap, size_t *ret_len);

/* The handshake hash (for channel binding and the vectors' handshake_hash). */
const uint8_t *n2p_noise_handshake_hash(const n2p_handshake *hs);

/* After both messages: the two cipher states, in this side's sending and receiving
 * direction. Wipes the handshake. */
int n2p_noise_split(n2p_handshake *hs, n2p_cipher *ret_send, n2p_cipher *ret_recv);

void n2p_noise_wipe(n2p_handshake *hs);

/* Transport encryption with the implicit nonce (c->n, then incremented). -EOVERFLOW
 * when the nonce space is used up; decrypt returns -EBADMSG on a bad tag and does
 * not advance the nonce then. out holds len + 16 (encrypt) or len - 16 (decrypt). */
int n2p_cipher_encrypt(n2p_cipher *c, const uint8_t *ad, size_t ad_len,
                       const uint8_t *in, size_t len, uint8_t *out);
int n2p_cipher_decrypt(n2p_cipher *c, const uint8_t *ad, size_t ad_len,
                       const uint8_t *in, size_t len, uint8_t *out);

/* The same with an explicit nonce (datagram transports carry it in the packet). */
int n2p_cipher_encrypt_at(const n2p_cipher *c, uint64_t nonce, const uint8_t *ad, size_t ad_len,
                          const uint8_t *in, size_t len, uint8_t *out);
int n2p_cipher_decrypt_at(const n2p_cipher *c, uint64_t nonce, const uint8_t *ad, size_t ad_len,
                          const uint8_t *in, size_t len, uint8_t *out);

void n2p_cipher_wipe(n2p_cipher *c);

/* TAI64N timestamp of now (12 bytes, big-endian; strictly increasing in this process). */
void n2p_tai64n_now(uint8_t out[12]);
