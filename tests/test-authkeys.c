/* SPDX-License-Identifier: MIT */
/* The authorized-keys file: what it admits, and that any malformed line rejects
 * the whole file with the line number. */
#include <arpa/inet.h>
#include <errno.h>
#include <glib.h>
#include <sodium.h>
#include <string.h>

#include "addr.h"
#include "authkeys.h"
#include "key.h"

static n2p_key k1, k2, k3;
static char *s1, *s2;

static int parse(const char *text, n2p_authkeys **ret, char *err) {
        return n2p_authkeys_parse(text, strlen(text), ret, err, 160);
}

static void test_admits_listed(void) {
        n2p_addr a = { .is_long = true, .n_endpoints = 1 };
        n2p_authkeys *k = NULL;
        char err[160];
        struct sockaddr_in *in = (struct sockaddr_in *) &a.endpoints[0];
        in->sin_family = AF_INET;
        in->sin_port = htons(7787);
        memcpy(a.key, k2.ed_public, 32);
        g_autofree char *l2 = n2p_addr_format_long(&a);
        g_autofree char *text = g_strdup_printf("# friends\n\n%s alice's laptop\n   %s\t# bob, long address\r\n", s1, l2);

        g_assert_cmpint(parse(text, &k, err), ==, 0);
        g_assert_cmpuint(n2p_authkeys_count(k), ==, 2);
        g_assert_true(n2p_authkeys_contains(k, k1.ed_public));
        g_assert_true(n2p_authkeys_contains(k, k2.ed_public));
        g_assert_false(n2p_authkeys_contains(k, k3.ed_public));
        n2p_authkeys_free(k);
}

static void test_empty_admits_nobody(void) {
        n2p_authkeys *k = NULL;
        char err[160];
        g_assert_cmpint(parse("# nobody yet\n", &k, err), ==, 0);
        g_assert_cmpuint(n2p_authkeys_count(k), ==, 0);
        g_assert_false(n2p_authkeys_contains(k, k1.ed_public));
        n2p_authkeys_free(k);
}

static void test_malformed_rejects_file(void) {
        n2p_authkeys *k = NULL;
        char err[160];
        g_autofree char *typo = g_strdup(s2);
        typo[20] = typo[20] == 'a' ? 'b' : 'a';
        g_autofree char *text = g_strdup_printf("%s\n%s\n", s1, typo);

        g_assert_cmpint(parse(text, &k, err), ==, -EINVAL);
        g_assert_null(k);
        g_assert_nonnull(strstr(err, "line 2"));
        g_assert_cmpint(parse("ssh-ed25519 AAAA user@host\n", &k, err), ==, -EINVAL);
        g_assert_nonnull(strstr(err, "line 1"));
        g_assert_cmpint(n2p_authkeys_parse("n2p1\0x", 6, &k, err, sizeof err), ==, -EINVAL);
        g_assert_nonnull(strstr(err, "NUL"));
}

static void test_limits(void) {
        n2p_authkeys *k = NULL;
        char err[160];
        g_autoptr(GString) big = g_string_new(NULL);
        for (int i = 0; i <= N2P_AUTHKEYS_MAX; i++) {
                n2p_key x;
                n2p_key_generate(&x);
                g_autofree char *s = n2p_addr_format_short(x.ed_public);
                g_string_append_printf(big, "%s\n", s);
        }
        g_assert_cmpint(parse(big->str, &k, err), ==, -E2BIG);
        g_assert_cmpint(n2p_authkeys_parse("", N2P_AUTHKEYS_MAX_FILE + 1, &k, err, sizeof err), ==, -E2BIG);
}

int main(int argc, char **argv) {
        g_test_init(&argc, &argv, NULL);
        g_assert_cmpint(sodium_init(), >=, 0);
        n2p_key_generate(&k1);
        n2p_key_generate(&k2);
        n2p_key_generate(&k3);
        s1 = n2p_addr_format_short(k1.ed_public);
        s2 = n2p_addr_format_short(k2.ed_public);
        g_test_add_func("/authkeys/admits-listed", test_admits_listed);
        g_test_add_func("/authkeys/empty-admits-nobody", test_empty_admits_nobody);
        g_test_add_func("/authkeys/malformed-rejects-file", test_malformed_rejects_file);
        g_test_add_func("/authkeys/limits", test_limits);
        return g_test_run();
}
