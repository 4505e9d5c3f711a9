/* SPDX-License-Identifier: MIT */
#pragma once

#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Close an fd when it goes out of scope: `_cleanup_close_ int fd = -1;` */
static inline void n2p_closep(int *fd) {
        if (*fd >= 0) {
                int saved = errno;
                close(*fd);
                errno = saved;
        }
}
#define _cleanup_close_ __attribute__((cleanup(n2p_closep)))

/* Move an fd out of a _cleanup_close_ variable. */
static inline int n2p_take_fd(int *fd) {
        int r = *fd;
        *fd = -1;
        return r;
}

/* A secret file is refused when group or others may read it, except one that
 * systemd handed over with LoadCredential=: $CREDENTIALS_DIRECTORY is readable by
 * the service alone whatever the mode bits say (systemd may grant access with an
 * ACL, which shows in the group bits). */
static inline int n2p_secret_mode_ok(const char *path, unsigned mode) {
        const char *creds = getenv("CREDENTIALS_DIRECTORY");
        size_t n = creds ? strlen(creds) : 0;
        if ((mode & 077) == 0)
                return 1;
        return n > 0 && strncmp(path, creds, n) == 0 && path[n] == '/';
}

#define N2P_ELEMENTSOF(x) (sizeof(x) / sizeof((x)[0]))

static inline void n2p_put_be16(uint8_t *p, uint16_t v) {
        p[0] = (uint8_t) (v >> 8);
        p[1] = (uint8_t) v;
}
static inline void n2p_put_be32(uint8_t *p, uint32_t v) {
        p[0] = (uint8_t) (v >> 24);
        p[1] = (uint8_t) (v >> 16);
        p[2] = (uint8_t) (v >> 8);
        p[3] = (uint8_t) v;
}
static inline uint16_t n2p_get_be16(const uint8_t *p) {
        return (uint16_t) ((p[0] << 8) | p[1]);
}
static inline uint32_t n2p_get_be32(const uint8_t *p) {
        return ((uint32_t) p[0] << 24) | ((uint32_t) p[1] << 16) | ((uint32_t) p[2] << 8) | p[3];
}
static inline void n2p_put_be64(uint8_t *p, uint64_t v) {
        n2p_put_be32(p, (uint32_t) (v >> 32));
        n2p_put_be32(p + 4, (uint32_t) v);
}
static inline uint64_t n2p_get_be64(const uint8_t *p) {
        return ((uint64_t) n2p_get_be32(p) << 32) | n2p_get_be32(p + 4);
}
