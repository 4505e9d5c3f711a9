/* SPDX-License-Identifier: MIT */
/*
 * n2p-rendezvous: lets a client reach a node behind a NAT by its key alone. Nodes
 * register (signed) from their signalling socket; a client's OFFER is forwarded
 * to the node's registered endpoint with a cookie, and the node's ANSWER comes
 * back to the client. It only ever relays sealed signalling packets.
 *
 * Every table is bounded and every reply to an unverified source is no larger
 * than what that source sent, so the service cannot be used as an amplifier.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <glib-unix.h>
#include <glib.h>
#include <signal.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <systemd/sd-daemon.h>

#include "addr.h"
#include "common.h"
#include "log.h"
#include "ratelimit.h"
#include "rendezvous.h"
#include "util.h"

enum {
        MAX_SECRET = 1024,                /* coturn's static-auth-secret, bytes */
        BAD_SIGNATURE_REPLIES = 10,       /* per second, all sources together */
        RECV_BATCH = 64,                  /* datagrams per wakeup, so timers still run */
};

static const char *arg_listen;
static const char *arg_turn_secret_file;
static unsigned arg_turn_lifetime = N2P_RV_TURN_LIFETIME_S;

typedef struct Registration {
        uint8_t key[32];                  /* first: the hash table's key */
        struct sockaddr_storage endpoint;
        socklen_t endpoint_len;
        uint64_t last_ms;                 /* the node's clock, for replay protection */
        gint64 expiry;                    /* monotonic µs; kept past it while a replay could still pass */
        n2p_bucket offers;
} Registration;

typedef struct Pending {
        uint32_t cookie;
        uint8_t target[32];
        struct sockaddr_storage client;
        socklen_t client_len;
        gint64 expiry;
} Pending;

typedef struct Counters {
        guint64 registrations, offers_forwarded, answers_delivered, creds_sent;
        guint64 malformed, source_limited, target_limited, bad_signature, stale, unknown_key, full,
                unmatched_answer, unpadded;
} Counters;

typedef struct Rendezvous {
        GMainLoop *loop;
        int fd;
        char *turn_secret;
        GHashTable *registrations;        /* key -> Registration */
        GHashTable *pending;              /* cookie -> Pending */
        n2p_ratelimit *sources;           /* per source address, over every message */
        n2p_bucket bad_signature_replies;
        Counters c, reported;
        guint reported_registrations, reported_pending;
} Rendezvous;

/* Keys and source addresses are chosen by whoever sends: hash them with a secret
 * key so that nobody can aim for one bucket of the tables. */
static uint8_t hash_key[crypto_shorthash_KEYBYTES];

static guint hash_bytes(const void *p, size_t n) {
        uint8_t h[crypto_shorthash_BYTES];
        guint v;
        crypto_shorthash(h, p, n, hash_key);
        memcpy(&v, h, sizeof v);
        return v;
}
static guint key_hash(gconstpointer p) {
        return hash_bytes(p, 32);
}
static gboolean key_equal(gconstpointer a, gconstpointer b) {
        return memcmp(a, b, 32) == 0;
}

static void reply(Rendezvous *rv, const uint8_t *buf, int len, const struct sockaddr_storage *to) {
        char t[80];
        if (len <= 0)
                return;
        if (sendto(rv->fd, buf, (size_t) len, MSG_DONTWAIT, (const struct sockaddr *) to, n2p_sockaddr_len(to)) < 0)
                n2p_log_debug("sending to %s failed, ignoring: %m", n2p_endpoint_format(to, t, sizeof t));
}

static void reply_registered(Rendezvous *rv, uint8_t status, const struct sockaddr_storage *to) {
        uint8_t out[64];
        reply(rv, out, n2p_rv_make_registered(status, 0, to, NULL, out, sizeof out), to);
}

static void reply_error(Rendezvous *rv, uint8_t code, const uint8_t target[32], const struct sockaddr_storage *to) {
        uint8_t out[64];
        reply(rv, out, n2p_rv_make_error(code, target, out, sizeof out), to);
}

static int turn_credentials(Rendezvous *rv, const char *label, n2p_rv_creds *ret) {
        return n2p_rv_turn_credentials(rv->turn_secret, label, (uint64_t) (g_get_real_time() / G_USEC_PER_SEC),
                                       arg_turn_lifetime, ret);
}

