/* SPDX-License-Identifier: MIT */
#include "addr.h"

#include <arpa/inet.h>
#include <assert.h>
#include <errno.h>
#include <glib.h>
#include <netinet/in.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "key.h"
#include "util.h"

#define ADDR_PREFIX "n2p"
#define ADDR_VERSION '1'
#define CHECKSUM_DOMAIN "n2p-address"

enum {
        KIND_SHORT = 0,
        KIND_LONG = 1,

        TAG_IPV4 = 1,
        TAG_IPV6 = 2,
        TAG_HINT = 3,

        IPV4_FIELD_LEN = 4 + 2,
        IPV6_FIELD_LEN = 16 + 2,

        KEY_SIZE = 32,
        CHECKSUM_SIZE = 4,
        PREFIX_LEN = sizeof(ADDR_PREFIX) - 1 + 1,       /* "n2p" + version */
        SHORT_BODY = 1 + KEY_SIZE + CHECKSUM_SIZE,

        /* The longest body whose text fits in N2P_ADDR_MAX_TEXT. */
        MAX_BODY = (N2P_ADDR_MAX_TEXT - PREFIX_LEN) * 5 / 8,

        /* Longer than any numeric endpoint ("[" 45-char IPv6 "]:" 5-digit port). */
        ENDPOINT_MAX_TEXT = 64,
};

static const char b32_alphabet[] = "abcdefghijklmnopqrstuvwxyz234567";

static void set_err(char *err, size_t errlen, const char *format, ...) __attribute__((format(printf, 3, 4)));
static void set_err(char *err, size_t errlen, const char *format, ...) {
        va_list ap;

        if (!err || errlen == 0)
                return;
        va_start(ap, format);
        vsnprintf(err, errlen, format, ap);
        va_end(ap);
}

static int b32_value(char c) {
        if (c >= 'a' && c <= 'z')
                return c - 'a';
        if (c >= 'A' && c <= 'Z')
                return c - 'A';
        if (c >= '2' && c <= '7')
                return c - '2' + 26;
        return -1;
}

/* Base32 characters needed for n bytes, without padding. */
static size_t b32_len(size_t n) {
        return (n * 8 + 4) / 5;
}

static void b32_encode(const uint8_t *in, size_t n, char *out) {
        uint32_t acc = 0;
        unsigned bits = 0;

        for (size_t i = 0; i < n; i++) {
                acc = (acc << 8) | in[i];
                bits += 8;
                while (bits >= 5) {
                        bits -= 5;
                        *out++ = b32_alphabet[(acc >> bits) & 31];
                }
        }
        if (bits > 0)
                *out++ = b32_alphabet[(acc << (5 - bits)) & 31];
        *out = '\0';
}

static void render_char(char c, char buf[8]) {
        if (c > 0x20 && c < 0x7f)
                snprintf(buf, 8, "'%c'", c);
        else if (c == ' ')
                snprintf(buf, 8, "space");
        else
                snprintf(buf, 8, "\\x%02x", (unsigned char) c);
}

static void checksum(const uint8_t *body, size_t n, uint8_t out[CHECKSUM_SIZE]) {
        crypto_generichash_state st;
        const uint8_t version = ADDR_VERSION;

        crypto_generichash_init(&st, NULL, 0, CHECKSUM_SIZE);
        crypto_generichash_update(&st, (const uint8_t *) CHECKSUM_DOMAIN, strlen(CHECKSUM_DOMAIN));
        crypto_generichash_update(&st, &version, 1);
        crypto_generichash_update(&st, body, n);
        crypto_generichash_final(&st, out, CHECKSUM_SIZE);
}

static bool hint_valid(const char *s, size_t n) {
        if (n < 1 || n > N2P_ADDR_MAX_HINT)
                return false;
        for (size_t i = 0; i < n; i++)
                if (!g_ascii_isgraph(s[i]))
                        return false;
        return true;
}

