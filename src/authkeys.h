/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * --authorized-keys FILE: the client keys a node accepts. One key per line, as
 * the client's address (short or long: only its key counts; `n2pctl key` prints
 * it), optionally followed by white space and a comment; `#` starts a comment
 * line; blank lines are ignored. Any malformed line makes the whole file invalid,
 * so a typo can never silently drop or admit a key. Pure: fuzzed.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum {
        N2P_AUTHKEYS_MAX = 4096,          /* keys per file */
        N2P_AUTHKEYS_MAX_FILE = 1 << 20,  /* bytes */
};

typedef struct n2p_authkeys n2p_authkeys;

/* -EINVAL with "line N: reason" in err; -E2BIG past the limits. */
int n2p_authkeys_parse(const char *text, size_t len, n2p_authkeys **ret, char *err, size_t errlen);
bool n2p_authkeys_contains(const n2p_authkeys *k, const uint8_t ed_public[32]);
size_t n2p_authkeys_count(const n2p_authkeys *k);
n2p_authkeys *n2p_authkeys_free(n2p_authkeys *k);
