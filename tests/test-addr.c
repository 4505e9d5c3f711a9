/* SPDX-License-Identifier: MIT */
#include <arpa/inet.h>
#include <errno.h>
#include <glib.h>
#include <netinet/in.h>
#include <sodium.h>
#include <string.h>

#include "addr.h"
#include "key.h"

/* Computed independently (Python: hashlib.blake2b(digest_size=4), base64.b32encode)
 * from the key of seed 00..1f, so the format itself is pinned, not just round trips. */
static const char kat_short[] = "n2p1aab2cb576phbbpq5odorrz2lycmwpzgwgcn2kdk7dxoimzaskuy3qzf7x7hq";
/* Long: 192.0.2.7:7787, [2001:db8::1]:443, hint "rv.example.org:7788". */
static const char kat_long[] =
        "n2p1aeb2cb576phbbpq5odorrz2lycmwpzgwgcn2kdk7dxoimzaskuy3qaigyaaaeby6nmbbeiabbw4aaaaaaaaaaaaaaaaaaaibx"
        "mbrg4twfzsxqylnobwgkltpojttunzxha4bu5xv5i";

static const char b32[] = "abcdefghijklmnopqrstuvwxyz234567";

static n2p_key kat_key(void) {
        uint8_t seed[32];
        n2p_key k;

        for (unsigned i = 0; i < 32; i++)
                seed[i] = (uint8_t) i;
        n2p_key_from_seed(seed, &k);
        return k;
}

static void endpoint(const char *text, struct sockaddr_storage *ss) {
        char err[256];
        int r = n2p_endpoint_parse(text, 0, ss, err, sizeof err);
        if (r < 0)
                g_error("%s: %s", text, err);
}

static n2p_addr kat_long_addr(void) {
        n2p_key k = kat_key();
        n2p_addr a;

        memset(&a, 0, sizeof a);
        memcpy(a.key, k.ed_public, 32);
        a.is_long = true;
        endpoint("192.0.2.7:7787", &a.endpoints[0]);
        endpoint("[2001:db8::1]:443", &a.endpoints[1]);
        a.n_endpoints = 2;
        strcpy(a.rendezvous, "rv.example.org:7788");
        n2p_key_wipe(&k);
        return a;
}

static void assert_addr_equal(const n2p_addr *a, const n2p_addr *b) {
        g_assert_cmpmem(a->key, 32, b->key, 32);
        g_assert_cmpint(a->is_long, ==, b->is_long);
        g_assert_cmpuint(a->n_endpoints, ==, b->n_endpoints);
        for (size_t i = 0; i < a->n_endpoints; i++) {
                char x[64], y[64];
                g_assert_cmpstr(n2p_endpoint_format(&a->endpoints[i], x, sizeof x), ==,
                                n2p_endpoint_format(&b->endpoints[i], y, sizeof y));
        }
        g_assert_cmpstr(a->rendezvous, ==, b->rendezvous);
}

/* Expects failure with code r, *ret untouched, and an error text containing needle. */
static void expect_fail(const char *text, int r, const char *needle) {
        char err[256] = "unset";
        n2p_addr a;

        memset(&a, 0xaa, sizeof a);
        int got = n2p_addr_parse(text, &a, err, sizeof err);
        if (got != r || !strstr(err, needle))
                g_error("parse(\"%s\") = %d \"%s\", wanted %d and \"%s\"", text, got, err, r, needle);
        g_assert_cmpint(a.key[0], ==, 0xaa);
        g_assert_null(strchr(err, '\n'));
}

/* Builds an address text from a raw body, appending a correct checksum, so that
 * well-checksummed but malformed bodies can be tested. */
