/* SPDX-License-Identifier: MIT */
/* The ICE description decoder on arbitrary input. A description that decodes
 * must encode back to exactly the input (the format is canonical) and decode
 * again to the same thing. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ice.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        static uint8_t buf[N2P_ICE_MAX_DESCRIPTION];
        n2p_ice_desc d, again;
        size_t len = 0;

        memset(&d, 0, sizeof d);
        if (n2p_ice_desc_decode(data, size, &d) < 0)
                return 0;
        if (size > sizeof buf)
                abort();        /* larger than the largest description possible */
        if (n2p_ice_desc_encode(&d, buf, sizeof buf, &len) < 0)
                abort();
        if (len != size || memcmp(buf, data, size) != 0)
                abort();
        memset(&again, 0, sizeof again);
        if (n2p_ice_desc_decode(buf, len, &again) < 0)
                abort();
        if (memcmp(&d, &again, sizeof d) != 0)
                abort();
        return 0;
}