static int parse_fields(const uint8_t *p, size_t n, n2p_addr *a, char *err, size_t errlen) {
        size_t off = 0;

        while (off < n) {
                if (n - off < 2) {
                        set_err(err, errlen, "malformed: a field is cut short at byte %zu", 1 + KEY_SIZE + off);
                        return -EINVAL;
                }
                uint8_t tag = p[off], len = p[off + 1];
                const uint8_t *v = p + off + 2;
                if (len > n - off - 2) {
                        set_err(err, errlen, "malformed: field of %u bytes overruns the address", len);
                        return -EINVAL;
                }

                switch (tag) {
                case TAG_IPV4:
                case TAG_IPV6: {
                        size_t want = tag == TAG_IPV4 ? IPV4_FIELD_LEN : IPV6_FIELD_LEN;
                        const char *what = tag == TAG_IPV4 ? "IPv4" : "IPv6";

                        if (len != want) {
                                set_err(err, errlen, "malformed: bad length %u for an %s endpoint (must be %zu)",
                                        len, what, want);
                                return -EINVAL;
                        }
                        if (a->rendezvous[0]) {
                                set_err(err, errlen, "malformed: endpoint after the rendezvous hint");
                                return -EINVAL;
                        }
                        if (a->n_endpoints >= N2P_ADDR_MAX_ENDPOINTS) {
                                set_err(err, errlen, "malformed: too many endpoints (at most %d)",
                                        N2P_ADDR_MAX_ENDPOINTS);
                                return -EINVAL;
                        }
                        uint16_t port = n2p_get_be16(v + len - 2);
                        if (port == 0) {
                                set_err(err, errlen, "malformed: %s endpoint %zu has port 0", what,
                                        a->n_endpoints + 1);
                                return -EINVAL;
                        }

                        struct sockaddr_storage *ss = &a->endpoints[a->n_endpoints++];
                        memset(ss, 0, sizeof *ss);
                        if (tag == TAG_IPV4) {
                                struct sockaddr_in *sin = (struct sockaddr_in *) ss;
                                sin->sin_family = AF_INET;
                                memcpy(&sin->sin_addr, v, 4);
                                sin->sin_port = htons(port);
                        } else {
                                struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *) ss;
                                sin6->sin6_family = AF_INET6;
                                memcpy(&sin6->sin6_addr, v, 16);
                                sin6->sin6_port = htons(port);
                        }
                        break;
                }
                case TAG_HINT:
                        if (a->rendezvous[0]) {
                                set_err(err, errlen, "malformed: more than one rendezvous hint");
                                return -EINVAL;
                        }
                        if (len < 1 || len > N2P_ADDR_MAX_HINT) {
                                set_err(err, errlen, "malformed: bad length %u for the rendezvous hint (must be 1..%d)",
                                        len, N2P_ADDR_MAX_HINT);
                                return -EINVAL;
                        }
                        if (!hint_valid((const char *) v, len)) {
                                set_err(err, errlen, "malformed: the rendezvous hint is not printable ASCII");
                                return -EINVAL;
                        }
                        memcpy(a->rendezvous, v, len);
                        a->rendezvous[len] = '\0';
                        break;
                default:
                        set_err(err, errlen, "unknown field tag %u (made by a newer n2p?)", tag);
                        return -EINVAL;
                }
                off += 2 + (size_t) len;
        }
        return 0;
}