static char *encode_body(const uint8_t *body, size_t n, char version) {
        uint8_t buf[1024];
        char *s;
        size_t o = 0;
        uint32_t acc = 0;
        unsigned bits = 0;
        uint8_t v = (uint8_t) version;
        crypto_generichash_state st;

        g_assert_cmpuint(n + 4, <=, sizeof buf);
        memcpy(buf, body, n);
        crypto_generichash_init(&st, NULL, 0, 4);
        crypto_generichash_update(&st, (const uint8_t *) "n2p-address", 11);
        crypto_generichash_update(&st, &v, 1);
        crypto_generichash_update(&st, body, n);
        crypto_generichash_final(&st, buf + n, 4);
        n += 4;

        s = g_malloc(4 + (n * 8 + 4) / 5 + 1);
        s[o++] = 'n';
        s[o++] = '2';
        s[o++] = 'p';
        s[o++] = version;
        for (size_t i = 0; i < n; i++) {
                acc = (acc << 8) | buf[i];
                bits += 8;
                while (bits >= 5) {
                        bits -= 5;
                        s[o++] = b32[(acc >> bits) & 31];
                }
        }
        if (bits > 0)
                s[o++] = b32[(acc << (5 - bits)) & 31];
        s[o] = '\0';
        return s;
}

/* kind || kat key || extra */
static char *encode_with(uint8_t kind, const uint8_t *extra, size_t n) {
        n2p_key k = kat_key();
        uint8_t body[512];

        body[0] = kind;
        memcpy(body + 1, k.ed_public, 32);
        if (n > 0)
                memcpy(body + 33, extra, n);
        n2p_key_wipe(&k);
        return encode_body(body, 33 + n, '1');
}

static void test_short_kat(void) {
        n2p_key k = kat_key();
        g_autofree char *s = n2p_addr_format_short(k.ed_public);

        g_assert_cmpstr(s, ==, kat_short);
        n2p_key_wipe(&k);
}

static void test_short_roundtrip(void) {
        n2p_key k;
        n2p_addr a;
        char err[256];

        n2p_key_generate(&k);
        g_autofree char *s = n2p_addr_format_short(k.ed_public);
        g_assert_cmpuint(strlen(s), ==, N2P_ADDR_SHORT_LEN);
        g_assert_true(g_str_has_prefix(s, "n2p1"));
        g_assert_cmpuint(strspn(s + 4, b32), ==, strlen(s + 4));

        g_assert_cmpint(n2p_addr_parse(s, &a, err, sizeof err), ==, 0);
        g_assert_cmpmem(a.key, 32, k.ed_public, 32);
        g_assert_false(a.is_long);
        g_assert_cmpuint(a.n_endpoints, ==, 0);
        g_assert_cmpstr(a.rendezvous, ==, "");
        n2p_key_wipe(&k);
}

static void test_long_kat(void) {
        n2p_addr a = kat_long_addr(), b;
        g_autofree char *s = n2p_addr_format_long(&a);
        char err[256];

        g_assert_cmpstr(s, ==, kat_long);
        g_assert_cmpint(n2p_addr_parse(kat_long, &b, err, sizeof err), ==, 0);
        assert_addr_equal(&a, &b);
}

static void test_long_roundtrip(void) {
        n2p_addr a = kat_long_addr(), b;
        char err[256], buf[64];

        g_autofree char *s = n2p_addr_format_long(&a);
        g_assert_nonnull(s);
        g_assert_true(g_str_has_prefix(s, "n2p1"));
        g_assert_cmpuint(strspn(s + 4, b32), ==, strlen(s + 4));
        g_assert_cmpint(n2p_addr_parse(s, &b, err, sizeof err), ==, 0);
        g_assert_true(b.is_long);
        g_assert_cmpuint(b.n_endpoints, ==, 2);
        g_assert_cmpstr(n2p_endpoint_format(&b.endpoints[0], buf, sizeof buf), ==, "192.0.2.7:7787");
        g_assert_cmpstr(n2p_endpoint_format(&b.endpoints[1], buf, sizeof buf), ==, "[2001:db8::1]:443");
        g_assert_cmpstr(b.rendezvous, ==, "rv.example.org:7788");
        assert_addr_equal(&a, &b);
}

