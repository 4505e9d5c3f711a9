/* SPDX-License-Identifier: MIT */
/* `n2pctl address`, `n2pctl keygen` and `n2pctl key`. */
#include <errno.h>
#include <getopt.h>
#include <glib.h>
#include <stdio.h>
#include <string.h>

#include "addr.h"
#include "common.h"
#include "log.h"
#include "wire.h"

#if N2P_HAVE_QRENCODE
#include <qrencode.h>
#endif

/* Scanners need a light margin of four modules around the code. */
#define QR_QUIET_ZONE 4

static char *arg_key_file;
static char *arg_listen;
static bool arg_qr;

/* `address` options (--listen, --qr) are refused by `keygen`. */
static int parse_argv(int argc, char **argv, bool address, const char *usage) {
        static const struct option options[] = {
                { "help",            no_argument,       NULL, 'h' },
                { "secret-key-file", required_argument, NULL, 'k' },
                { "listen",          required_argument, NULL, 'l' },
                { "qr",              no_argument,       NULL, 'q' },
                {}
        };
        int c;
        optind = 0;
        while ((c = getopt_long(argc, argv, "h", options, NULL)) >= 0)
                switch (c) {
                case 'h':
                        printf("%s", usage);
                        return 0;
                case 'k':
                        arg_key_file = optarg;
                        break;
                case 'l':
                        if (!address)
                                goto bad;
                        arg_listen = optarg;
                        break;
                case 'q':
                        if (!address)
                                goto bad;
                        arg_qr = true;
                        break;
                default:
                bad:
                        fprintf(stderr, "%s", usage);
                        return -EINVAL;
                }
        if (optind < argc) {
                fprintf(stderr, "%s: unexpected argument '%s'\n", n2p_program, argv[optind]);
                return -EINVAL;
        }
        return 1;
}

#if N2P_HAVE_QRENCODE
/* Two modules per character cell with half blocks, so the code stays square in
 * a terminal. Light modules are the ones drawn, as `qrencode -t UTF8` does:
 * a terminal's text is light on dark, and the quiet zone must be light. */
static int print_qr(const char *text) {
        static const char *const cell[4] = {
                [0] = " ",              /* both dark */
                [1] = "\u2584",         /* lower light */
                [2] = "\u2580",         /* upper light */
                [3] = "\u2588",         /* both light */
        };
        QRcode *qr;
        int width;

        /* Byte mode: the address is lower-case, which alphanumeric mode cannot hold. */
        qr = QRcode_encodeString8bit(text, 0, QR_ECLEVEL_L);
        if (!qr)
                return -errno;
        width = qr->width + 2 * QR_QUIET_ZONE;
        for (int y = 0; y < width; y += 2) {
                for (int x = 0; x < width; x++) {
                        int mx = x - QR_QUIET_ZONE, up = y - QR_QUIET_ZONE, lo = up + 1;
                        bool in_x = mx >= 0 && mx < qr->width;
                        /* bit 0 of each module byte is "dark" */
                        bool up_light = !(in_x && up >= 0 && up < qr->width &&
                                          (qr->data[up * qr->width + mx] & 1));
                        bool lo_light = y + 1 >= width ||
                                        !(in_x && lo >= 0 && lo < qr->width &&
                                          (qr->data[lo * qr->width + mx] & 1));
                        fputs(cell[up_light << 1 | lo_light], stdout);
                }
                putchar('\n');
        }
        QRcode_free(qr);
        return 0;
}
#endif

