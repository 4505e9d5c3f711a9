/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <fcntl.h>
#include <glib.h>
#include <glib/gstdio.h>
#include <sodium.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "key.h"

/* Seed 00 01 .. 1f; public keys checked once against an independent Ed25519
 * implementation (python-cryptography), so a libsodium misuse would show. */
static const char kat_ed_public[] = "03a107bff3ce10be1d70dd18e74bc09967e4d6309ba50d5f1ddc8664125531b8";
static const char kat_x_public[] = "4701d08488451f545a409fb58ae3e58581ca40ac3f7f114698cd71deac73ca01";

static char *tmpdir;

static void kat_seed(uint8_t seed[N2P_SEED_SIZE]) {
        for (unsigned i = 0; i < N2P_SEED_SIZE; i++)
                seed[i] = (uint8_t) i;
}

static char *hex(const uint8_t *p, size_t n) {
        char *s = g_malloc(n * 2 + 1);
        sodium_bin2hex(s, n * 2 + 1, p, n);
        return s;
}

static char *tmp_path(const char *name) {
        return g_build_filename(tmpdir, name, NULL);
}

static void write_file(const char *path, const void *data, size_t n, mode_t mode) {
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
        g_assert_cmpint(fd, >=, 0);
        g_assert_cmpint(write(fd, data, n), ==, (ssize_t) n);
        g_assert_cmpint(fchmod(fd, mode), ==, 0);
        close(fd);
}

static void rm_rf(const char *path) {
        struct stat st;

        if (lstat(path, &st) < 0)
                return;
        if (S_ISDIR(st.st_mode)) {
                GDir *d = g_dir_open(path, 0, NULL);
                const char *name;
                while (d && (name = g_dir_read_name(d))) {
                        g_autofree char *p = g_build_filename(path, name, NULL);
                        rm_rf(p);
                }
                if (d)
                        g_dir_close(d);
                rmdir(path);
        } else
                unlink(path);
}

static void test_kat(void) {
        uint8_t seed[N2P_SEED_SIZE];
        n2p_key k;

        kat_seed(seed);
        n2p_key_from_seed(seed, &k);

        g_autofree char *ed = hex(k.ed_public, sizeof k.ed_public);
        g_autofree char *x = hex(k.x_public, sizeof k.x_public);
        g_assert_cmpstr(ed, ==, kat_ed_public);
        g_assert_cmpstr(x, ==, kat_x_public);
        /* libsodium's secret key layout is seed || public. */
        g_assert_cmpmem(k.ed_secret, 32, seed, 32);
        g_assert_cmpmem(k.ed_secret + 32, 32, k.ed_public, 32);
        n2p_key_wipe(&k);
}

static void test_x_pair_consistent(void) {
        uint8_t from_secret[32];
        n2p_key k;

        n2p_key_generate(&k);
        g_assert_cmpint(crypto_scalarmult_base(from_secret, k.x_secret), ==, 0);
        g_assert_cmpmem(from_secret, 32, k.x_public, 32);
        n2p_key_wipe(&k);
}

static void test_ed_to_x(void) {
        uint8_t x[32];
        n2p_key k;

        n2p_key_generate(&k);
        memset(x, 0, sizeof x);
        g_assert_cmpint(n2p_key_ed_to_x(k.ed_public, x), ==, 0);
        g_assert_cmpmem(x, 32, k.x_public, 32);
        n2p_key_wipe(&k);
}

static void test_ed_to_x_rejects_small_order(void) {
        /* The encoding of the identity point: order 1, useless for DH. */
        uint8_t identity[32] = { 1 }, x[32];

        memset(x, 0x5a, sizeof x);
        g_assert_cmpint(n2p_key_ed_to_x(identity, x), ==, -EINVAL);
        g_assert_cmpint(x[0], ==, 0x5a);
}

static void test_generate_differs(void) {
        n2p_key a, b;

        n2p_key_generate(&a);
        n2p_key_generate(&b);
        g_assert_cmpint(memcmp(a.ed_public, b.ed_public, 32), !=, 0);
        g_assert_cmpint(memcmp(a.ed_secret, b.ed_secret, 32), !=, 0);
        n2p_key_wipe(&a);
        n2p_key_wipe(&b);
}