static void test_long_eight_endpoints(void) {
        n2p_addr a = kat_long_addr(), b;
        char err[256];

        for (unsigned i = 0; i < N2P_ADDR_MAX_ENDPOINTS; i++) {
                g_autofree char *t = i % 2 ? g_strdup_printf("[2001:db8::%u]:%u", i, 1000 + i)
                                           : g_strdup_printf("10.0.0.%u:%u", i, 1000 + i);
                endpoint(t, &a.endpoints[i]);
        }
        a.n_endpoints = N2P_ADDR_MAX_ENDPOINTS;
        g_autofree char *s = n2p_addr_format_long(&a);
        g_assert_nonnull(s);
        g_assert_cmpuint(strlen(s), <=, N2P_ADDR_MAX_TEXT);
        g_assert_cmpint(n2p_addr_parse(s, &b, err, sizeof err), ==, 0);
        assert_addr_equal(&a, &b);
}

static void test_long_without_fields(void) {
        n2p_addr a = kat_long_addr(), b;
        char err[256];

        a.n_endpoints = 0;
        a.rendezvous[0] = '\0';
        g_autofree char *s = n2p_addr_format_long(&a);
        g_assert_cmpint(n2p_addr_parse(s, &b, err, sizeof err), ==, 0);
        g_assert_true(b.is_long);
        assert_addr_equal(&a, &b);
}

static void test_format_long_unrepresentable(void) {
        n2p_addr a = kat_long_addr();

        /* The largest address there is (8 IPv6 endpoints and the longest hint)
         * still fits N2P_ADDR_MAX_TEXT and parses back. */
        for (unsigned i = 0; i < N2P_ADDR_MAX_ENDPOINTS; i++)
                endpoint("[2001:db8::1]:1", &a.endpoints[i]);
        a.n_endpoints = N2P_ADDR_MAX_ENDPOINTS;
        memset(a.rendezvous, 'h', N2P_ADDR_MAX_HINT);
        a.rendezvous[N2P_ADDR_MAX_HINT] = '\0';
        {
                g_autofree char *big = n2p_addr_format_long(&a);
                n2p_addr back;
                char err[128];
                g_assert_nonnull(big);
                g_assert_cmpuint(strlen(big), <=, N2P_ADDR_MAX_TEXT);
                g_assert_cmpint(n2p_addr_parse(big, &back, err, sizeof err), ==, 0);
                assert_addr_equal(&a, &back);
        }

        a = kat_long_addr();
        a.n_endpoints = N2P_ADDR_MAX_ENDPOINTS + 1;
        g_assert_null(n2p_addr_format_long(&a));

        a = kat_long_addr();
        strcpy(a.rendezvous, "has space");
        g_assert_null(n2p_addr_format_long(&a));

        a = kat_long_addr();
        a.endpoints[0].ss_family = AF_UNIX;
        g_assert_null(n2p_addr_format_long(&a));
}

static void test_whitespace_around(void) {
        g_autofree char *s = g_strdup_printf(" \t%s\r\n", kat_short);
        n2p_key k = kat_key();
        char err[256];
        n2p_addr a;

        g_assert_cmpint(n2p_addr_parse(s, &a, err, sizeof err), ==, 0);
        g_assert_cmpmem(a.key, 32, k.ed_public, 32);
        n2p_key_wipe(&k);
}

static void test_whitespace_inside(void) {
        g_autofree char *s = g_strdup(kat_short);

        s[20] = ' ';
        expect_fail(s, -EINVAL, "position 21");
}

static void test_upper_case(void) {
        g_autofree char *s = g_ascii_strup(kat_short, -1);
        n2p_key k = kat_key();
        char err[256];
        n2p_addr a;

        g_assert_cmpint(n2p_addr_parse(s, &a, err, sizeof err), ==, 0);
        g_assert_cmpmem(a.key, 32, k.ed_public, 32);
        n2p_key_wipe(&k);
}