int n2p_addr_parse(const char *text, n2p_addr *ret, char *err, size_t errlen) {
        uint8_t body[MAX_BODY], sum[CHECKSUM_SIZE];
        char c[8];
        n2p_addr a;
        size_t len, nbody, nchars;
        int r;

        if (err && errlen > 0)
                err[0] = '\0';
        if (!text || !ret) {
                set_err(err, errlen, "no address given");
                return -EINVAL;
        }

        /* Pasted addresses often come with a newline or spaces around them. */
        while (g_ascii_isspace(*text))
                text++;
        len = strlen(text);
        while (len > 0 && g_ascii_isspace(text[len - 1]))
                len--;

        if (len == 0) {
                set_err(err, errlen, "empty address");
                return -EINVAL;
        }
        if (len > N2P_ADDR_MAX_TEXT) {
                set_err(err, errlen, "too long: %zu characters (an n2p address has at most %d)",
                        len, N2P_ADDR_MAX_TEXT);
                return -EINVAL;
        }

        size_t plen = strlen(ADDR_PREFIX);
        if (g_ascii_strncasecmp(text, ADDR_PREFIX, MIN(len, plen)) != 0) {
                set_err(err, errlen, "not an n2p address (it must start with \"" ADDR_PREFIX "\")");
                return -EINVAL;
        }
        if (len <= plen) {
                set_err(err, errlen, "truncated: too short for an n2p address");
                return -EINVAL;
        }
        if (text[plen] != ADDR_VERSION) {
                if (g_ascii_isdigit(text[plen])) {
                        set_err(err, errlen, "unknown address version '" ADDR_PREFIX "%c' (this n2p understands version %c)",
                                text[plen], ADDR_VERSION);
                        return -EPROTONOSUPPORT;
                }
                render_char(text[plen], c);
                set_err(err, errlen, "not an n2p address (\"" ADDR_PREFIX "\" must be followed by a version number, not %s)", c);
                return -EINVAL;
        }

        const char *b32 = text + PREFIX_LEN;
        nchars = len - PREFIX_LEN;
        for (size_t i = 0; i < nchars; i++)
                if (b32_value(b32[i]) < 0) {
                        render_char(b32[i], c);
                        set_err(err, errlen, "invalid character %s at position %zu%s", c, PREFIX_LEN + i + 1,
                                strchr("0189", b32[i]) ? " (n2p addresses use only a-z and 2-7)" : "");
                        return -EINVAL;
                }

        if (nchars < b32_len(SHORT_BODY)) {
                set_err(err, errlen, "truncated: too short for an n2p address");
                return -EINVAL;
        }
        /* 1, 3 or 6 trailing characters cannot come from whole bytes. */
        nbody = nchars * 5 / 8;
        if (b32_len(nbody) != nchars) {
                set_err(err, errlen, "malformed: %zu characters after \"" ADDR_PREFIX "%c\" is not a valid length "
                        "(truncated, or a character added?)", nchars, ADDR_VERSION);
                return -EINVAL;
        }
        assert(nbody <= MAX_BODY);

        uint32_t acc = 0;
        unsigned bits = 0;
        size_t o = 0;
        for (size_t i = 0; i < nchars; i++) {
                acc = (acc << 5) | (uint32_t) b32_value(b32[i]);
                bits += 5;
                if (bits >= 8) {
                        bits -= 8;
                        body[o++] = (uint8_t) (acc >> bits);
                }
        }
        /* Only one text may encode a body, so stray low bits are a typo, not ignored. */
        if (acc & ((1u << bits) - 1)) {
                render_char(b32[nchars - 1], c);
                set_err(err, errlen, "malformed: the last character %s cannot end an address (a typo?)", c);
                return -EINVAL;
        }

        /* Verify before interpreting anything, so that a typo is reported as one. */
        checksum(body, nbody - CHECKSUM_SIZE, sum);
        if (memcmp(sum, body + nbody - CHECKSUM_SIZE, CHECKSUM_SIZE) != 0) {
                set_err(err, errlen, "checksum mismatch: the address has a typo or is incomplete");
                return -EBADMSG;
        }

        memset(&a, 0, sizeof a);
        memcpy(a.key, body + 1, KEY_SIZE);

        const uint8_t *fields = body + 1 + KEY_SIZE;
        size_t nfields = nbody - SHORT_BODY;
        switch (body[0]) {
        case KIND_SHORT:
                if (nfields > 0) {
                        set_err(err, errlen, "malformed: a short address carries %zu bytes of fields", nfields);
                        return -EINVAL;
                }
                break;
        case KIND_LONG:
                a.is_long = true;
                r = parse_fields(fields, nfields, &a, err, errlen);
                if (r < 0)
                        return r;
                break;
        default:
                set_err(err, errlen, "unknown address kind %u (made by a newer n2p?)", body[0]);
                return -EINVAL;
        }

        uint8_t x[32];
        if (n2p_key_ed_to_x(a.key, x) < 0) {
                set_err(err, errlen, "invalid key: the address does not hold a valid Ed25519 public key");
                return -EINVAL;
        }

        *ret = a;
        return 0;
}

static char *format_body(const uint8_t *body, size_t n) {
        char *s = g_malloc(PREFIX_LEN + b32_len(n) + 1);

        memcpy(s, ADDR_PREFIX, strlen(ADDR_PREFIX));
        s[strlen(ADDR_PREFIX)] = ADDR_VERSION;
        b32_encode(body, n, s + PREFIX_LEN);
        return s;
}

char *n2p_addr_format_short(const uint8_t key[32]) {
        uint8_t body[SHORT_BODY];

        body[0] = KIND_SHORT;
        memcpy(body + 1, key, KEY_SIZE);
        checksum(body, SHORT_BODY - CHECKSUM_SIZE, body + SHORT_BODY - CHECKSUM_SIZE);
        return format_body(body, sizeof body);
}