static void test_save_load_roundtrip(void) {
        g_autofree char *path = tmp_path("roundtrip.key");
        n2p_key a, b;

        n2p_key_generate(&a);
        g_assert_cmpint(n2p_key_save(path, &a), ==, 0);
        g_assert_cmpint(n2p_key_load(path, &b), ==, 0);
        g_assert_cmpmem(&a, sizeof a, &b, sizeof b);
        n2p_key_wipe(&a);
        n2p_key_wipe(&b);
}

static void test_file_is_raw_seed(void) {
        g_autofree char *path = tmp_path("seed.key");
        g_autofree char *contents = NULL;
        uint8_t seed[N2P_SEED_SIZE];
        gsize n = 0;
        n2p_key k;

        kat_seed(seed);
        n2p_key_from_seed(seed, &k);
        g_assert_cmpint(n2p_key_save(path, &k), ==, 0);
        g_assert_true(g_file_get_contents(path, &contents, &n, NULL));
        g_assert_cmpmem(contents, n, seed, sizeof seed);
        n2p_key_wipe(&k);
}

static void test_save_mode_0600(void) {
        g_autofree char *path = tmp_path("mode.key");
        struct stat st;
        n2p_key k;

        n2p_key_generate(&k);
        g_assert_cmpint(n2p_key_save(path, &k), ==, 0);
        g_assert_cmpint(stat(path, &st), ==, 0);
        g_assert_cmpint(st.st_mode & 07777, ==, 0600);
        n2p_key_wipe(&k);
}

static void test_save_creates_parents_0700(void) {
        g_autofree char *top = tmp_path("parents");
        g_autofree char *mid = g_build_filename(top, "n2p", NULL);
        g_autofree char *path = g_build_filename(mid, "secret.key", NULL);
        struct stat st;
        n2p_key k;

        n2p_key_generate(&k);
        g_assert_cmpint(n2p_key_save(path, &k), ==, 0);
        g_assert_cmpint(stat(top, &st), ==, 0);
        g_assert_cmpint(st.st_mode & 07777, ==, 0700);
        g_assert_cmpint(stat(mid, &st), ==, 0);
        g_assert_cmpint(st.st_mode & 07777, ==, 0700);
        n2p_key_wipe(&k);
}

static void test_save_refuses_overwrite(void) {
        g_autofree char *path = tmp_path("exists.key");
        n2p_key a, b, loaded;

        n2p_key_generate(&a);
        n2p_key_generate(&b);
        g_assert_cmpint(n2p_key_save(path, &a), ==, 0);
        g_assert_cmpint(n2p_key_save(path, &b), ==, -EEXIST);
        g_assert_cmpint(n2p_key_load(path, &loaded), ==, 0);
        g_assert_cmpmem(loaded.ed_public, 32, a.ed_public, 32);
        n2p_key_wipe(&a);
        n2p_key_wipe(&b);
        n2p_key_wipe(&loaded);
}

static void check_bad_size(size_t n) {
        g_autofree char *name = g_strdup_printf("size-%zu.key", n);
        g_autofree char *path = tmp_path(name);
        uint8_t data[64] = { 0 };
        n2p_key k;

        write_file(path, data, n, 0600);
        memset(&k, 0xaa, sizeof k);
        g_assert_cmpint(n2p_key_load(path, &k), ==, -EBADMSG);
        /* ret untouched on failure */
        g_assert_cmpint(k.ed_public[0], ==, 0xaa);
}

static void test_load_size_31(void) {
        check_bad_size(31);
}

static void test_load_size_33(void) {
        check_bad_size(33);
}

static void test_load_size_0(void) {
        check_bad_size(0);
}

static void check_bad_mode(mode_t mode) {
        g_autofree char *name = g_strdup_printf("mode-%o.key", (unsigned) mode);
        g_autofree char *path = tmp_path(name);
        uint8_t seed[N2P_SEED_SIZE];
        n2p_key k;

        kat_seed(seed);
        write_file(path, seed, sizeof seed, mode);
        g_assert_cmpint(n2p_key_load(path, &k), ==, -EPERM);
}

static void test_load_group_readable(void) {
        check_bad_mode(0640);
}

static void test_load_world_readable(void) {
        check_bad_mode(0604);
}

static void test_load_group_writable(void) {
        check_bad_mode(0620);
}

/* systemd's LoadCredential= directory is the service's alone, whatever the mode
 * bits show; a file elsewhere with the same mode is still refused. */
