/* SPDX-License-Identifier: MIT */
/*
 * Noise_IK_25519_ChaChaPoly_BLAKE2b (Noise revision 34) on libsodium.
 *
 *   IK:
 *     <- s
 *     ...
 *     -> e, es, s, ss
 *     <- e, ee, se
 *
 * Every operation on the handshake state works on a copy that is committed only
 * once the whole message has been processed, so a forged or corrupt message can
 * not leave a half-updated state behind.
 */

#include <errno.h>
#include <pthread.h>
#include <string.h>
#include <time.h>

#include <sodium.h>

#include "noise.h"
#include "util.h"

#define PROTOCOL_NAME "Noise_IK_25519_ChaChaPoly_BLAKE2b"

enum {
        BLAKE2B_BLOCKLEN = 128,
        MSG1_E = N2P_NOISE_DHLEN,
        MSG1_S = N2P_NOISE_DHLEN + N2P_NOISE_TAGLEN,
        MSG2_E = N2P_NOISE_DHLEN,
};

_Static_assert(sizeof(PROTOCOL_NAME) - 1 <= N2P_NOISE_HASHLEN, "protocol name is padded, not hashed");
_Static_assert(N2P_NOISE_HASHLEN == crypto_generichash_blake2b_BYTES_MAX, "BLAKE2b-512");
_Static_assert((int) N2P_NOISE_HASHLEN <= (int) BLAKE2B_BLOCKLEN, "HMAC keys never need hashing");
_Static_assert(N2P_NOISE_KEYLEN == crypto_aead_chacha20poly1305_ietf_KEYBYTES, "key size");
_Static_assert(N2P_NOISE_TAGLEN == crypto_aead_chacha20poly1305_ietf_ABYTES, "tag size");
_Static_assert(N2P_NOISE_DHLEN == crypto_scalarmult_BYTES, "X25519");
_Static_assert((int) N2P_NOISE_MSG1_OVERHEAD == (int) MSG1_E + MSG1_S + N2P_NOISE_TAGLEN, "message 1 layout");
_Static_assert((int) N2P_NOISE_MSG2_OVERHEAD == (int) MSG2_E + N2P_NOISE_TAGLEN, "message 2 layout");

/* 2^64-1 is reserved by the spec (rekey), so it is never used as a nonce. */
#define NONCE_MAX UINT64_MAX

static void make_nonce(uint8_t out[crypto_aead_chacha20poly1305_ietf_NPUBBYTES], uint64_t n) {
        memset(out, 0, 4);
        for (unsigned i = 0; i < 8; i++)
                out[4 + i] = (uint8_t) (n >> (8 * i));
}

static void hash2(uint8_t out[N2P_NOISE_HASHLEN],
                  const uint8_t *a, size_t a_len, const uint8_t *b, size_t b_len) {
        crypto_generichash_blake2b_state st;

        crypto_generichash_blake2b_init(&st, NULL, 0, N2P_NOISE_HASHLEN);
        crypto_generichash_blake2b_update(&st, a, a_len);
        crypto_generichash_blake2b_update(&st, b, b_len);
        crypto_generichash_blake2b_final(&st, out, N2P_NOISE_HASHLEN);
        sodium_memzero(&st, sizeof st);
}

/* HMAC (RFC 2104) over BLAKE2b-512 as the Noise spec defines it: keyed BLAKE2b
 * would give different results. The message is a || b. */