static void test_empty(void) {
        expect_fail("", -EINVAL, "empty");
        expect_fail(" \n ", -EINVAL, "empty");
}

static void test_null(void) {
        char err[256];
        n2p_addr a;

        g_assert_cmpint(n2p_addr_parse(NULL, &a, err, sizeof err), ==, -EINVAL);
}

static void test_not_n2p(void) {
        expect_fail("hello world", -EINVAL, "must start with \"n2p\"");
        expect_fail("nodeaddr1234", -EINVAL, "must start with \"n2p\"");
}

static void test_unknown_version(void) {
        g_autofree char *s = g_strdup(kat_short);

        s[3] = '7';
        expect_fail(s, -EPROTONOSUPPORT, "'n2p7'");
        expect_fail(s, -EPROTONOSUPPORT, "version 1");
}

static void test_version_not_a_number(void) {
        expect_fail("n2pxaab2cb576phbbpq5odorrz2lycmwpzgwgcn2kdk7dxoimzaskuy3qzf7x7hq", -EINVAL, "version");
}

static void test_invalid_character(void) {
        g_autofree char *s = g_strdup(kat_short);

        s[16] = '!';
        expect_fail(s, -EINVAL, "invalid character '!' at position 17");
        s[16] = '8';
        expect_fail(s, -EINVAL, "only a-z and 2-7");
        s[16] = '0';
        expect_fail(s, -EINVAL, "invalid character '0' at position 17");
        s[16] = '\x01';
        expect_fail(s, -EINVAL, "\\x01");
}

static void test_truncated(void) {
        expect_fail("n2p", -EINVAL, "truncated");
        expect_fail("n2p1", -EINVAL, "truncated");
        expect_fail("n2p1aab2cb576phbbpq5odorrz2lycmwpz", -EINVAL, "truncated");
}

static void test_truncated_every_length(void) {
        const char *texts[] = { kat_short, kat_long };

        for (size_t t = 0; t < G_N_ELEMENTS(texts); t++)
                for (size_t n = 0; n < strlen(texts[t]); n++) {
                        g_autofree char *s = g_strndup(texts[t], n);
                        char err[256] = "";
                        n2p_addr a;
                        int r = n2p_addr_parse(s, &a, err, sizeof err);
                        if (r >= 0)
                                g_error("truncated to %zu characters parsed", n);
                        g_assert_cmpint(r, !=, -EPROTONOSUPPORT);
                        g_assert_cmpstr(err, !=, "");
                }
}

static void test_bad_length(void) {
        g_autofree char *s = g_strconcat(kat_short, "aa", NULL);

        /* 62 base32 characters cannot come from whole bytes (38 bytes need 61, 39 need 63). */
        expect_fail(s, -EINVAL, "length");
}

static void test_noncanonical_padding(void) {
        g_autofree char *s = g_strdup(kat_short);

        /* 37 bytes leave 4 padding bits in the last character: they must be zero. */
        g_assert_cmpint(s[63], ==, 'q');
        s[63] = 'r';
        expect_fail(s, -EINVAL, "last character");
}

static void test_checksum_mismatch(void) {
        g_autofree char *s = g_strdup(kat_short);

        s[30] = s[30] == 'a' ? 'b' : 'a';
        expect_fail(s, -EBADMSG, "checksum");
}

static void test_too_long(void) {
        g_autofree char *s = g_strnfill(N2P_ADDR_MAX_TEXT + 1, 'a');

        memcpy(s, "n2p1", 4);
        expect_fail(s, -EINVAL, "too long");
}

