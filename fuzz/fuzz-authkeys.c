/* SPDX-License-Identifier: MIT */
/* The authorized-keys file parser on arbitrary bytes. */
#include <stdlib.h>

#include "authkeys.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        n2p_authkeys *k = NULL;
        char err[160];
        uint8_t zero[32] = {};
        if (n2p_authkeys_parse((const char *) data, size, &k, err, sizeof err) == 0) {
                if (!k)
                        abort();
                (void) n2p_authkeys_contains(k, zero);
                n2p_authkeys_free(k);
        } else if (k)
                abort();
        return 0;
}