static void hmac(uint8_t out[N2P_NOISE_HASHLEN], const uint8_t key[N2P_NOISE_HASHLEN],
                 const uint8_t *a, size_t a_len, const uint8_t *b, size_t b_len) {
        crypto_generichash_blake2b_state st;
        uint8_t pad[BLAKE2B_BLOCKLEN], inner[N2P_NOISE_HASHLEN];

        memset(pad, 0x36, sizeof pad);
        for (size_t i = 0; i < N2P_NOISE_HASHLEN; i++)
                pad[i] ^= key[i];
        crypto_generichash_blake2b_init(&st, NULL, 0, N2P_NOISE_HASHLEN);
        crypto_generichash_blake2b_update(&st, pad, sizeof pad);
        crypto_generichash_blake2b_update(&st, a, a_len);
        crypto_generichash_blake2b_update(&st, b, b_len);
        crypto_generichash_blake2b_final(&st, inner, sizeof inner);

        memset(pad, 0x5c, sizeof pad);
        for (size_t i = 0; i < N2P_NOISE_HASHLEN; i++)
                pad[i] ^= key[i];
        crypto_generichash_blake2b_init(&st, NULL, 0, N2P_NOISE_HASHLEN);
        crypto_generichash_blake2b_update(&st, pad, sizeof pad);
        crypto_generichash_blake2b_update(&st, inner, sizeof inner);
        crypto_generichash_blake2b_final(&st, out, N2P_NOISE_HASHLEN);

        sodium_memzero(&st, sizeof st);
        sodium_memzero(pad, sizeof pad);
        sodium_memzero(inner, sizeof inner);
}

/* HKDF with two outputs (IK without PSK never needs the third). out1 may alias ck:
 * ck is consumed before out1 is written. */
static void hkdf(uint8_t out1[N2P_NOISE_HASHLEN], uint8_t out2[N2P_NOISE_HASHLEN],
                 const uint8_t ck[N2P_NOISE_HASHLEN], const uint8_t *ikm, size_t ikm_len) {
        uint8_t temp_key[N2P_NOISE_HASHLEN], o1[N2P_NOISE_HASHLEN];
        const uint8_t one = 0x01, two = 0x02;

        hmac(temp_key, ck, ikm, ikm_len, NULL, 0);
        hmac(o1, temp_key, &one, 1, NULL, 0);
        hmac(out2, temp_key, o1, sizeof o1, &two, 1);
        memcpy(out1, o1, sizeof o1);

        sodium_memzero(temp_key, sizeof temp_key);
        sodium_memzero(o1, sizeof o1);
}

static void mix_hash(n2p_handshake *hs, const uint8_t *data, size_t len) {
        hash2(hs->h, hs->h, sizeof hs->h, data, len);
}

static void mix_key(n2p_handshake *hs, const uint8_t *ikm, size_t ikm_len) {
        uint8_t temp_k[N2P_NOISE_HASHLEN];

        hkdf(hs->ck, temp_k, hs->ck, ikm, ikm_len);
        /* HASHLEN is 64: the cipher key is the first 32 bytes. */
        memcpy(hs->k, temp_k, N2P_NOISE_KEYLEN);
        hs->n = 0;
        hs->has_k = 1;
        sodium_memzero(temp_k, sizeof temp_k);
}

static int dh(uint8_t out[N2P_NOISE_DHLEN], const uint8_t priv[32], const uint8_t pub[32]) {
        /* A low-order public key gives an all-zero secret that an attacker knows
         * too; libsodium reports it, and we check again rather than rely on it. */
        if (crypto_scalarmult(out, priv, pub) != 0 || sodium_is_zero(out, N2P_NOISE_DHLEN)) {
                sodium_memzero(out, N2P_NOISE_DHLEN);
                return -EBADMSG;
        }
        return 0;
}

static int mix_dh(n2p_handshake *hs, const uint8_t priv[32], const uint8_t pub[32]) {
        uint8_t shared[N2P_NOISE_DHLEN];
        int r;

        r = dh(shared, priv, pub);
        if (r < 0)
                return r;
        mix_key(hs, shared, sizeof shared);
        sodium_memzero(shared, sizeof shared);
        return 0;
}

/* out holds len + TAGLEN once a key is set. */
static int encrypt_and_hash(n2p_handshake *hs, const uint8_t *in, size_t len, uint8_t *out,
                            size_t *ret_len) {
        uint8_t nonce[crypto_aead_chacha20poly1305_ietf_NPUBBYTES];

        if (!hs->has_k) {
                if (len > 0)
                        memmove(out, in, len);
                mix_hash(hs, out, len);
                *ret_len = len;
                return 0;
        }
        if (hs->n == NONCE_MAX)
                return -EOVERFLOW;

        make_nonce(nonce, hs->n);
        crypto_aead_chacha20poly1305_ietf_encrypt(out, NULL, in, len, hs->h, sizeof hs->h,
                                                  NULL, nonce, hs->k);
        hs->n++;
        mix_hash(hs, out, len + N2P_NOISE_TAGLEN);
        *ret_len = len + N2P_NOISE_TAGLEN;
        return 0;
}