char *n2p_addr_format_long(const n2p_addr *a) {
        uint8_t body[MAX_BODY];
        size_t n = 0;

        if (!a || a->n_endpoints > N2P_ADDR_MAX_ENDPOINTS)
                goto invalid;

        body[n++] = KIND_LONG;
        memcpy(body + n, a->key, KEY_SIZE);
        n += KEY_SIZE;

        for (size_t i = 0; i < a->n_endpoints; i++) {
                const struct sockaddr_storage *ss = &a->endpoints[i];

                if (ss->ss_family == AF_INET) {
                        const struct sockaddr_in *sin = (const struct sockaddr_in *) ss;
                        if (sin->sin_port == 0 || n + 2 + IPV4_FIELD_LEN > sizeof body)
                                goto invalid;
                        body[n++] = TAG_IPV4;
                        body[n++] = IPV4_FIELD_LEN;
                        memcpy(body + n, &sin->sin_addr, 4);
                        n2p_put_be16(body + n + 4, ntohs(sin->sin_port));
                        n += IPV4_FIELD_LEN;
                } else if (ss->ss_family == AF_INET6) {
                        const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *) ss;
                        if (sin6->sin6_port == 0 || n + 2 + IPV6_FIELD_LEN > sizeof body)
                                goto invalid;
                        body[n++] = TAG_IPV6;
                        body[n++] = IPV6_FIELD_LEN;
                        memcpy(body + n, &sin6->sin6_addr, 16);
                        n2p_put_be16(body + n + 16, ntohs(sin6->sin6_port));
                        n += IPV6_FIELD_LEN;
                } else
                        goto invalid;
        }

        size_t hlen = strnlen(a->rendezvous, sizeof a->rendezvous);
        if (hlen > 0) {
                if (!hint_valid(a->rendezvous, hlen) || n + 2 + hlen > sizeof body)
                        goto invalid;
                body[n++] = TAG_HINT;
                body[n++] = (uint8_t) hlen;
                memcpy(body + n, a->rendezvous, hlen);
                n += hlen;
        }

        if (n + CHECKSUM_SIZE > sizeof body)
                goto invalid;
        checksum(body, n, body + n);
        return format_body(body, n + CHECKSUM_SIZE);

invalid:
        /* Not representable within N2P_ADDR_MAX_TEXT, or not a valid address at all. */
        errno = EINVAL;
        return NULL;
}

static int parse_port(const char *s, size_t n, uint16_t *ret) {
        unsigned v = 0;

        if (n == 0 || n > 5)
                return -EINVAL;
        for (size_t i = 0; i < n; i++) {
                if (!g_ascii_isdigit(s[i]))
                        return -EINVAL;
                v = v * 10 + (unsigned) (s[i] - '0');
        }
        if (v == 0 || v > 65535)
                return -EINVAL;
        *ret = (uint16_t) v;
        return 0;
}

