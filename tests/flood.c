/* SPDX-License-Identifier: MIT */
/*
 * flood: hostile traffic for tests/e2e-hostile.sh, to a node's signalling port.
 *
 *   flood --to IP:PORT --server ADDR [--random N] [--truncated N] [--handshakes N]
 *         [--source IP]... [--pps N] [--max-seconds S]
 *
 * Sends, shuffled together: N datagrams of random bytes and random length
 * (0..N2P_PKT_MAX), N truncated copies of a real INIT, and N complete INITs, each
 * from a fresh random client key (valid handshakes a node without
 * --authorized-keys would accept). With several --source addresses the datagrams
 * take turns among them, so the per-source handshake limit is not all a node
 * shows. Answers are read and the RESPs decrypted, to count the refusals the
 * node sends. Bounded in count and time: exits 2 if --max-seconds passes first.
 * Test tool only; never installed.
 */

#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <glib.h>
#include <netinet/in.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "addr.h"
#include "key.h"
#include "signalling.h"
#include "util.h"
#include "wire.h"

enum { MAX_SOURCES = 64, MAX_HANDSHAKES = 100000 };

typedef struct Counts {
        unsigned long resp_unauthorized, resp_other, resp_bad, reject, other;
} Counts;

static double now_s(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
}

static int parse_count(const char *s, unsigned long max, unsigned long *ret) {
        char *end;
        errno = 0;
        unsigned long v = strtoul(s, &end, 10);
        if (errno || end == s || *end || v > max)
                return -EINVAL;
        *ret = v;
        return 0;
}

/* The offer inside every INIT: well-formed, pointing nowhere useful. */
static n2p_ice_desc dummy_offer(void) {
        n2p_ice_desc d = { .n_candidates = 1 };
        struct sockaddr_in *in = (struct sockaddr_in *) &d.candidates[0].addr;
        g_strlcpy(d.ufrag, "flod", sizeof d.ufrag);
        g_strlcpy(d.pwd, "floodfloodfloodfloodflood", sizeof d.pwd);
        d.candidates[0].type = N2P_ICE_CAND_HOST;
        d.candidates[0].priority = 2130706431;
        g_strlcpy(d.candidates[0].foundation, "1", sizeof d.candidates[0].foundation);
        in->sin_family = AF_INET;
        in->sin_port = htons(9);
        inet_pton(AF_INET, "192.0.2.9", &in->sin_addr);
        return d;
}

static int make_init(const uint8_t server_ed[32], uint32_t sender, n2p_handshake *hs,
                     uint8_t *out, size_t *ret_len) {
        n2p_ice_desc offer = dummy_offer();
        n2p_key k;
        n2p_key_generate(&k);
        int r = n2p_signal_make_init(&k, server_ed, sender, &offer, hs, out, N2P_PKT_MAX, ret_len);
        n2p_key_wipe(&k);
        return r;
}

static void drain(int fd, n2p_handshake *hs, unsigned long n_hs, Counts *c) {
        uint8_t pkt[N2P_PKT_MAX + 1];
        for (unsigned i = 0; i < 1024; i++) {
                ssize_t n = recv(fd, pkt, sizeof pkt, MSG_DONTWAIT);
                if (n < 0)
                        return;
                int t = n2p_signal_type(pkt, (size_t) n);
                if (t == N2P_PKT_REJECT) {
                        c->reject++;
                        continue;
                }
                if (t != N2P_PKT_RESP || n < N2P_PKT_RESP_HEADER) {
                        c->other++;
                        continue;
                }
                uint32_t receiver = n2p_get_be32(pkt + 8);
                uint8_t status;
                n2p_ice_desc answer;
                if (receiver == 0 || receiver > n_hs ||
                    n2p_signal_read_resp(&hs[receiver - 1], receiver, pkt, (size_t) n, &status, &answer) < 0)
                        c->resp_bad++;
                else if (status == N2P_REFUSE_UNAUTHORIZED)
                        c->resp_unauthorized++;
                else
                        c->resp_other++;
        }
}

static void usage(FILE *f) {
        fprintf(f, "Usage: flood --to IP:PORT --server ADDR [--random N] [--truncated N]\n"
                   "             [--handshakes N] [--source IP]... [--pps N] [--max-seconds S]\n");
}

