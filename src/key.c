/* SPDX-License-Identifier: MIT */
#include "key.h"

#include <errno.h>
#include <fcntl.h>
#include <glib.h>
#include <pwd.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util.h"

void n2p_key_from_seed(const uint8_t seed[N2P_SEED_SIZE], n2p_key *ret) {
        n2p_key k;

        crypto_sign_seed_keypair(k.ed_public, k.ed_secret, seed);
        /* A key made from a seed is always on the curve: failure here is a broken libsodium. */
        if (crypto_sign_ed25519_pk_to_curve25519(k.x_public, k.ed_public) != 0 ||
            crypto_sign_ed25519_sk_to_curve25519(k.x_secret, k.ed_secret) != 0)
                abort();

        *ret = k;
        sodium_memzero(&k, sizeof k);
}

void n2p_key_generate(n2p_key *ret) {
        uint8_t seed[N2P_SEED_SIZE];

        randombytes_buf(seed, sizeof seed);
        n2p_key_from_seed(seed, ret);
        sodium_memzero(seed, sizeof seed);
}

static int write_all(int fd, const uint8_t *p, size_t n) {
        while (n > 0) {
                ssize_t k = write(fd, p, n);
                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                if (k == 0)
                        return -EIO;
                p += k;
                n -= (size_t) k;
        }
        return 0;
}

int n2p_key_save(const char *path, const n2p_key *key) {
        _cleanup_close_ int fd = -1;
        g_autofree char *dir = NULL;
        int r;

        if (!path || !*path || !key)
                return -EINVAL;

        dir = g_path_get_dirname(path);
        if (g_mkdir_with_parents(dir, 0700) < 0)
                return -errno;

        fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOCTTY, 0600);
        if (fd < 0)
                return -errno;

        /* The seed is the first half of libsodium's secret key. */
        r = write_all(fd, key->ed_secret, N2P_SEED_SIZE);
        if (r >= 0 && fsync(fd) < 0)
                r = -errno;
        if (r < 0) {
                /* Never leave a half-written key behind: the next load would refuse it. */
                (void) unlink(path);
                return r;
        }

        /* Make the new directory entry durable too; a failure here loses nothing yet. */
        _cleanup_close_ int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd >= 0)
                (void) fsync(dfd);

        return 0;
}

int n2p_key_load(const char *path, n2p_key *ret) {
        _cleanup_close_ int fd = -1;
        uint8_t buf[N2P_SEED_SIZE + 1];
        size_t got = 0;
        struct stat st;
        int r = 0;

        if (!path || !*path || !ret)
                return -EINVAL;

        /* Symlinks are allowed (e.g. into a secrets store); what counts is the file
         * finally opened, hence fstat. O_NONBLOCK so a FIFO cannot hang us. */
        fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
        if (fd < 0)
                return -errno;
        if (fstat(fd, &st) < 0)
                return -errno;
        if (!S_ISREG(st.st_mode))
                return -EINVAL;
        if (!n2p_secret_mode_ok(path, st.st_mode))
                return -EPERM;
        if (st.st_size != N2P_SEED_SIZE)
                return -EBADMSG;

        /* Read one byte more than needed so a file that grew since fstat is noticed. */
        while (got < sizeof buf) {
                ssize_t k = read(fd, buf + got, sizeof buf - got);
                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        r = -errno;
                        goto out;
                }
                if (k == 0)
                        break;
                got += (size_t) k;
        }
        if (got != N2P_SEED_SIZE) {
                r = -EBADMSG;
                goto out;
        }

        n2p_key_from_seed(buf, ret);
out:
        sodium_memzero(buf, sizeof buf);
        return r;
}

int n2p_key_load_or_create(const char *path, n2p_key *ret, bool *ret_created) {
        n2p_key k;
        int r;

        if (!ret)
                return -EINVAL;

        r = n2p_key_load(path, ret);
        if (r != -ENOENT) {
                if (r >= 0 && ret_created)
                        *ret_created = false;
                return r;
        }

        n2p_key_generate(&k);
        r = n2p_key_save(path, &k);
        if (r == -EEXIST) {
                /* Another process created it between our load and save: use theirs. */
                n2p_key_wipe(&k);
                r = n2p_key_load(path, ret);
                if (r >= 0 && ret_created)
                        *ret_created = false;
                return r;
        }
        if (r < 0) {
                n2p_key_wipe(&k);
                return r;
        }

        *ret = k;
        n2p_key_wipe(&k);
        if (ret_created)
                *ret_created = true;
        return 0;
}

static const char *getenv_nonempty(const char *name) {
        const char *v = getenv(name);
        return v && *v ? v : NULL;
}

static char *home_dir(void) {
        const char *h = getenv_nonempty("HOME");
        if (h)
                return g_strdup(h);

        long sz = sysconf(_SC_GETPW_R_SIZE_MAX);
        if (sz <= 0)
                sz = 16384;
        g_autofree char *buf = g_malloc((size_t) sz);
        struct passwd pw, *res = NULL;
        if (getpwuid_r(getuid(), &pw, buf, (size_t) sz, &res) != 0 || !res || !res->pw_dir ||
            res->pw_dir[0] != '/')
                return NULL;
        return g_strdup(res->pw_dir);
}

char *n2p_key_default_path(void) {
        const char *v;

        /* systemd may pass several colon-separated directories; ours is the first. */
        v = getenv_nonempty("STATE_DIRECTORY");
        if (v) {
                g_autofree char *first = g_strndup(v, strcspn(v, ":"));
                if (*first)
                        return g_build_filename(first, "secret.key", NULL);
        }

        /* The XDG spec says relative values are invalid and must be ignored. */
        v = getenv_nonempty("XDG_STATE_HOME");
        if (v && v[0] == '/')
                return g_build_filename(v, "n2p", "secret.key", NULL);

        g_autofree char *home = home_dir();
        if (!home) {
                errno = ENOENT;
                return NULL;
        }
        return g_build_filename(home, ".local", "state", "n2p", "secret.key", NULL);
}

int n2p_key_ed_to_x(const uint8_t ed_public[32], uint8_t ret_x_public[32]) {
        uint8_t x[32];

        if (crypto_sign_ed25519_pk_to_curve25519(x, ed_public) != 0)
                return -EINVAL;
        memcpy(ret_x_public, x, sizeof x);
        return 0;
}

void n2p_key_wipe(n2p_key *key) {
        if (key)
                sodium_memzero(key, sizeof *key);
}