int n2p_address_main(int argc, char **argv) {
        static const char usage[] =
                "Usage: n2pctl address [--secret-key-file FILE] [--listen ADDR:PORT] [--qr]\n\n"
                "Print the node's short and long addresses.\n\n"
                "  -h --help                 show this help\n"
                "     --secret-key-file FILE the node's key (created if missing)\n"
                "     --listen ADDR:PORT     the server's UDP endpoint (default 0.0.0.0:7787)\n"
                "     --qr                   also show the long address as a QR code\n";
        struct sockaddr_storage listen, eps[N2P_ADDR_MAX_ENDPOINTS];
        n2p_addr a = { .is_long = true };
        char err[128];
        n2p_key key;
        size_t n;
        int r;

        r = parse_argv(argc, argv, true, usage);
        if (r <= 0)
                return r;
#if !N2P_HAVE_QRENCODE
        /* Before touching the key, so that nothing is created for a request that fails. */
        if (arg_qr)
                return n2p_log_error("--qr: n2pctl was built without QR support (libqrencode)");
#endif
        r = n2p_endpoint_parse(arg_listen ?: "0.0.0.0", N2P_DEFAULT_PORT, &listen, err, sizeof err);
        if (r < 0)
                return n2p_log_error("invalid --listen '%s': %s", arg_listen, err);
        r = n2p_identity(arg_key_file, false, &key);
        if (r < 0)
                return r;
        memcpy(a.key, key.ed_public, 32);
        n2p_key_wipe(&key);

        r = n2p_local_endpoints(&listen, eps, N2P_ADDR_MAX_ENDPOINTS, &n);
        if (r < 0)
                return n2p_log_error_errno(r, "cannot list local addresses: %m");
        memcpy(a.endpoints, eps, n * sizeof eps[0]);
        a.n_endpoints = n;

        g_autofree char *s = n2p_addr_format_short(a.key);
        g_autofree char *l = n2p_addr_format_long(&a);
        if (!l)
                return n2p_log_error("cannot format the long address");
        printf("short address: %s\nlong address: %s\n", s, l);
#if N2P_HAVE_QRENCODE
        if (arg_qr) {
                putchar('\n');
                r = print_qr(l);
                if (r < 0)
                        return n2p_log_error_errno(r, "cannot make a QR code of the long address: %m");
        }
#endif
        return 0;
}

int n2p_keygen_main(int argc, char **argv) {
        static const char usage[] =
                "Usage: n2pctl keygen [--secret-key-file FILE]\n\n"
                "Create a new secret key (never overwrites one) and print its short address.\n\n"
                "  -h --help                 show this help\n"
                "     --secret-key-file FILE where to write it (default: the node's key file)\n";
        g_autofree char *def = NULL;
        const char *path;
        n2p_key key;
        int r;

        r = parse_argv(argc, argv, false, usage);
        if (r <= 0)
                return r;
        path = arg_key_file;
        if (!path) {
                path = def = n2p_key_default_path();
                if (!path)
                        return n2p_log_error("no default key location: use --secret-key-file");
        }
        n2p_key_generate(&key);
        r = n2p_key_save(path, &key);
        if (r == -EEXIST) {
                n2p_key_wipe(&key);
                return n2p_log_error("%s already exists; refusing to overwrite a secret key", path);
        }
        if (r < 0) {
                n2p_key_wipe(&key);
                return n2p_log_error_errno(r, "cannot write %s: %m", path);
        }
        g_autofree char *s = n2p_addr_format_short(key.ed_public);
        n2p_key_wipe(&key);
        fprintf(stderr, "%s: wrote %s\n", n2p_program, path);
        printf("%s\n", s);
        return 0;
}

int n2p_key_main(int argc, char **argv) {
        static const char usage[] =
                "Usage: n2pctl key [--secret-key-file FILE]\n\n"
                "Print this node's key as a client presents it (its short address): the line\n"
                "a server lists in its --authorized-keys file to let this node connect.\n\n"
                "  -h --help                 show this help\n"
                "     --secret-key-file FILE the key (default: the node's key file, created if\n"
                "                            missing)\n";
        n2p_key key;
        int r;

        r = parse_argv(argc, argv, false, usage);
        if (r <= 0)
                return r;
        r = n2p_identity(arg_key_file, false, &key);
        if (r < 0)
                return r;
        g_autofree char *s = n2p_addr_format_short(key.ed_public);
        n2p_key_wipe(&key);
        printf("%s\n", s);
        return 0;
}