static void test_load_credentials_directory(void) {
        g_autofree char *creds = tmp_path("credentials");
        g_autofree char *inside = g_build_filename(creds, "secret.key", NULL);
        g_autofree char *outside = tmp_path("not-a-credential.key");
        uint8_t seed[N2P_SEED_SIZE];
        n2p_key k;

        kat_seed(seed);
        g_assert_cmpint(g_mkdir_with_parents(creds, 0700), ==, 0);
        write_file(inside, seed, sizeof seed, 0440);
        write_file(outside, seed, sizeof seed, 0440);
        g_setenv("CREDENTIALS_DIRECTORY", creds, true);
        g_assert_cmpint(n2p_key_load(inside, &k), ==, 0);
        n2p_key_wipe(&k);
        g_assert_cmpint(n2p_key_load(outside, &k), ==, -EPERM);
        g_unsetenv("CREDENTIALS_DIRECTORY");
        g_assert_cmpint(n2p_key_load(inside, &k), ==, -EPERM);
}

static void test_load_stricter_mode_ok(void) {
        g_autofree char *path = tmp_path("mode-400.key");
        uint8_t seed[N2P_SEED_SIZE];
        n2p_key k;

        kat_seed(seed);
        write_file(path, seed, sizeof seed, 0400);
        g_assert_cmpint(n2p_key_load(path, &k), ==, 0);
        g_autofree char *ed = hex(k.ed_public, 32);
        g_assert_cmpstr(ed, ==, kat_ed_public);
        n2p_key_wipe(&k);
}

static void test_load_missing(void) {
        g_autofree char *path = tmp_path("does-not-exist.key");
        n2p_key k;

        g_assert_cmpint(n2p_key_load(path, &k), ==, -ENOENT);
}

static void test_load_directory(void) {
        n2p_key k;

        g_assert_cmpint(n2p_key_load(tmpdir, &k), ==, -EINVAL);
}

static void test_load_through_symlink(void) {
        g_autofree char *target = tmp_path("link-target.key");
        g_autofree char *link = tmp_path("link.key");
        uint8_t seed[N2P_SEED_SIZE];
        n2p_key k;

        kat_seed(seed);
        write_file(target, seed, sizeof seed, 0600);
        g_assert_cmpint(symlink(target, link), ==, 0);
        g_assert_cmpint(n2p_key_load(link, &k), ==, 0);
        g_autofree char *ed = hex(k.ed_public, 32);
        g_assert_cmpstr(ed, ==, kat_ed_public);
        n2p_key_wipe(&k);
}

static void test_load_or_create(void) {
        g_autofree char *path = tmp_path("loc/sub/secret.key");
        bool created = false;
        n2p_key a, b;

        g_assert_cmpint(n2p_key_load_or_create(path, &a, &created), ==, 0);
        g_assert_true(created);
        g_assert_true(g_file_test(path, G_FILE_TEST_IS_REGULAR));

        g_assert_cmpint(n2p_key_load_or_create(path, &b, &created), ==, 0);
        g_assert_false(created);
        g_assert_cmpmem(&a, sizeof a, &b, sizeof b);
        n2p_key_wipe(&a);
        n2p_key_wipe(&b);
}

static void test_load_or_create_keeps_errors(void) {
        g_autofree char *path = tmp_path("loc-bad.key");
        uint8_t data[5] = { 0 };
        bool created = true;
        n2p_key k;

        /* A damaged key is an error, never silently replaced by a new identity. */
        write_file(path, data, sizeof data, 0600);
        g_assert_cmpint(n2p_key_load_or_create(path, &k, &created), ==, -EBADMSG);
        g_assert_true(created);
}

static void restore_env(const char *name, char *saved) {
        if (saved)
                g_setenv(name, saved, TRUE);
        else
                g_unsetenv(name);
        g_free(saved);
}

static void test_default_path_state_directory(void) {
        char *s = g_strdup(g_getenv("STATE_DIRECTORY"));

        g_setenv("STATE_DIRECTORY", "/var/lib/n2p", TRUE);
        g_autofree char *p = n2p_key_default_path();
        g_assert_cmpstr(p, ==, "/var/lib/n2p/secret.key");

        g_setenv("STATE_DIRECTORY", "/var/lib/n2p:/var/lib/other", TRUE);
        g_autofree char *q = n2p_key_default_path();
        g_assert_cmpstr(q, ==, "/var/lib/n2p/secret.key");
        restore_env("STATE_DIRECTORY", s);
}