/* Frees a slot when the table is full: any expired registration will do. */
static bool evict_expired_registration(Rendezvous *rv, gint64 now) {
        GHashTableIter it;
        gpointer v;
        g_hash_table_iter_init(&it, rv->registrations);
        while (g_hash_table_iter_next(&it, NULL, &v))
                if (((Registration *) v)->expiry <= now) {
                        g_hash_table_iter_remove(&it);
                        return true;
                }
        return false;
}

static void handle_register(Rendezvous *rv, const uint8_t *pkt, size_t len,
                            const struct sockaddr_storage *from, gint64 now) {
        uint8_t key[32], out[N2P_RV_MAX_PACKET];
        n2p_rv_creds creds = {};
        uint64_t time_ms, now_ms = (uint64_t) (g_get_real_time() / 1000);
        const uint64_t skew_ms = (uint64_t) N2P_RV_CLOCK_SKEW_S * 1000;
        Registration *reg;
        int r;

        r = n2p_rv_parse_register(pkt, len, key, &time_ms);
        if (r == -EBADMSG) {
                rv->c.bad_signature++;
                if (n2p_bucket_take(&rv->bad_signature_replies, BAD_SIGNATURE_REPLIES, BAD_SIGNATURE_REPLIES, now))
                        reply_registered(rv, N2P_RV_ERR_BAD_SIGNATURE, from);
                return;
        }
        if (r < 0) {
                rv->c.malformed++;
                return;
        }

        reg = g_hash_table_lookup(rv->registrations, key);
        if (time_ms > now_ms + skew_ms || time_ms + skew_ms < now_ms || (reg && time_ms <= reg->last_ms)) {
                rv->c.stale++;
                reply_registered(rv, N2P_RV_ERR_STALE, from);
                return;
        }
        if (!reg) {
                if (g_hash_table_size(rv->registrations) >= N2P_RV_MAX_REGISTRATIONS &&
                    !evict_expired_registration(rv, now)) {
                        rv->c.full++;
                        reply_registered(rv, N2P_RV_ERR_FULL, from);
                        return;
                }
                reg = g_new0(Registration, 1);
                memcpy(reg->key, key, 32);
                reg->offers = (n2p_bucket) { N2P_RV_TARGET_RATE, now };
                g_hash_table_insert(rv->registrations, reg->key, reg);
        }
        reg->endpoint = *from;
        reg->endpoint_len = n2p_sockaddr_len(from);
        reg->last_ms = time_ms;
        reg->expiry = now + (gint64) N2P_RV_LIFETIME_S * G_USEC_PER_SEC;
        rv->c.registrations++;

        g_autofree char *label = n2p_addr_format_short(key);
        if (rv->turn_secret && turn_credentials(rv, label, &creds) < 0)
                n2p_log_debug("cannot make TURN credentials for %s, registering without", label);
        r = n2p_rv_make_registered(N2P_RV_OK, N2P_RV_LIFETIME_S, from, &creds, out, sizeof out);
        sodium_memzero(&creds, sizeof creds);
        reply(rv, out, r, from);
        char t[80];
        n2p_log_debug("registered %s at %s", label, n2p_endpoint_format(from, t, sizeof t));
}

static Registration *live_registration(Rendezvous *rv, const uint8_t key[32], gint64 now) {
        Registration *reg = g_hash_table_lookup(rv->registrations, key);
        return reg && reg->expiry > now ? reg : NULL;
}