static void check_typos(const char *text) {
        size_t len = strlen(text);

        for (size_t i = 4; i < len; i++)
                for (const char *c = b32; *c; c++) {
                        if (*c == text[i])
                                continue;
                        g_autofree char *s = g_strdup(text);
                        char err[256];
                        n2p_addr a;

                        s[i] = *c;
                        int r = n2p_addr_parse(s, &a, err, sizeof err);
                        if (r != -EBADMSG && r != -EINVAL)
                                g_error("typo '%c' at %zu: got %d (%s)", *c, i, r, err);
                }
        /* The prefix too: every change there is an error, if not a checksum one. */
        for (size_t i = 0; i < 4; i++) {
                g_autofree char *s = g_strdup(text);
                char err[256];
                n2p_addr a;

                s[i] = 'x';
                g_assert_cmpint(n2p_addr_parse(s, &a, err, sizeof err), <, 0);
        }
}

static void test_typo_every_position_short(void) {
        check_typos(kat_short);
}

static void test_typo_every_position_long(void) {
        check_typos(kat_long);
}

static void test_unknown_kind(void) {
        g_autofree char *s = encode_with(7, NULL, 0);

        expect_fail(s, -EINVAL, "unknown address kind 7");
}

static void test_short_with_fields(void) {
        const uint8_t f[] = { 1, 6, 192, 0, 2, 1, 0x1e, 0x6b };
        g_autofree char *s = encode_with(0, f, sizeof f);

        expect_fail(s, -EINVAL, "short address");
}

static void test_field_overrun(void) {
        const uint8_t f[] = { 3, 20, 'a', 'b' };
        g_autofree char *s = encode_with(1, f, sizeof f);

        expect_fail(s, -EINVAL, "overruns");
}

static void test_field_cut_short(void) {
        const uint8_t f[] = { 1, 6, 192, 0, 2, 1, 0x1e, 0x6b, 3 };
        g_autofree char *s = encode_with(1, f, sizeof f);

        expect_fail(s, -EINVAL, "cut short");
}

static void test_unknown_tag(void) {
        const uint8_t f[] = { 9, 1, 0 };
        g_autofree char *s = encode_with(1, f, sizeof f);

        expect_fail(s, -EINVAL, "unknown field tag 9");
}

static void test_bad_ipv4_length(void) {
        const uint8_t f[] = { 1, 5, 192, 0, 2, 1, 0x1e };
        g_autofree char *s = encode_with(1, f, sizeof f);

        expect_fail(s, -EINVAL, "bad length 5 for an IPv4");
}

static void test_bad_ipv6_length(void) {
        const uint8_t f[] = { 2, 6, 192, 0, 2, 1, 0x1e, 0x6b };
        g_autofree char *s = encode_with(1, f, sizeof f);

        expect_fail(s, -EINVAL, "bad length 6 for an IPv6");
}

static void test_endpoint_port_zero(void) {
        const uint8_t f[] = { 1, 6, 192, 0, 2, 1, 0, 0 };
        g_autofree char *s = encode_with(1, f, sizeof f);

        expect_fail(s, -EINVAL, "port 0");
}

static void test_too_many_endpoints(void) {
        uint8_t f[8 * (N2P_ADDR_MAX_ENDPOINTS + 1)];

        for (unsigned i = 0; i <= N2P_ADDR_MAX_ENDPOINTS; i++) {
                const uint8_t e[] = { 1, 6, 10, 0, 0, (uint8_t) i, 0x1e, 0x6b };
                memcpy(f + 8 * i, e, 8);
        }
        g_autofree char *s = encode_with(1, f, sizeof f);
        expect_fail(s, -EINVAL, "too many endpoints");
}

static void test_hint_empty(void) {
        const uint8_t f[] = { 3, 0 };
        g_autofree char *s = encode_with(1, f, sizeof f);

        expect_fail(s, -EINVAL, "rendezvous hint");
}

static void test_hint_too_long(void) {
        uint8_t f[2 + N2P_ADDR_MAX_HINT + 1];

        f[0] = 3;
        f[1] = N2P_ADDR_MAX_HINT + 1;
        memset(f + 2, 'h', N2P_ADDR_MAX_HINT + 1);
        g_autofree char *s = encode_with(1, f, sizeof f);
        expect_fail(s, -EINVAL, "bad length 129 for the rendezvous hint");
}