int n2p_endpoint_parse(const char *text, int default_port, struct sockaddr_storage *ret,
                       char *err, size_t errlen) {
        char host[ENDPOINT_MAX_TEXT + 1];
        const char *port_s = NULL;
        size_t len, port_n = 0;
        uint16_t port;
        bool v6;

        if (err && errlen > 0)
                err[0] = '\0';
        if (!text || !ret) {
                set_err(err, errlen, "no endpoint given");
                return -EINVAL;
        }
        if (default_port < 0 || default_port > 65535) {
                set_err(err, errlen, "invalid default port %d", default_port);
                return -EINVAL;
        }

        len = strnlen(text, ENDPOINT_MAX_TEXT + 1);
        if (len == 0) {
                set_err(err, errlen, "empty endpoint");
                return -EINVAL;
        }
        if (len > ENDPOINT_MAX_TEXT) {
                set_err(err, errlen, "endpoint too long (at most %d characters)", ENDPOINT_MAX_TEXT);
                return -EINVAL;
        }
        /* Checked first so the text can be quoted in the messages below. */
        for (size_t i = 0; i < len; i++)
                if (!g_ascii_isgraph(text[i])) {
                        char c[8];
                        render_char(text[i], c);
                        set_err(err, errlen, "invalid character %s at position %zu in the endpoint", c, i + 1);
                        return -EINVAL;
                }

        if (text[0] == '[') {
                const char *rb = memchr(text, ']', len);
                if (!rb) {
                        set_err(err, errlen, "invalid endpoint \"%s\": missing ']'", text);
                        return -EINVAL;
                }
                v6 = true;
                memcpy(host, text + 1, (size_t) (rb - text - 1));
                host[rb - text - 1] = '\0';
                if (rb[1] == ':') {
                        port_s = rb + 2;
                        port_n = len - (size_t) (port_s - text);
                } else if (rb[1] != '\0') {
                        set_err(err, errlen, "invalid endpoint \"%s\": expected ':PORT' after ']'", text);
                        return -EINVAL;
                }
        } else {
                const char *colon = memchr(text, ':', len);
                if (colon && memchr(colon + 1, ':', len - (size_t) (colon + 1 - text))) {
                        set_err(err, errlen, "invalid endpoint \"%s\": write IPv6 addresses in brackets, e.g. [::1]:7787",
                                text);
                        return -EINVAL;
                }
                v6 = false;
                size_t hn = colon ? (size_t) (colon - text) : len;
                memcpy(host, text, hn);
                host[hn] = '\0';
                if (colon) {
                        port_s = colon + 1;
                        port_n = len - hn - 1;
                }
        }

        if (port_s) {
                if (parse_port(port_s, port_n, &port) < 0) {
                        set_err(err, errlen, "invalid endpoint \"%s\": the port must be a number 1..65535", text);
                        return -EINVAL;
                }
        } else if (default_port > 0)
                port = (uint16_t) default_port;
        else {
                set_err(err, errlen, "invalid endpoint \"%s\": missing ':PORT'", text);
                return -EINVAL;
        }

        struct sockaddr_storage ss;
        memset(&ss, 0, sizeof ss);
        if (v6) {
                struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *) &ss;
                if (inet_pton(AF_INET6, host, &sin6->sin6_addr) != 1) {
                        set_err(err, errlen, "invalid endpoint \"%s\": not a numeric IPv6 address", text);
                        return -EINVAL;
                }
                sin6->sin6_family = AF_INET6;
                sin6->sin6_port = htons(port);
        } else {
                struct sockaddr_in *sin = (struct sockaddr_in *) &ss;
                if (inet_pton(AF_INET, host, &sin->sin_addr) != 1) {
                        set_err(err, errlen,
                                "invalid endpoint \"%s\": not a numeric IPv4 address (host names are not resolved)",
                                text);
                        return -EINVAL;
                }
                sin->sin_family = AF_INET;
                sin->sin_port = htons(port);
        }

        *ret = ss;
        return 0;
}

char *n2p_endpoint_format(const struct sockaddr_storage *sa, char *buf, size_t len) {
        char host[INET6_ADDRSTRLEN];

        if (!buf || len == 0)
                return buf;

        if (sa && sa->ss_family == AF_INET) {
                const struct sockaddr_in *sin = (const struct sockaddr_in *) sa;
                inet_ntop(AF_INET, &sin->sin_addr, host, sizeof host);
                snprintf(buf, len, "%s:%u", host, ntohs(sin->sin_port));
        } else if (sa && sa->ss_family == AF_INET6) {
                const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *) sa;
                inet_ntop(AF_INET6, &sin6->sin6_addr, host, sizeof host);
                snprintf(buf, len, "[%s]:%u", host, ntohs(sin6->sin6_port));
        } else
                snprintf(buf, len, "(unknown address family)");
        return buf;
}

socklen_t n2p_sockaddr_len(const struct sockaddr_storage *sa) {
        return sa->ss_family == AF_INET ? sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6);
}

/* 16 address bytes (IPv4 as v4-mapped) and the port, in network order. */
static bool endpoint_key(const struct sockaddr_storage *sa, uint8_t addr[16], uint16_t *port) {
        if (sa->ss_family == AF_INET) {
                const struct sockaddr_in *in = (const struct sockaddr_in *) sa;
                memset(addr, 0, 10);
                addr[10] = addr[11] = 0xff;
                memcpy(addr + 12, &in->sin_addr, 4);
                *port = in->sin_port;
                return true;
        }
        if (sa->ss_family == AF_INET6) {
                const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *) sa;
                memcpy(addr, &in6->sin6_addr, 16);
                *port = in6->sin6_port;
                return true;
        }
        return false;
}

bool n2p_endpoint_equal(const struct sockaddr_storage *a, const struct sockaddr_storage *b) {
        uint8_t x[16], y[16];
        uint16_t px, py;
        return endpoint_key(a, x, &px) && endpoint_key(b, y, &py) && px == py && memcmp(x, y, 16) == 0;
}