static void handle_offer(Rendezvous *rv, const uint8_t *pkt, size_t len,
                         const struct sockaddr_storage *from, gint64 now) {
        uint8_t target[32], out[N2P_RV_MAX_PACKET];
        const uint8_t *init;
        size_t init_len;
        Registration *reg;
        Pending *p;
        int r;

        if (n2p_rv_parse_offer(pkt, len, target, &init, &init_len) < 0) {
                rv->c.malformed++;
                return;
        }
        reg = live_registration(rv, target, now);
        if (!reg) {
                rv->c.unknown_key++;
                reply_error(rv, N2P_RV_ERR_UNKNOWN_KEY, target, from);
                return;
        }
        if (!n2p_bucket_take(&reg->offers, N2P_RV_TARGET_RATE, N2P_RV_TARGET_RATE, now)) {
                rv->c.target_limited++;
                reply_error(rv, N2P_RV_ERR_RATE_LIMITED, target, from);
                return;
        }
        if (g_hash_table_size(rv->pending) >= N2P_RV_MAX_PENDING) {
                rv->c.full++;
                reply_error(rv, N2P_RV_ERR_FULL, target, from);
                return;
        }

        p = g_new0(Pending, 1);
        do
                p->cookie = randombytes_random();
        while (p->cookie == 0 || g_hash_table_contains(rv->pending, GUINT_TO_POINTER(p->cookie)));
        memcpy(p->target, target, 32);
        p->client = *from;
        p->client_len = n2p_sockaddr_len(from);
        p->expiry = now + (gint64) N2P_RV_PENDING_TIMEOUT_S * G_USEC_PER_SEC;

        r = n2p_rv_make_forward(p->cookie, from, init, init_len, out, sizeof out);
        if (r < 0) {
                g_free(p);
                rv->c.malformed++;
                return;
        }
        g_hash_table_insert(rv->pending, GUINT_TO_POINTER(p->cookie), p);
        reply(rv, out, r, &reg->endpoint);
        rv->c.offers_forwarded++;
}

/* Only the target node, from the endpoint it registered, may answer an offer, once. */
static void handle_answer(Rendezvous *rv, const uint8_t *pkt, size_t len,
                          const struct sockaddr_storage *from, gint64 now) {
        uint8_t out[N2P_RV_MAX_PACKET];
        const uint8_t *resp;
        size_t resp_len;
        uint32_t cookie;
        Registration *reg;
        Pending *p;

        if (n2p_rv_parse_answer(pkt, len, &cookie, &resp, &resp_len) < 0) {
                rv->c.malformed++;
                return;
        }
        p = g_hash_table_lookup(rv->pending, GUINT_TO_POINTER(cookie));
        reg = p && p->expiry > now ? live_registration(rv, p->target, now) : NULL;
        if (!reg || !n2p_endpoint_equal(&reg->endpoint, from)) {
                rv->c.unmatched_answer++;
                return;
        }
        reply(rv, out, n2p_rv_make_deliver(resp, resp_len, out, sizeof out), &p->client);
        g_hash_table_remove(rv->pending, GUINT_TO_POINTER(cookie));
        rv->c.answers_delivered++;
}

static void handle_creds_req(Rendezvous *rv, const uint8_t *pkt, size_t len, const struct sockaddr_storage *from) {
        uint8_t out[N2P_RV_MAX_PACKET], acc = 0;
        n2p_rv_creds creds = {};
        int r;

        for (size_t i = 1; i < len; i++)
                acc |= pkt[i];
        if (len < 4 || acc != 0) {
                rv->c.malformed++;
                return;
        }
        if (rv->turn_secret && turn_credentials(rv, "client", &creds) == 0)
                r = n2p_rv_make_creds(N2P_RV_OK, &creds, out, sizeof out);
        else
                r = n2p_rv_make_creds(N2P_RV_ERR_NO_TURN, NULL, out, sizeof out);
        sodium_memzero(&creds, sizeof creds);
        /* The request must be padded (n2p_rv_make_creds_req does) to at least the answer. */
        if (r > (int) len) {
                rv->c.unpadded++;
                sodium_memzero(out, sizeof out);
                return;
        }
        reply(rv, out, r, from);
        sodium_memzero(out, sizeof out);
        rv->c.creds_sent++;
}

static void handle(Rendezvous *rv, const uint8_t *pkt, size_t len, const struct sockaddr_storage *from) {
        gint64 now = g_get_monotonic_time();

        if (from->ss_family != AF_INET && from->ss_family != AF_INET6)
                return;
        if (!n2p_ratelimit_allow(rv->sources, from, now)) {
                rv->c.source_limited++;
                return;
        }
        if (len == 0 || len > N2P_RV_MAX_PACKET) {
                rv->c.malformed++;
                return;
        }
        switch (pkt[0]) {
        case N2P_RV_REGISTER:
                handle_register(rv, pkt, len, from, now);
                break;
        case N2P_RV_OFFER:
                handle_offer(rv, pkt, len, from, now);
                break;
        case N2P_RV_ANSWER:
                handle_answer(rv, pkt, len, from, now);
                break;
        case N2P_RV_CREDS_REQ:
                handle_creds_req(rv, pkt, len, from);
                break;
        default:
                rv->c.malformed++;
        }
}