static void test_default_path_xdg(void) {
        char *s = g_strdup(g_getenv("STATE_DIRECTORY"));
        char *x = g_strdup(g_getenv("XDG_STATE_HOME"));

        g_unsetenv("STATE_DIRECTORY");
        g_setenv("XDG_STATE_HOME", "/home/alice/.state", TRUE);
        g_autofree char *p = n2p_key_default_path();
        g_assert_cmpstr(p, ==, "/home/alice/.state/n2p/secret.key");
        restore_env("STATE_DIRECTORY", s);
        restore_env("XDG_STATE_HOME", x);
}

static void test_default_path_home(void) {
        char *s = g_strdup(g_getenv("STATE_DIRECTORY"));
        char *x = g_strdup(g_getenv("XDG_STATE_HOME"));
        char *h = g_strdup(g_getenv("HOME"));

        g_unsetenv("STATE_DIRECTORY");
        g_setenv("HOME", "/home/bob", TRUE);
        g_unsetenv("XDG_STATE_HOME");
        g_autofree char *p = n2p_key_default_path();
        g_assert_cmpstr(p, ==, "/home/bob/.local/state/n2p/secret.key");

        /* The XDG spec says a relative XDG_STATE_HOME is to be ignored. */
        g_setenv("XDG_STATE_HOME", "relative/state", TRUE);
        g_autofree char *q = n2p_key_default_path();
        g_assert_cmpstr(q, ==, "/home/bob/.local/state/n2p/secret.key");
        restore_env("STATE_DIRECTORY", s);
        restore_env("XDG_STATE_HOME", x);
        restore_env("HOME", h);
}

static void test_wipe(void) {
        n2p_key k, zero;

        n2p_key_generate(&k);
        memset(&zero, 0, sizeof zero);
        n2p_key_wipe(&k);
        g_assert_cmpmem(&k, sizeof k, &zero, sizeof zero);
        n2p_key_wipe(NULL);
}

int main(int argc, char **argv) {
        int r;

        g_test_init(&argc, &argv, NULL);
        g_assert_cmpint(sodium_init(), >=, 0);
        umask(022);
        tmpdir = g_dir_make_tmp("n2p-test-key-XXXXXX", NULL);
        g_assert_nonnull(tmpdir);

        g_test_add_func("/key/kat", test_kat);
        g_test_add_func("/key/x-pair-consistent", test_x_pair_consistent);
        g_test_add_func("/key/ed-to-x", test_ed_to_x);
        g_test_add_func("/key/ed-to-x-rejects-small-order", test_ed_to_x_rejects_small_order);
        g_test_add_func("/key/generate-differs", test_generate_differs);
        g_test_add_func("/key/save-load-roundtrip", test_save_load_roundtrip);
        g_test_add_func("/key/file-is-raw-seed", test_file_is_raw_seed);
        g_test_add_func("/key/save-mode-0600", test_save_mode_0600);
        g_test_add_func("/key/save-creates-parents-0700", test_save_creates_parents_0700);
        g_test_add_func("/key/save-refuses-overwrite", test_save_refuses_overwrite);
        g_test_add_func("/key/load-size-31", test_load_size_31);
        g_test_add_func("/key/load-size-33", test_load_size_33);
        g_test_add_func("/key/load-size-0", test_load_size_0);
        g_test_add_func("/key/load-group-readable", test_load_group_readable);
        g_test_add_func("/key/load-world-readable", test_load_world_readable);
        g_test_add_func("/key/load-group-writable", test_load_group_writable);
        g_test_add_func("/key/load-stricter-mode-ok", test_load_stricter_mode_ok);
        g_test_add_func("/key/load-credentials-directory", test_load_credentials_directory);
        g_test_add_func("/key/load-missing", test_load_missing);
        g_test_add_func("/key/load-directory", test_load_directory);
        g_test_add_func("/key/load-through-symlink", test_load_through_symlink);
        g_test_add_func("/key/load-or-create", test_load_or_create);
        g_test_add_func("/key/load-or-create-keeps-errors", test_load_or_create_keeps_errors);
        g_test_add_func("/key/default-path-state-directory", test_default_path_state_directory);
        g_test_add_func("/key/default-path-xdg", test_default_path_xdg);
        g_test_add_func("/key/default-path-home", test_default_path_home);
        g_test_add_func("/key/wipe", test_wipe);

        r = g_test_run();
        rm_rf(tmpdir);
        g_free(tmpdir);
        return r;
}