/* in holds len bytes, len >= TAGLEN once a key is set (checked by the callers). */
static int decrypt_and_hash(n2p_handshake *hs, const uint8_t *in, size_t len, uint8_t *out,
                            size_t *ret_len) {
        uint8_t nonce[crypto_aead_chacha20poly1305_ietf_NPUBBYTES];

        if (!hs->has_k) {
                if (len > 0)
                        memmove(out, in, len);
                mix_hash(hs, in, len);
                *ret_len = len;
                return 0;
        }
        if (len < N2P_NOISE_TAGLEN)
                return -EBADMSG;
        if (hs->n == NONCE_MAX)
                return -EOVERFLOW;

        make_nonce(nonce, hs->n);
        if (crypto_aead_chacha20poly1305_ietf_decrypt(out, NULL, NULL, in, len, hs->h, sizeof hs->h,
                                                      nonce, hs->k) != 0)
                return -EBADMSG;
        hs->n++;
        mix_hash(hs, in, len);
        *ret_len = len - N2P_NOISE_TAGLEN;
        return 0;
}

static void generate_ephemeral(n2p_handshake *hs) {
        if (hs->has_e)
                return;
        randombytes_buf(hs->e_priv, sizeof hs->e_priv);
        crypto_scalarmult_base(hs->e_pub, hs->e_priv);
}

int n2p_noise_init(n2p_handshake *hs, n2p_noise_role role,
                   const uint8_t s_priv[32], const uint8_t s_pub[32],
                   const uint8_t rs[32], const uint8_t *prologue, size_t prologue_len) {
        uint8_t derived[32];

        if (!hs || !s_priv || !s_pub)
                return -EINVAL;
        if (role != N2P_NOISE_INITIATOR && role != N2P_NOISE_RESPONDER)
                return -EINVAL;
        if (role == N2P_NOISE_INITIATOR && !rs)
                return -EINVAL;
        if (!prologue && prologue_len > 0)
                return -EINVAL;
        if (sodium_init() < 0)
                return -EIO;

        /* A public key that does not belong to the private key would make every
         * handshake fail on the peer's side, far from the cause. */
        if (crypto_scalarmult_base(derived, s_priv) != 0 ||
            sodium_memcmp(derived, s_pub, sizeof derived) != 0) {
                sodium_memzero(derived, sizeof derived);
                return -EINVAL;
        }
        sodium_memzero(derived, sizeof derived);

        sodium_memzero(hs, sizeof *hs);
        hs->role = role;
        hs->state = role == N2P_NOISE_INITIATOR ? N2P_NOISE_WRITE_MSG1 : N2P_NOISE_READ_MSG1;

        /* The name is shorter than HASHLEN: h is the name zero-padded, not its hash. */
        memcpy(hs->h, PROTOCOL_NAME, sizeof(PROTOCOL_NAME) - 1);
        memcpy(hs->ck, hs->h, sizeof hs->ck);
        mix_hash(hs, prologue, prologue_len);

        memcpy(hs->s_priv, s_priv, sizeof hs->s_priv);
        memcpy(hs->s_pub, s_pub, sizeof hs->s_pub);

        /* <- s */
        if (role == N2P_NOISE_INITIATOR) {
                memcpy(hs->rs, rs, sizeof hs->rs);
                mix_hash(hs, hs->rs, sizeof hs->rs);
        } else
                mix_hash(hs, hs->s_pub, sizeof hs->s_pub);

        return 0;
}