static gboolean on_udp(int fd, GIOCondition cond, gpointer userdata) {
        Rendezvous *rv = userdata;
        uint8_t pkt[N2P_RV_MAX_PACKET + 1];

        for (unsigned i = 0; i < RECV_BATCH; i++) {
                struct sockaddr_storage from = {};
                socklen_t from_len = sizeof from;
                ssize_t n = recvfrom(fd, pkt, sizeof pkt, MSG_DONTWAIT, (struct sockaddr *) &from, &from_len);
                if (n < 0) {
                        if (errno != EAGAIN && errno != EINTR)
                                n2p_log_warning("receiving failed, ignoring: %m");
                        break;
                }
                handle(rv, pkt, (size_t) n, &from);
        }
        return G_SOURCE_CONTINUE;
}

static void report(Rendezvous *rv) {
        const Counters *c = &rv->c;
        guint64 dropped = c->malformed + c->source_limited + c->target_limited + c->bad_signature + c->stale +
                          c->unknown_key + c->full + c->unmatched_answer + c->unpadded;

        if (memcmp(&rv->c, &rv->reported, sizeof rv->c) == 0 &&
            rv->reported_registrations == g_hash_table_size(rv->registrations) &&
            rv->reported_pending == g_hash_table_size(rv->pending))
                return;
        rv->reported = rv->c;
        rv->reported_registrations = g_hash_table_size(rv->registrations);
        rv->reported_pending = g_hash_table_size(rv->pending);
        sd_notifyf(false, "STATUS=%u registered, %u pending; %" G_GUINT64_FORMAT " offers forwarded, %"
                   G_GUINT64_FORMAT " answers delivered, %" G_GUINT64_FORMAT " refused or dropped",
                   g_hash_table_size(rv->registrations), g_hash_table_size(rv->pending),
                   c->offers_forwarded, c->answers_delivered, dropped);
        n2p_log_debug("registrations %" G_GUINT64_FORMAT ", offers forwarded %" G_GUINT64_FORMAT
                      ", answers delivered %" G_GUINT64_FORMAT ", credentials %" G_GUINT64_FORMAT
                      "; dropped: malformed %" G_GUINT64_FORMAT ", source rate %" G_GUINT64_FORMAT
                      ", target rate %" G_GUINT64_FORMAT ", bad signature %" G_GUINT64_FORMAT
                      ", stale %" G_GUINT64_FORMAT ", unknown key %" G_GUINT64_FORMAT ", full %" G_GUINT64_FORMAT
                      ", unmatched answer %" G_GUINT64_FORMAT ", unpadded %" G_GUINT64_FORMAT,
                      c->registrations, c->offers_forwarded, c->answers_delivered, c->creds_sent, c->malformed,
                      c->source_limited, c->target_limited, c->bad_signature, c->stale, c->unknown_key, c->full,
                      c->unmatched_answer, c->unpadded);
}

static gboolean on_sweep(gpointer userdata) {
        Rendezvous *rv = userdata;
        gint64 now = g_get_monotonic_time();
        uint64_t now_ms = (uint64_t) (g_get_real_time() / 1000);
        GHashTableIter it;
        gpointer v;

        /* An expired registration is kept while its time would still pass the clock
         * check, so that replaying it cannot bring it back. */
        g_hash_table_iter_init(&it, rv->registrations);
        while (g_hash_table_iter_next(&it, NULL, &v)) {
                Registration *reg = v;
                if (reg->expiry <= now && reg->last_ms + (uint64_t) N2P_RV_CLOCK_SKEW_S * 1000 < now_ms)
                        g_hash_table_iter_remove(&it);
        }
        g_hash_table_iter_init(&it, rv->pending);
        while (g_hash_table_iter_next(&it, NULL, &v))
                if (((Pending *) v)->expiry <= now)
                        g_hash_table_iter_remove(&it);
        /* A source idle long enough to have refilled its bucket needs no state. */
        n2p_ratelimit_sweep(rv->sources, now);
        report(rv);
        return G_SOURCE_CONTINUE;
}

