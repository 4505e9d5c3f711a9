/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * A node's identity: an Ed25519 key pair from a 32-byte seed (the same key file
 * format as upstream n2p), and the X25519 pair derived from it for Noise.
 * Library code: returns negative errno, never logs.
 */

#include <stdbool.h>
#include <stdint.h>

enum { N2P_SEED_SIZE = 32, N2P_PUBLIC_SIZE = 32 };

typedef struct n2p_key {
        uint8_t ed_public[32];
        uint8_t ed_secret[64];  /* secret: seed || public, as libsodium keeps it */
        uint8_t x_public[32];
        uint8_t x_secret[32];   /* secret */
} n2p_key;

/* Derives every key from a 32-byte Ed25519 seed. */
void n2p_key_from_seed(const uint8_t seed[N2P_SEED_SIZE], n2p_key *ret);

/* A fresh random identity (for --one-time-key and keygen). */
void n2p_key_generate(n2p_key *ret);

/* Writes the seed to a new file with mode 0600 (O_EXCL: never overwrites),
 * creating missing parent directories with mode 0700. */
int n2p_key_save(const char *path, const n2p_key *key);

/*
 * Reads a key file. Errors:
 *   -ENOENT  missing
 *   -EPERM   readable or writable by group or others (must be 0600 or stricter)
 *   -EBADMSG not exactly 32 bytes
 *   other    from open/read/fstat
 */
int n2p_key_load(const char *path, n2p_key *ret);

/* n2p_key_load(), and on -ENOENT a new key saved there. *ret_created tells which. */
int n2p_key_load_or_create(const char *path, n2p_key *ret, bool *ret_created);

/* Default key path: $STATE_DIRECTORY/secret.key when set (systemd), else
 * $XDG_STATE_HOME/n2p/secret.key, else ~/.local/state/n2p/secret.key.
 * Returns a g_malloc'd string or NULL (-ENOENT: no home). */
char *n2p_key_default_path(void);

/* Ed25519 public key -> X25519 public key; -EINVAL for a key not on the curve. */
int n2p_key_ed_to_x(const uint8_t ed_public[32], uint8_t ret_x_public[32]);

/* Wipes the secrets (sodium_memzero); accepts NULL. */
void n2p_key_wipe(n2p_key *key);