static void test_hint_not_printable(void) {
        const uint8_t f[] = { 3, 4, 'a', '\n', 'b', 'c' };
        g_autofree char *s = encode_with(1, f, sizeof f);

        expect_fail(s, -EINVAL, "printable");
}

static void test_hint_twice(void) {
        const uint8_t f[] = { 3, 1, 'a', 3, 1, 'b' };
        g_autofree char *s = encode_with(1, f, sizeof f);

        expect_fail(s, -EINVAL, "more than one rendezvous hint");
}

static void test_endpoint_after_hint(void) {
        const uint8_t f[] = { 3, 1, 'a', 1, 6, 192, 0, 2, 1, 0x1e, 0x6b };
        g_autofree char *s = encode_with(1, f, sizeof f);

        expect_fail(s, -EINVAL, "after the rendezvous hint");
}

static void test_invalid_key(void) {
        uint8_t body[33] = { 0, 1 };    /* the identity point: a valid encoding, not a usable key */
        g_autofree char *s = encode_body(body, sizeof body, '1');

        expect_fail(s, -EINVAL, "key");
}

static void test_err_buffer_optional(void) {
        n2p_addr a;
        char tiny[4];

        g_assert_cmpint(n2p_addr_parse("bogus", &a, NULL, 0), ==, -EINVAL);
        g_assert_cmpint(n2p_addr_parse("bogus", &a, tiny, sizeof tiny), ==, -EINVAL);
        g_assert_cmpuint(strlen(tiny), ==, 3);
}

/* Endpoints */

static void expect_endpoint(const char *text, int default_port, const char *formatted) {
        struct sockaddr_storage ss;
        char err[256], buf[64];

        if (n2p_endpoint_parse(text, default_port, &ss, err, sizeof err) < 0)
                g_error("%s: %s", text, err);
        g_assert_cmpstr(n2p_endpoint_format(&ss, buf, sizeof buf), ==, formatted);
}

static void expect_endpoint_fail(const char *text, int default_port, const char *needle) {
        struct sockaddr_storage ss;
        char err[256] = "unset";

        memset(&ss, 0xaa, sizeof ss);
        g_assert_cmpint(n2p_endpoint_parse(text, default_port, &ss, err, sizeof err), ==, -EINVAL);
        if (!strstr(err, needle))
                g_error("endpoint \"%s\": error \"%s\" lacks \"%s\"", text, err, needle);
        g_assert_cmpint(((uint8_t *) &ss)[0], ==, 0xaa);
}

static void test_endpoint_ipv4(void) {
        struct sockaddr_storage ss;
        struct sockaddr_in *sin = (struct sockaddr_in *) &ss;
        char err[256];

        g_assert_cmpint(n2p_endpoint_parse("1.2.3.4:7787", 0, &ss, err, sizeof err), ==, 0);
        g_assert_cmpint(sin->sin_family, ==, AF_INET);
        g_assert_cmpint(ntohs(sin->sin_port), ==, 7787);
        g_assert_cmphex(ntohl(sin->sin_addr.s_addr), ==, 0x01020304);
        expect_endpoint("1.2.3.4:7787", 0, "1.2.3.4:7787");
        expect_endpoint("255.255.255.255:65535", 0, "255.255.255.255:65535");
}

static void test_endpoint_ipv6(void) {
        struct sockaddr_storage ss;
        struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *) &ss;
        char err[256];

        g_assert_cmpint(n2p_endpoint_parse("[::1]:7787", 0, &ss, err, sizeof err), ==, 0);
        g_assert_cmpint(sin6->sin6_family, ==, AF_INET6);
        g_assert_cmpint(ntohs(sin6->sin6_port), ==, 7787);
        g_assert_true(IN6_IS_ADDR_LOOPBACK(&sin6->sin6_addr));
        expect_endpoint("[::1]:7787", 0, "[::1]:7787");
        expect_endpoint("[2001:DB8:0:0::1]:1", 0, "[2001:db8::1]:1");
}