static gboolean on_quit_signal(gpointer userdata) {
        Rendezvous *rv = userdata;
        n2p_log_info("stopping");
        g_main_loop_quit(rv->loop);
        return G_SOURCE_CONTINUE;
}

/* coturn's static-auth-secret: one line, readable by us alone. */
static int read_turn_secret(const char *path, char **ret) {
        char buf[MAX_SECRET + 2];
        struct stat st;
        ssize_t n;
        int r = 0;

        _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (fd < 0)
                return n2p_log_error_errno(-errno, "cannot open the TURN secret %s: %m", path);
        if (fstat(fd, &st) < 0)
                return n2p_log_error_errno(-errno, "cannot stat the TURN secret %s: %m", path);
        if (!S_ISREG(st.st_mode))
                return n2p_log_error("the TURN secret %s is not a regular file", path);
        if (!n2p_secret_mode_ok(path, st.st_mode))
                return n2p_log_error("the TURN secret %s is accessible to group or others (mode %04o): "
                                     "chmod 0600 it", path, (unsigned) (st.st_mode & 07777));
        n = read(fd, buf, sizeof buf - 1);
        if (n < 0)
                return n2p_log_error_errno(-errno, "cannot read the TURN secret %s: %m", path);
        buf[n] = 0;
        while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
                buf[--n] = 0;
        if (n > MAX_SECRET)
                r = n2p_log_error("the TURN secret in %s is longer than %d bytes", path, MAX_SECRET);
        else if (n == 0 || strlen(buf) != (size_t) n)
                r = n2p_log_error("the TURN secret %s is empty or not text", path);
        else
                *ret = g_strndup(buf, (size_t) n);
        sodium_memzero(buf, sizeof buf);
        return r;
}