void n2p_noise_set_ephemeral(n2p_handshake *hs, const uint8_t e_priv[32]) {
        if (!hs || !e_priv)
                return;
        memcpy(hs->e_priv, e_priv, sizeof hs->e_priv);
        crypto_scalarmult_base(hs->e_pub, hs->e_priv);
        hs->has_e = 1;
}

/* -> e, es, s, ss */
static int write_msg1(n2p_handshake *t, const uint8_t *payload, size_t payload_len, uint8_t *out) {
        size_t off = 0, n;
        int r;

        /* e */
        generate_ephemeral(t);
        memcpy(out, t->e_pub, sizeof t->e_pub);
        mix_hash(t, t->e_pub, sizeof t->e_pub);
        off += MSG1_E;

        /* es */
        r = mix_dh(t, t->e_priv, t->rs);
        if (r < 0)
                return r;

        /* s */
        r = encrypt_and_hash(t, t->s_pub, sizeof t->s_pub, out + off, &n);
        if (r < 0)
                return r;
        off += n;

        /* ss */
        r = mix_dh(t, t->s_priv, t->rs);
        if (r < 0)
                return r;

        r = encrypt_and_hash(t, payload, payload_len, out + off, &n);
        if (r < 0)
                return r;
        return (int) (off + n);
}

/* <- e, ee, se */
static int write_msg2(n2p_handshake *t, const uint8_t *payload, size_t payload_len, uint8_t *out) {
        size_t off = 0, n;
        int r;

        /* e */
        generate_ephemeral(t);
        memcpy(out, t->e_pub, sizeof t->e_pub);
        mix_hash(t, t->e_pub, sizeof t->e_pub);
        off += MSG2_E;

        /* ee */
        r = mix_dh(t, t->e_priv, t->re);
        if (r < 0)
                return r;

        /* se */
        r = mix_dh(t, t->e_priv, t->rs);
        if (r < 0)
                return r;

        r = encrypt_and_hash(t, payload, payload_len, out + off, &n);
        if (r < 0)
                return r;
        return (int) (off + n);
}

int n2p_noise_write_message(n2p_handshake *hs, const uint8_t *payload, size_t payload_len,
                            uint8_t *out, size_t out_cap, size_t *ret_len) {
        n2p_handshake t;
        size_t overhead;
        int r;

        if (!hs || !out || !ret_len || (!payload && payload_len > 0))
                return -EINVAL;
        if (hs->state == N2P_NOISE_WRITE_MSG1)
                overhead = N2P_NOISE_MSG1_OVERHEAD;
        else if (hs->state == N2P_NOISE_WRITE_MSG2)
                overhead = N2P_NOISE_MSG2_OVERHEAD;
        else
                return -EINVAL;
        if (payload_len > N2P_NOISE_MAX_MESSAGE - overhead || out_cap < payload_len + overhead)
                return -EINVAL;

        t = *hs;
        if (hs->state == N2P_NOISE_WRITE_MSG1)
                r = write_msg1(&t, payload, payload_len, out);
        else
                r = write_msg2(&t, payload, payload_len, out);
        if (r < 0) {
                sodium_memzero(out, payload_len + overhead);
                hs->state = N2P_NOISE_FAILED;
                goto out;
        }

        t.state = hs->state == N2P_NOISE_WRITE_MSG1 ? N2P_NOISE_READ_MSG2 : N2P_NOISE_SPLIT;
        *hs = t;
        *ret_len = (size_t) r;
        r = 0;
out:
        sodium_memzero(&t, sizeof t);
        return r;
}

/* -> e, es, s, ss */
static int read_msg1(n2p_handshake *t, const uint8_t *msg, size_t msg_len, uint8_t *payload) {
        size_t off = 0, n;
        int r;

        /* e */
        memcpy(t->re, msg, sizeof t->re);
        mix_hash(t, t->re, sizeof t->re);
        off += MSG1_E;

        /* es */
        r = mix_dh(t, t->s_priv, t->re);
        if (r < 0)
                return r;

        /* s */
        r = decrypt_and_hash(t, msg + off, MSG1_S, t->rs, &n);
        if (r < 0)
                return r;
        off += MSG1_S;

        /* ss */
        r = mix_dh(t, t->s_priv, t->rs);
        if (r < 0)
                return r;

        r = decrypt_and_hash(t, msg + off, msg_len - off, payload, &n);
        if (r < 0)
                return r;
        return (int) n;
}