static void test_endpoint_default_port(void) {
        expect_endpoint("1.2.3.4", 7787, "1.2.3.4:7787");
        expect_endpoint("[::1]", 7787, "[::1]:7787");
        /* An explicit port wins. */
        expect_endpoint("1.2.3.4:9", 7787, "1.2.3.4:9");
}

static void test_endpoint_missing_port(void) {
        expect_endpoint_fail("1.2.3.4", 0, "missing ':PORT'");
        expect_endpoint_fail("[::1]", 0, "missing ':PORT'");
}

static void test_endpoint_bad_port(void) {
        expect_endpoint_fail("1.2.3.4:0", 0, "port");
        expect_endpoint_fail("1.2.3.4:65536", 0, "port");
        expect_endpoint_fail("1.2.3.4:", 0, "port");
        expect_endpoint_fail("1.2.3.4:-1", 0, "port");
        expect_endpoint_fail("1.2.3.4:+80", 0, "port");
        expect_endpoint_fail("1.2.3.4:99999999", 0, "port");
        expect_endpoint_fail("[::1]:x", 0, "port");
}

static void test_endpoint_hostname(void) {
        expect_endpoint_fail("example.org:7787", 0, "not resolved");
        expect_endpoint_fail("localhost", 7787, "not resolved");
        expect_endpoint_fail("1.2.3:7787", 0, "IPv4");
        expect_endpoint_fail("[example.org]:7787", 0, "IPv6");
}

static void test_endpoint_ipv6_without_brackets(void) {
        expect_endpoint_fail("::1:7787", 0, "brackets");
        expect_endpoint_fail("2001:db8::1", 7787, "brackets");
}

static void test_endpoint_garbage(void) {
        expect_endpoint_fail("", 0, "empty");
        expect_endpoint_fail("[::1", 0, "]");
        expect_endpoint_fail("[::1]x", 0, "after ']'");
        expect_endpoint_fail(" 1.2.3.4:80", 0, "invalid character");
        expect_endpoint_fail("1.2.3.4:80\n", 0, "invalid character");
        g_autofree char *big = g_strnfill(200, '1');
        expect_endpoint_fail(big, 0, "too long");
}

static void test_endpoint_format_unknown(void) {
        struct sockaddr_storage ss;
        char buf[64];

        memset(&ss, 0, sizeof ss);
        ss.ss_family = AF_UNIX;
        g_assert_nonnull(strstr(n2p_endpoint_format(&ss, buf, sizeof buf), "unknown"));
}

static void test_endpoint_equal(void) {
        struct sockaddr_storage a, b, m, c, d;
        endpoint("10.1.0.2:7787", &a);
        endpoint("10.1.0.2:7787", &b);
        endpoint("[::ffff:10.1.0.2]:7787", &m);
        endpoint("10.1.0.2:7788", &c);
        endpoint("[2001:db8::1]:7787", &d);
        g_assert_true(n2p_endpoint_equal(&a, &b));
        /* what a dual-stack socket reports for an IPv4 peer */
        g_assert_true(n2p_endpoint_equal(&a, &m));
        g_assert_true(n2p_endpoint_equal(&m, &a));
        g_assert_false(n2p_endpoint_equal(&a, &c));
        g_assert_false(n2p_endpoint_equal(&a, &d));
        g_assert_cmpuint(n2p_sockaddr_len(&a), ==, sizeof(struct sockaddr_in));
        g_assert_cmpuint(n2p_sockaddr_len(&d), ==, sizeof(struct sockaddr_in6));
}