static int open_socket(Rendezvous *rv) {
        struct sockaddr_storage sa;
        char err[128], t[80];
        int n, r;

        n = sd_listen_fds(true);
        if (n < 0)
                return n2p_log_error_errno(n, "socket activation failed: %m");
        if (n > 1)
                return n2p_log_error("expected one socket from the service manager, got %d", n);
        if (n == 1) {
                if (sd_is_socket(SD_LISTEN_FDS_START, AF_UNSPEC, SOCK_DGRAM, -1) <= 0)
                        return n2p_log_error("the socket passed by the service manager is not a datagram socket");
                rv->fd = SD_LISTEN_FDS_START;
                socklen_t len = sizeof sa;
                if (getsockname(rv->fd, (struct sockaddr *) &sa, &len) < 0)
                        return n2p_log_error_errno(-errno, "getsockname: %m");
        } else {
                r = n2p_endpoint_parse(arg_listen ?: "0.0.0.0", N2P_RV_DEFAULT_PORT, &sa, err, sizeof err);
                if (r < 0)
                        return n2p_log_error("invalid --listen '%s': %s", arg_listen, err);
                _cleanup_close_ int fd = socket(sa.ss_family, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
                if (fd < 0)
                        return n2p_log_error_errno(-errno, "cannot create the UDP socket: %m");
                if (bind(fd, (struct sockaddr *) &sa, n2p_sockaddr_len(&sa)) < 0)
                        return n2p_log_error_errno(-errno, "cannot listen on %s: %m",
                                                   n2p_endpoint_format(&sa, t, sizeof t));
                rv->fd = n2p_take_fd(&fd);
        }
        n2p_log_info("listening on %s, %s", n2p_endpoint_format(&sa, t, sizeof t),
                     rv->turn_secret ? "handing out TURN credentials" : "without TURN credentials");
        return 0;
}

static int parse_argv(int argc, char **argv) {
        enum { ARG_VERSION = 0x100, ARG_LISTEN, ARG_TURN_SECRET, ARG_TURN_LIFETIME };
        static const struct option options[] = {
                { "help",             no_argument,       NULL, 'h' },
                { "version",          no_argument,       NULL, ARG_VERSION },
                { "verbose",          no_argument,       NULL, 'v' },
                { "listen",           required_argument, NULL, ARG_LISTEN },
                { "turn-secret-file", required_argument, NULL, ARG_TURN_SECRET },
                { "turn-lifetime",    required_argument, NULL, ARG_TURN_LIFETIME },
                {}
        };
        int c;

        optind = 0;
        while ((c = getopt_long(argc, argv, "hv", options, NULL)) >= 0)
                switch (c) {
                case 'h':
                        printf("Usage: %s [OPTIONS...]\n\n"
                               "Rendezvous service for n2p nodes behind NAT: nodes register their key,\n"
                               "clients' offers are relayed to them, and TURN credentials handed out.\n\n"
                               "  -h --help                   show this help\n"
                               "     --version                show the version\n"
                               "  -v --verbose                log debugging information\n"
                               "     --listen ADDR:PORT       UDP endpoint (default 0.0.0.0:%d; a socket\n"
                               "                              passed by systemd takes precedence)\n"
                               "     --turn-secret-file FILE  coturn's static-auth-secret (mode 0600)\n"
                               "     --turn-lifetime SECS     validity of TURN credentials (default %d)\n",
                               n2p_program, N2P_RV_DEFAULT_PORT, N2P_RV_TURN_LIFETIME_S);
                        return 0;
                case ARG_VERSION:
                        puts("n2p-rendezvous " N2P_VERSION);
                        return 0;
                case 'v':
                        n2p_log_set_debug(1);
                        break;
                case ARG_LISTEN:
                        arg_listen = optarg;
                        break;
                case ARG_TURN_SECRET:
                        arg_turn_secret_file = optarg;
                        break;
                case ARG_TURN_LIFETIME:
                        if (n2p_parse_seconds(optarg, &arg_turn_lifetime) < 0 || arg_turn_lifetime == 0)
                                return n2p_log_error("invalid --turn-lifetime '%s': expected seconds > 0", optarg);
                        break;
                default:
                        fprintf(stderr, "Try '%s --help'.\n", n2p_program);
                        return -EINVAL;
                }
        if (optind < argc)
                return n2p_log_error("unexpected argument '%s'", argv[optind]);
        return 1;
}

static int run(int argc, char **argv) {
        Rendezvous rv = { .fd = -1 };
        int r;

        r = parse_argv(argc, argv);
        if (r <= 0)
                return r;
        if (arg_turn_secret_file) {
                r = read_turn_secret(arg_turn_secret_file, &rv.turn_secret);
                if (r < 0)
                        return r;
        }
        r = open_socket(&rv);
        if (r < 0)
                goto out;

        randombytes_buf(hash_key, sizeof hash_key);
        rv.loop = g_main_loop_new(NULL, false);
        rv.registrations = g_hash_table_new_full(key_hash, key_equal, NULL, g_free);
        rv.pending = g_hash_table_new_full(g_direct_hash, g_direct_equal, NULL, g_free);
        rv.sources = n2p_ratelimit_new(N2P_RV_SOURCE_RATE, N2P_RV_SOURCE_BURST, N2P_RV_MAX_SOURCES);
        rv.bad_signature_replies = (n2p_bucket) { BAD_SIGNATURE_REPLIES, g_get_monotonic_time() };
        guint udp_watch = g_unix_fd_add(rv.fd, G_IO_IN, on_udp, &rv);
        guint sweep = g_timeout_add_seconds(1, on_sweep, &rv);
        guint sigterm = g_unix_signal_add(SIGTERM, on_quit_signal, &rv);
        guint sigint = g_unix_signal_add(SIGINT, on_quit_signal, &rv);
        sd_notify(false, "READY=1\nSTATUS=0 registered");

        g_main_loop_run(rv.loop);

        sd_notify(false, "STOPPING=1");
        g_source_remove(udp_watch);
        g_source_remove(sweep);
        g_source_remove(sigterm);
        g_source_remove(sigint);
        g_hash_table_destroy(rv.registrations);
        g_hash_table_destroy(rv.pending);
        rv.sources = n2p_ratelimit_free(rv.sources);
        g_main_loop_unref(rv.loop);
        r = 0;
out:
        if (rv.fd >= 0)
                close(rv.fd);
        if (rv.turn_secret) {
                sodium_memzero(rv.turn_secret, strlen(rv.turn_secret));
                g_free(rv.turn_secret);
        }
        return r;
}

int main(int argc, char **argv) {
        n2p_program = "n2p-rendezvous";
        n2p_log_init(n2p_program);
        if (sodium_init() < 0) {
                n2p_log_error("cannot initialise libsodium");
                return EXIT_FAILURE;
        }
        return run(argc, argv) < 0 ? EXIT_FAILURE : EXIT_SUCCESS;
}