/* <- e, ee, se */
static int read_msg2(n2p_handshake *t, const uint8_t *msg, size_t msg_len, uint8_t *payload) {
        size_t off = 0, n;
        int r;

        /* e */
        memcpy(t->re, msg, sizeof t->re);
        mix_hash(t, t->re, sizeof t->re);
        off += MSG2_E;

        /* ee */
        r = mix_dh(t, t->e_priv, t->re);
        if (r < 0)
                return r;

        /* se */
        r = mix_dh(t, t->s_priv, t->re);
        if (r < 0)
                return r;

        r = decrypt_and_hash(t, msg + off, msg_len - off, payload, &n);
        if (r < 0)
                return r;
        return (int) n;
}

int n2p_noise_read_message(n2p_handshake *hs, const uint8_t *msg, size_t msg_len,
                           uint8_t *payload, size_t payload_cap, size_t *ret_len) {
        n2p_handshake t;
        size_t overhead;
        int r;

        if (!hs || !ret_len || (!msg && msg_len > 0))
                return -EINVAL;
        if (hs->state == N2P_NOISE_READ_MSG1)
                overhead = N2P_NOISE_MSG1_OVERHEAD;
        else if (hs->state == N2P_NOISE_READ_MSG2)
                overhead = N2P_NOISE_MSG2_OVERHEAD;
        else
                return -EINVAL;

        /* Lengths come from the peer: anything that cannot be a message of this
         * step is a bad message, not a caller error. */
        if (msg_len < overhead || msg_len > N2P_NOISE_MAX_MESSAGE) {
                hs->state = N2P_NOISE_FAILED;
                return -EBADMSG;
        }
        /* Too small a buffer is the caller's mistake; the state stays usable. */
        if (payload_cap < msg_len - overhead || (!payload && msg_len > overhead))
                return -EINVAL;

        t = *hs;
        if (hs->state == N2P_NOISE_READ_MSG1)
                r = read_msg1(&t, msg, msg_len, payload);
        else
                r = read_msg2(&t, msg, msg_len, payload);
        if (r < 0) {
                hs->state = N2P_NOISE_FAILED;
                r = -EBADMSG;
                goto out;
        }

        t.state = hs->state == N2P_NOISE_READ_MSG1 ? N2P_NOISE_WRITE_MSG2 : N2P_NOISE_SPLIT;
        *hs = t;
        *ret_len = (size_t) r;
        r = 0;
out:
        sodium_memzero(&t, sizeof t);
        return r;
}

const uint8_t *n2p_noise_handshake_hash(const n2p_handshake *hs) {
        return hs ? hs->h : NULL;
}

int n2p_noise_split(n2p_handshake *hs, n2p_cipher *ret_send, n2p_cipher *ret_recv) {
        uint8_t k1[N2P_NOISE_HASHLEN], k2[N2P_NOISE_HASHLEN];

        if (!hs || !ret_send || !ret_recv || hs->state != N2P_NOISE_SPLIT)
                return -EINVAL;

        hkdf(k1, k2, hs->ck, NULL, 0);
        /* The initiator sends with the first key. */
        memcpy(ret_send->k, hs->role == N2P_NOISE_INITIATOR ? k1 : k2, N2P_NOISE_KEYLEN);
        memcpy(ret_recv->k, hs->role == N2P_NOISE_INITIATOR ? k2 : k1, N2P_NOISE_KEYLEN);
        ret_send->n = ret_recv->n = 0;

        sodium_memzero(k1, sizeof k1);
        sodium_memzero(k2, sizeof k2);
        n2p_noise_wipe(hs);
        return 0;
}

void n2p_noise_wipe(n2p_handshake *hs) {
        if (!hs)
                return;
        sodium_memzero(hs, sizeof *hs);
        /* All-zero would read as a fresh initiator; make reuse fail loudly instead. */
        hs->state = N2P_NOISE_FAILED;
}