int main(int argc, char **argv) {
        g_test_init(&argc, &argv, NULL);
        g_assert_cmpint(sodium_init(), >=, 0);

        g_test_add_func("/addr/short-kat", test_short_kat);
        g_test_add_func("/endpoint/equal", test_endpoint_equal);
        g_test_add_func("/addr/short-roundtrip", test_short_roundtrip);
        g_test_add_func("/addr/long-kat", test_long_kat);
        g_test_add_func("/addr/long-roundtrip", test_long_roundtrip);
        g_test_add_func("/addr/long-eight-endpoints", test_long_eight_endpoints);
        g_test_add_func("/addr/long-without-fields", test_long_without_fields);
        g_test_add_func("/addr/format-long-unrepresentable", test_format_long_unrepresentable);
        g_test_add_func("/addr/whitespace-around", test_whitespace_around);
        g_test_add_func("/addr/whitespace-inside", test_whitespace_inside);
        g_test_add_func("/addr/upper-case", test_upper_case);
        g_test_add_func("/addr/empty", test_empty);
        g_test_add_func("/addr/null", test_null);
        g_test_add_func("/addr/not-n2p", test_not_n2p);
        g_test_add_func("/addr/unknown-version", test_unknown_version);
        g_test_add_func("/addr/version-not-a-number", test_version_not_a_number);
        g_test_add_func("/addr/invalid-character", test_invalid_character);
        g_test_add_func("/addr/truncated", test_truncated);
        g_test_add_func("/addr/truncated-every-length", test_truncated_every_length);
        g_test_add_func("/addr/bad-length", test_bad_length);
        g_test_add_func("/addr/noncanonical-padding", test_noncanonical_padding);
        g_test_add_func("/addr/checksum-mismatch", test_checksum_mismatch);
        g_test_add_func("/addr/too-long", test_too_long);
        g_test_add_func("/addr/typo-every-position-short", test_typo_every_position_short);
        g_test_add_func("/addr/typo-every-position-long", test_typo_every_position_long);
        g_test_add_func("/addr/unknown-kind", test_unknown_kind);
        g_test_add_func("/addr/short-with-fields", test_short_with_fields);
        g_test_add_func("/addr/field-overrun", test_field_overrun);
        g_test_add_func("/addr/field-cut-short", test_field_cut_short);
        g_test_add_func("/addr/unknown-tag", test_unknown_tag);
        g_test_add_func("/addr/bad-ipv4-length", test_bad_ipv4_length);
        g_test_add_func("/addr/bad-ipv6-length", test_bad_ipv6_length);
        g_test_add_func("/addr/endpoint-port-zero", test_endpoint_port_zero);
        g_test_add_func("/addr/too-many-endpoints", test_too_many_endpoints);
        g_test_add_func("/addr/hint-empty", test_hint_empty);
        g_test_add_func("/addr/hint-too-long", test_hint_too_long);
        g_test_add_func("/addr/hint-not-printable", test_hint_not_printable);
        g_test_add_func("/addr/hint-twice", test_hint_twice);
        g_test_add_func("/addr/endpoint-after-hint", test_endpoint_after_hint);
        g_test_add_func("/addr/invalid-key", test_invalid_key);
        g_test_add_func("/addr/err-buffer-optional", test_err_buffer_optional);

        g_test_add_func("/endpoint/ipv4", test_endpoint_ipv4);
        g_test_add_func("/endpoint/ipv6", test_endpoint_ipv6);
        g_test_add_func("/endpoint/default-port", test_endpoint_default_port);
        g_test_add_func("/endpoint/missing-port", test_endpoint_missing_port);
        g_test_add_func("/endpoint/bad-port", test_endpoint_bad_port);
        g_test_add_func("/endpoint/hostname", test_endpoint_hostname);
        g_test_add_func("/endpoint/ipv6-without-brackets", test_endpoint_ipv6_without_brackets);
        g_test_add_func("/endpoint/garbage", test_endpoint_garbage);
        g_test_add_func("/endpoint/format-unknown", test_endpoint_format_unknown);

        return g_test_run();
}