int main(int argc, char **argv) {
        static const struct option options[] = {
                { "to",          required_argument, NULL, 't' },
                { "server",      required_argument, NULL, 'S' },
                { "random",      required_argument, NULL, 'r' },
                { "truncated",   required_argument, NULL, 'T' },
                { "handshakes",  required_argument, NULL, 'H' },
                { "source",      required_argument, NULL, 's' },
                { "pps",         required_argument, NULL, 'p' },
                { "max-seconds", required_argument, NULL, 'm' },
                { "help",        no_argument,       NULL, 'h' },
                {}
        };
        unsigned long n_random = 40000, n_trunc = 10000, n_hs = 1000, pps = 20000, max_s = 60;
        const char *to = NULL, *server = NULL, *sources[MAX_SOURCES];
        int fds[MAX_SOURCES], n_src = 0, c, rc = 1;
        struct sockaddr_storage dst;
        n2p_addr addr;
        char err[200];
        Counts cnt = {};
        n2p_handshake *hs = NULL;

        while ((c = getopt_long(argc, argv, "h", options, NULL)) >= 0) {
                int r = 0;
                switch (c) {
                case 't': to = optarg; break;
                case 'S': server = optarg; break;
                case 'r': r = parse_count(optarg, 10000000, &n_random); break;
                case 'T': r = parse_count(optarg, 10000000, &n_trunc); break;
                case 'H': r = parse_count(optarg, MAX_HANDSHAKES, &n_hs); break;
                case 'p': r = parse_count(optarg, 1000000, &pps); break;
                case 'm': r = parse_count(optarg, 3600, &max_s); break;
                case 's':
                        if (n_src == MAX_SOURCES) {
                                fprintf(stderr, "flood: at most %d --source\n", MAX_SOURCES);
                                return 1;
                        }
                        sources[n_src++] = optarg;
                        break;
                case 'h': usage(stdout); return 0;
                default: usage(stderr); return 1;
                }
                if (r < 0) {
                        fprintf(stderr, "flood: invalid number '%s'\n", optarg);
                        return 1;
                }
        }
        if (!to || !server || optind < argc || pps == 0 || max_s == 0) {
                usage(stderr);
                return 1;
        }
        if (sodium_init() < 0) {
                fprintf(stderr, "flood: libsodium failed to initialise\n");
                return 1;
        }
        if (n2p_endpoint_parse(to, N2P_DEFAULT_PORT, &dst, err, sizeof err) < 0 ||
            n2p_addr_parse(server, &addr, err, sizeof err) < 0) {
                fprintf(stderr, "flood: %s\n", err);
                return 1;
        }
        socklen_t dst_len = dst.ss_family == AF_INET ? sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6);

        for (int i = 0; i < MAX_SOURCES; i++)
                fds[i] = -1;
        if (n_src == 0)
                sources[n_src++] = NULL;
        for (int i = 0; i < n_src; i++) {
                fds[i] = socket(dst.ss_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
                if (fds[i] < 0) {
                        perror("flood: socket");
                        goto out;
                }
                if (sources[i]) {
                        struct sockaddr_storage src = { .ss_family = dst.ss_family };
                        void *a = dst.ss_family == AF_INET ?
                                (void *) &((struct sockaddr_in *) &src)->sin_addr :
                                (void *) &((struct sockaddr_in6 *) &src)->sin6_addr;
                        if (inet_pton(dst.ss_family, sources[i], a) != 1) {
                                fprintf(stderr, "flood: --source %s: not a numeric address of the --to family\n", sources[i]);
                                goto out;
                        }
                        if (bind(fds[i], (struct sockaddr *) &src, dst_len) < 0) {
                                fprintf(stderr, "flood: bind %s: %s\n", sources[i], strerror(errno));
                                goto out;
                        }
                }
        }

        /* A real INIT to cut short: the first bytes of the real thing get furthest
         * into a parser before it must give up. */
        uint8_t real[N2P_PKT_MAX], pkt[N2P_PKT_MAX];
        size_t real_len;
        n2p_handshake scratch;
        if (make_init(addr.key, 1, &scratch, real, &real_len) < 0) {
                fprintf(stderr, "flood: cannot build an INIT\n");
                goto out;
        }
        n2p_noise_wipe(&scratch);
        hs = g_new0(n2p_handshake, n_hs ? n_hs : 1);

        unsigned long left_r = n_random, left_t = n_trunc, left_h = n_hs, sent = 0, send_errors = 0;
        unsigned long total = n_random + n_trunc + n_hs;
        double t0 = now_s();
        while (sent < total) {
                unsigned long pick = randombytes_uniform((uint32_t) (left_r + left_t + left_h));
                size_t len;
                if (pick < left_h) {
                        uint32_t sender = (uint32_t) (n_hs - left_h + 1);
                        if (make_init(addr.key, sender, &hs[sender - 1], pkt, &len) < 0) {
                                fprintf(stderr, "flood: cannot build an INIT\n");
                                goto out;
                        }
                        left_h--;
                } else if (pick < left_h + left_t) {
                        len = randombytes_uniform((uint32_t) real_len);
                        memcpy(pkt, real, len);
                        left_t--;
                } else {
                        len = randombytes_uniform(N2P_PKT_MAX + 1);
                        randombytes_buf(pkt, len);
                        left_r--;
                }
                int fd = fds[sent % (unsigned long) n_src];
                if (sendto(fd, pkt, len, 0, (struct sockaddr *) &dst, dst_len) < 0)
                        send_errors++;
                sent++;
                if (sent % 256 == 0) {
                        for (int i = 0; i < n_src; i++)
                                drain(fds[i], hs, n_hs, &cnt);
                        double due = t0 + (double) sent / (double) pps, now = now_s();
                        if (now - t0 > (double) max_s) {
                                fprintf(stderr, "flood: --max-seconds %lu passed after %lu of %lu datagrams\n",
                                        max_s, sent, total);
                                rc = 2;
                                goto out;
                        }
                        if (due > now)
                                g_usleep((gulong) ((due - now) * 1e6));
                }
        }
        double dt = now_s() - t0;
        /* Late answers: the node may still be working through its queue. */
        for (int k = 0; k < 20; k++) {
                g_usleep(50000);
                for (int i = 0; i < n_src; i++)
                        drain(fds[i], hs, n_hs, &cnt);
        }
        printf("sent %lu random, %lu truncated, %lu handshakes from %d source%s in %.1f s (%lu send errors); "
               "answers: %lu RESP refusing (not authorized), %lu other RESP, %lu unreadable RESP, %lu REJECT, %lu other\n",
               n_random, n_trunc, n_hs, n_src, n_src == 1 ? "" : "s", dt, send_errors,
               cnt.resp_unauthorized, cnt.resp_other, cnt.resp_bad, cnt.reject, cnt.other);
        rc = 0;
out:
        if (hs) {
                sodium_memzero(hs, sizeof *hs * (n_hs ? n_hs : 1));
                g_free(hs);
        }
        for (int i = 0; i < MAX_SOURCES; i++)
                if (fds[i] >= 0)
                        close(fds[i]);
        return rc;
}