int n2p_cipher_encrypt_at(const n2p_cipher *c, uint64_t nonce, const uint8_t *ad, size_t ad_len,
                          const uint8_t *in, size_t len, uint8_t *out) {
        uint8_t npub[crypto_aead_chacha20poly1305_ietf_NPUBBYTES];

        if (!c || !out || (!in && len > 0) || (!ad && ad_len > 0))
                return -EINVAL;
        if (len > crypto_aead_chacha20poly1305_ietf_MESSAGEBYTES_MAX)
                return -EINVAL;
        if (nonce == NONCE_MAX)
                return -EOVERFLOW;

        make_nonce(npub, nonce);
        crypto_aead_chacha20poly1305_ietf_encrypt(out, NULL, in, len, ad, ad_len, NULL, npub, c->k);
        return 0;
}

int n2p_cipher_decrypt_at(const n2p_cipher *c, uint64_t nonce, const uint8_t *ad, size_t ad_len,
                          const uint8_t *in, size_t len, uint8_t *out) {
        uint8_t npub[crypto_aead_chacha20poly1305_ietf_NPUBBYTES];

        if (!c || !in || (!out && len > N2P_NOISE_TAGLEN) || (!ad && ad_len > 0))
                return -EINVAL;
        /* Both come from the peer's packet: reject, never trust. */
        if (len < N2P_NOISE_TAGLEN || nonce == NONCE_MAX)
                return -EBADMSG;

        make_nonce(npub, nonce);
        if (crypto_aead_chacha20poly1305_ietf_decrypt(out, NULL, NULL, in, len, ad, ad_len,
                                                      npub, c->k) != 0)
                return -EBADMSG;
        return 0;
}

int n2p_cipher_encrypt(n2p_cipher *c, const uint8_t *ad, size_t ad_len,
                       const uint8_t *in, size_t len, uint8_t *out) {
        int r;

        if (!c)
                return -EINVAL;
        r = n2p_cipher_encrypt_at(c, c->n, ad, ad_len, in, len, out);
        if (r < 0)
                return r;
        c->n++;
        return 0;
}

int n2p_cipher_decrypt(n2p_cipher *c, const uint8_t *ad, size_t ad_len,
                       const uint8_t *in, size_t len, uint8_t *out) {
        int r;

        if (!c)
                return -EINVAL;
        if (c->n == NONCE_MAX)
                return -EOVERFLOW;
        r = n2p_cipher_decrypt_at(c, c->n, ad, ad_len, in, len, out);
        if (r < 0)
                return r;
        c->n++;
        return 0;
}

void n2p_cipher_wipe(n2p_cipher *c) {
        if (!c)
                return;
        sodium_memzero(c, sizeof *c);
}

void n2p_tai64n_now(uint8_t out[12]) {
        static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
        static uint64_t last_sec;
        static uint32_t last_nsec;
        struct timespec ts;
        uint64_t sec;
        uint32_t nsec;

        clock_gettime(CLOCK_REALTIME, &ts);
        /* 2^62 + seconds, as WireGuard does: the TAI offset does not matter to a
         * receiver that only compares values from the same sender. */
        sec = (UINT64_C(1) << 62) + (uint64_t) ts.tv_sec;
        nsec = (uint32_t) ts.tv_nsec;

        /* The responder rejects a timestamp that is not newer than the last one
         * seen, so two handshakes within one clock tick (or a clock step back)
         * must still produce increasing values. */
        pthread_mutex_lock(&lock);
        if (sec < last_sec || (sec == last_sec && nsec <= last_nsec)) {
                sec = last_sec;
                nsec = last_nsec + 1;
                if (nsec >= 1000000000u) {
                        nsec = 0;
                        sec++;
                }
        }
        last_sec = sec;
        last_nsec = nsec;
        pthread_mutex_unlock(&lock);

        n2p_put_be64(out, sec);
        n2p_put_be32(out + 8, nsec);
}
