/* SPDX-License-Identifier: MIT */
/*
 * The client role (`n2pctl connect ADDR`, `n2p client ADDR`): establish a session
 * with the peer (handshake over UDP to the endpoints in its address, then ICE),
 * then serve a local unix socket whose every connection becomes one stream to
 * the peer's nix-daemon. Prints `unix:PATH` once the socket accepts connections.
 */
#include <errno.h>
#include <getopt.h>
#include <glib-unix.h>
#include <netinet/in.h>
#include <signal.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <systemd/sd-daemon.h>

#include "addr.h"
#include "common.h"
#include "ice.h"
#include "log.h"
#include "relay.h"
#include "signalling.h"
#include "transport.h"
#include "util.h"

static char *arg_address;
static char *arg_socket;
static unsigned arg_timeout;
static char *arg_key_file;
static bool arg_one_time_key;
static char *arg_stun;

enum {
        RESEND_INTERVAL_MS = 1000,
        MAX_CONNECTIONS = 64,      /* local Nix connections served at once */
};

typedef struct Client {
        GMainLoop *loop;
        int exit_code;
        bool quitting;
        n2p_key key;
        n2p_addr addr;
        char *peer;                         /* the peer's short address */
        n2p_ice *ice;
        n2p_handshake hs;
        uint32_t index;
        uint8_t init[N2P_PKT_MAX];
        size_t init_len;
        int udp[2];                         /* IPv4, IPv6 */
        guint udp_watch[2];
        guint resend_timer, deadline_timer;
        bool rejected[N2P_ADDR_MAX_ENDPOINTS];
        bool answered;
        n2p_cipher tx, rx;
        n2p_session *session;
        int listen_fd;
        bool activated;
        char *socket_path;
        guint listen_watch, idle_timer;
        GPtrArray *relays;
} Client;

static void fail(Client *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void fail(Client *c, const char *fmt, ...) {
        va_list ap;
        char buf[512];
        va_start(ap, fmt);
        vsnprintf(buf, sizeof buf, fmt, ap);
        va_end(ap);
        if (!c->quitting)
                n2p_log_error("%s", buf);
        c->exit_code = 1;
        c->quitting = true;
        g_main_loop_quit(c->loop);
}

static void stop_signalling(Client *c) {
        for (int i = 0; i < 2; i++) {
                if (c->udp_watch[i])
                        g_source_remove(c->udp_watch[i]);
                c->udp_watch[i] = 0;
                if (c->udp[i] >= 0)
                        close(c->udp[i]);
                c->udp[i] = -1;
        }
        if (c->resend_timer)
                g_source_remove(c->resend_timer);
        if (c->deadline_timer)
                g_source_remove(c->deadline_timer);
        c->resend_timer = c->deadline_timer = 0;
}

static gboolean on_idle_timeout(gpointer userdata) {
        Client *c = userdata;
        c->idle_timer = 0;
        n2p_log_info("no connection for %u s, exiting (--timeout)", arg_timeout);
        c->quitting = true;
        g_main_loop_quit(c->loop);
        return G_SOURCE_REMOVE;
}

static void update_idle(Client *c) {
        if (c->relays->len > 0 && c->idle_timer) {
                g_source_remove(c->idle_timer);
                c->idle_timer = 0;
        } else if (c->relays->len == 0 && arg_timeout > 0 && !c->idle_timer)
                c->idle_timer = g_timeout_add_seconds(arg_timeout, on_idle_timeout, c);
}

static void on_relay_done(n2p_relay *r, int error, void *userdata) {
        Client *c = userdata;
        if (error < 0 && error != -ECONNRESET)
                n2p_log_warning("connection to the peer's nix-daemon ended: %s", strerror(-error));
        g_ptr_array_remove_fast(c->relays, r);
        update_idle(c);
}

static gboolean on_accept(int fd, GIOCondition cond, gpointer userdata) {
        Client *c = userdata;

        for (unsigned i = 0; i < 16; i++) {
                _cleanup_close_ int conn = accept4(fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
                if (conn < 0) {
                        if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED)
                                n2p_log_warning("accept failed, ignoring: %m");
                        break;
                }
                if (c->relays->len >= MAX_CONNECTIONS) {
                        n2p_log_warning("%d connections already open, refusing another", MAX_CONNECTIONS);
                        continue;
                }
                n2p_stream *st = n2p_session_open_stream(c->session);
                if (!st) {
                        n2p_log_warning("cannot open a stream to the peer: %m");
                        continue;
                }
                g_ptr_array_add(c->relays, n2p_relay_new(st, n2p_take_fd(&conn), on_relay_done, c));
        }
        update_idle(c);
        return G_SOURCE_CONTINUE;
}

static int default_socket_path(const Client *c, char **ret) {
        g_autofree char *dir = NULL;
        const char *rt = g_getenv("XDG_RUNTIME_DIR");
        char hex[9];

        if (rt && *rt)
                dir = g_build_filename(rt, "n2p", NULL);
        else
                dir = g_strdup_printf("/tmp/n2p-%u", (unsigned) getuid());
        if (g_mkdir_with_parents(dir, 0700) < 0)
                return n2p_log_error_errno(-errno, "cannot create %s: %m", dir);
        sodium_bin2hex(hex, sizeof hex, c->addr.key, 4);
        *ret = g_strdup_printf("%s/%s.sock", dir, hex);
        return 0;
}

static int open_listener(Client *c) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        int n = sd_listen_fds(true), r;

        if (n < 0)
                return n2p_log_error_errno(n, "socket activation failed: %m");
        if (n == 1) {
                if (sd_is_socket_unix(SD_LISTEN_FDS_START, SOCK_STREAM, 1, NULL, 0) <= 0)
                        return n2p_log_error("the socket passed by the service manager is not a listening unix stream socket");
                c->listen_fd = SD_LISTEN_FDS_START;
                c->activated = true;
                (void) g_unix_set_fd_nonblocking(c->listen_fd, true, NULL);
                return 0;
        }
        if (n > 1)
                return n2p_log_error("expected one socket from the service manager, got %d", n);

        if (!c->socket_path) {
                r = default_socket_path(c, &c->socket_path);
                if (r < 0)
                        return r;
        }
        if (strlen(c->socket_path) >= sizeof sa.sun_path)
                return n2p_log_error("socket path %s is too long", c->socket_path);
        strcpy(sa.sun_path, c->socket_path);

        _cleanup_close_ int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0)
                return n2p_log_error_errno(-errno, "socket: %m");
        /* A stale socket from a crashed run is replaced; a live one is someone else's. */
        _cleanup_close_ int probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (probe >= 0 && connect(probe, (struct sockaddr *) &sa, sizeof sa) == 0)
                return n2p_log_error("%s is in use by another process", c->socket_path);
        (void) unlink(c->socket_path);
        mode_t old = umask(0077);
        r = bind(fd, (struct sockaddr *) &sa, sizeof sa);
        umask(old);
        if (r < 0)
                return n2p_log_error_errno(-errno, "cannot bind %s: %m", c->socket_path);
        if (chmod(c->socket_path, 0600) < 0 || listen(fd, SOMAXCONN) < 0)
                return n2p_log_error_errno(-errno, "cannot listen on %s: %m", c->socket_path);
        c->listen_fd = n2p_take_fd(&fd);
        return 0;
}

static void relay_free(gpointer p) {
        n2p_relay_free(p);
}

static ssize_t carrier_send(const uint8_t *buf, size_t len, void *userdata) {
        Client *c = userdata;
        ssize_t n = n2p_ice_send(c->ice, buf, len);
        return n == -EAGAIN ? 0 : n;
}

static void on_session_closed(n2p_session *s, int error, void *userdata) {
        Client *c = userdata;
        if (error < 0)
                fail(c, "the session with %s ended: %s", c->peer, strerror(-error));
        else
                fail(c, "the peer %s closed the session", c->peer);
}

static void on_stream_opened(n2p_session *s, n2p_stream *st, void *userdata) {
        n2p_stream_reset(st, EPERM);   /* servers do not open streams to clients */
}

static const n2p_session_callbacks session_callbacks = {
        .stream_opened = on_stream_opened,
        .closed = on_session_closed,
};

static void on_connected(Client *c) {
        c->session = n2p_session_new(true, &c->tx, &c->rx, carrier_send, c, &session_callbacks, c);
        if (!c->session)
                return fail(c, "cannot create the session");
        n2p_log_info("connected to %s (%s <-> %s)", c->peer, n2p_ice_local_type(c->ice), n2p_ice_remote_type(c->ice));
        if (open_listener(c) < 0) {
                c->exit_code = 1;
                c->quitting = true;
                g_main_loop_quit(c->loop);
                return;
        }
        c->listen_watch = g_unix_fd_add(c->listen_fd, G_IO_IN, on_accept, c);
        if (!c->activated) {
                printf("unix:%s\n", c->socket_path);
                fflush(stdout);
        }
        sd_notify(false, "READY=1");
        update_idle(c);
}

static void send_init(Client *c) {
        for (size_t i = 0; i < c->addr.n_endpoints; i++) {
                const struct sockaddr_storage *ep = &c->addr.endpoints[i];
                int fam = ep->ss_family == AF_INET ? 0 : 1;
                if (c->rejected[i] || c->udp[fam] < 0)
                        continue;
                socklen_t len = fam == 0 ? sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6);
                if (sendto(c->udp[fam], c->init, c->init_len, MSG_DONTWAIT, (const struct sockaddr *) ep, len) < 0) {
                        char t[80];
                        n2p_log_debug("sending to %s failed: %m", n2p_endpoint_format(ep, t, sizeof t));
                }
        }
}

static gboolean on_resend(gpointer userdata) {
        send_init(userdata);
        return G_SOURCE_CONTINUE;
}

static gboolean on_deadline(gpointer userdata) {
        Client *c = userdata;
        GString *eps = g_string_new(NULL);
        c->deadline_timer = 0;
        for (size_t i = 0; i < c->addr.n_endpoints; i++) {
                char t[80];
                g_string_append_printf(eps, "%s%s", i ? ", " : "", n2p_endpoint_format(&c->addr.endpoints[i], t, sizeof t));
        }
        fail(c, "no answer from %s at %s within %d s: the server is unreachable or not running",
             c->peer, eps->str, N2P_HANDSHAKE_TIMEOUT_MS / 1000);
        g_string_free(eps, true);
        return G_SOURCE_REMOVE;
}

static void handle_datagram(Client *c, const uint8_t *pkt, size_t len, const struct sockaddr_storage *from) {
        n2p_ice_desc answer;
        uint8_t status;
        int r;

        switch (n2p_signal_type(pkt, len)) {
        case N2P_PKT_RESP:
                if (c->answered)
                        return;
                r = n2p_signal_read_resp(&c->hs, c->index, pkt, len, &status, &answer);
                if (r < 0)
                        return;    /* not ours, or forged: keep waiting for the real one */
                c->answered = true;
                stop_signalling(c);
                if (status != N2P_REFUSE_OK)
                        return fail(c, "%s refused the session: %s", c->peer, n2p_refuse_reason(status));
                r = n2p_noise_split(&c->hs, &c->tx, &c->rx);
                if (r < 0)
                        return fail(c, "handshake with %s failed: %s", c->peer, strerror(-r));
                if (n2p_ice_set_remote(c->ice, &answer) < 0)
                        return fail(c, "cannot use the ICE answer of %s", c->peer);
                return;
        case N2P_PKT_REJECT: {
                uint32_t receiver;
                uint8_t reason;
                size_t i, n_rejected = 0;
                if (n2p_signal_parse_reject(pkt, len, &receiver, &reason) < 0 || receiver != c->index)
                        return;
                /* Unauthenticated, so it only counts for the endpoint it came from, and
                 * only ends the attempt once every endpoint said so. */
                for (i = 0; i < c->addr.n_endpoints; i++) {
                        char a[80], b[80];
                        if (!c->rejected[i] &&
                            strcmp(n2p_endpoint_format(&c->addr.endpoints[i], a, sizeof a),
                                   n2p_endpoint_format(from, b, sizeof b)) == 0)
                                c->rejected[i] = true;
                        n_rejected += c->rejected[i];
                }
                if (n_rejected == c->addr.n_endpoints) {
                        char t[80];
                        fail(c, "the node at %s is not %s (%s): wrong address, or the server's key changed",
                             n2p_endpoint_format(from, t, sizeof t), c->peer, n2p_refuse_reason(reason));
                }
                return;
        }
        default:
                return;
        }
}

static gboolean on_udp(int fd, GIOCondition cond, gpointer userdata) {
        Client *c = userdata;
        uint8_t pkt[N2P_PKT_MAX + 1];
        for (unsigned i = 0; i < 16 && !c->answered && !c->quitting; i++) {
                struct sockaddr_storage from;
                socklen_t from_len = sizeof from;
                ssize_t n = recvfrom(fd, pkt, sizeof pkt, MSG_DONTWAIT, (struct sockaddr *) &from, &from_len);
                if (n < 0)
                        break;
                if (n <= N2P_PKT_MAX)
                        handle_datagram(c, pkt, (size_t) n, &from);
        }
        return G_SOURCE_CONTINUE;
}

static void start_signalling(Client *c) {
        n2p_ice_desc offer;
        int r;

        r = n2p_ice_get_local(c->ice, &offer);
        if (r < 0)
                return fail(c, "cannot gather ICE candidates: %s", strerror(-r));
        c->index = randombytes_random() | 1;
        r = n2p_signal_make_init(&c->key, c->addr.key, c->index, &offer, &c->hs, c->init, sizeof c->init, &c->init_len);
        if (r < 0)
                return fail(c, "cannot build the handshake: %s", strerror(-r));

        for (int fam = 0; fam < 2; fam++) {
                bool needed = false;
                for (size_t i = 0; i < c->addr.n_endpoints; i++)
                        needed |= (c->addr.endpoints[i].ss_family == AF_INET) == (fam == 0);
                if (!needed)
                        continue;
                c->udp[fam] = socket(fam == 0 ? AF_INET : AF_INET6, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
                if (c->udp[fam] < 0) {
                        n2p_log_debug("no IPv%d socket: %m", fam == 0 ? 4 : 6);
                        continue;
                }
                c->udp_watch[fam] = g_unix_fd_add(c->udp[fam], G_IO_IN, on_udp, c);
        }
        if (c->udp[0] < 0 && c->udp[1] < 0)
                return fail(c, "cannot open a UDP socket for any endpoint of %s", c->peer);
        send_init(c);
        c->resend_timer = g_timeout_add(RESEND_INTERVAL_MS, on_resend, c);
        c->deadline_timer = g_timeout_add(N2P_HANDSHAKE_TIMEOUT_MS, on_deadline, c);
}

static void on_ice_event(n2p_ice *ice, n2p_ice_event ev, void *userdata) {
        Client *c = userdata;
        switch (ev) {
        case N2P_ICE_GATHERED:
                start_signalling(c);
                break;
        case N2P_ICE_CONNECTED:
                on_connected(c);
                break;
        case N2P_ICE_FAILED:
                if (c->session)
                        fail(c, "lost the connection to %s", c->peer);
                else
                        fail(c, "%s answered, but no network path to it worked (ICE failed)", c->peer);
                break;
        }
}

static void on_ice_recv(n2p_ice *ice, const uint8_t *buf, size_t len, void *userdata) {
        Client *c = userdata;
        if (c->session)
                (void) n2p_session_feed(c->session, buf, len);
}

static void on_ice_writable(n2p_ice *ice, void *userdata) {
        Client *c = userdata;
        if (c->session)
                n2p_session_writable(c->session);
}

static const n2p_ice_callbacks ice_callbacks = {
        .event = on_ice_event,
        .recv = on_ice_recv,
        .writable = on_ice_writable,
};

static gboolean on_quit_signal(gpointer userdata) {
        Client *c = userdata;
        c->quitting = true;
        g_main_loop_quit(c->loop);
        return G_SOURCE_CONTINUE;
}

static int parse_argv(int argc, char **argv) {
        enum { ARG_SOCKET = 0x100, ARG_TIMEOUT, ARG_KEY, ARG_ONE_TIME, ARG_STUN, ARG_VERSION };
        static const struct option options[] = {
                { "help",            no_argument,       NULL, 'h' },
                { "version",         no_argument,       NULL, ARG_VERSION },
                { "verbose",         no_argument,       NULL, 'v' },
                { "socket",          required_argument, NULL, ARG_SOCKET },
                { "timeout",         required_argument, NULL, ARG_TIMEOUT },
                { "secret-key-file", required_argument, NULL, ARG_KEY },
                { "one-time-key",    no_argument,       NULL, ARG_ONE_TIME },
                { "stun",            required_argument, NULL, ARG_STUN },
                {}
        };
        int c;

        optind = 0;
        while ((c = getopt_long(argc, argv, "hv", options, NULL)) >= 0)
                switch (c) {
                case 'h':
                        printf("Usage: %s ADDRESS [OPTIONS...]\n\n"
                               "Connect to a peer's nix-daemon and serve it on a local unix socket; prints\n"
                               "the store URL `unix:PATH` once the socket accepts connections.\n\n"
                               "  -h --help                  show this help\n"
                               "     --version               show the version\n"
                               "  -v --verbose               log debugging information\n"
                               "     --socket PATH           the local socket (default\n"
                               "                             $XDG_RUNTIME_DIR/n2p/<key prefix>.sock)\n"
                               "     --timeout SECS          exit after SECS without an open connection\n"
                               "                             (0: never)\n"
                               "     --secret-key-file FILE  this client's key (default as the server's)\n"
                               "     --one-time-key          use a random key and store nothing\n"
                               "     --stun HOST:PORT        STUN server for server-reflexive candidates\n",
                               strcmp(n2p_program, "n2p") == 0 ? "n2p client" : "n2pctl connect");
                        return 0;
                case ARG_VERSION:
                        puts("n2pctl " N2P_VERSION);
                        return 0;
                case 'v':
                        n2p_log_set_debug(1);
                        break;
                case ARG_SOCKET:
                        arg_socket = optarg;
                        break;
                case ARG_TIMEOUT:
                        if (n2p_parse_seconds(optarg, &arg_timeout) < 0)
                                return n2p_log_error("invalid --timeout '%s': expected seconds", optarg);
                        break;
                case ARG_KEY:
                        arg_key_file = optarg;
                        break;
                case ARG_ONE_TIME:
                        arg_one_time_key = true;
                        break;
                case ARG_STUN: {
                        g_autofree char *h = NULL;
                        unsigned p;
                        if (n2p_parse_stun(optarg, &h, &p) < 0)
                                return -EINVAL;
                        arg_stun = optarg;
                        break;
                }
                default:
                        fprintf(stderr, "Try '%s --help'.\n", n2p_program);
                        return -EINVAL;
                }
        if (optind + 1 != argc)
                return n2p_log_error(optind >= argc ? "missing the peer's address (see --help)"
                                                    : "too many arguments (see --help)");
        arg_address = argv[optind];
        if (arg_one_time_key && arg_key_file)
                return n2p_log_error("--one-time-key and --secret-key-file exclude each other");
        return 1;
}

int n2p_connect_main(int argc, char **argv) {
        Client c = { .udp = { -1, -1 }, .listen_fd = -1 };
        g_autofree char *stun_host = NULL;
        n2p_ice_config cfg = { .reliable = true };
        char err[160];
        int r;

        r = parse_argv(argc, argv);
        if (r <= 0)
                return r;
        r = n2p_addr_parse(arg_address, &c.addr, err, sizeof err);
        if (r < 0)
                return n2p_log_error("invalid address: %s", err);
        c.peer = n2p_addr_format_short(c.addr.key);
        if (c.addr.n_endpoints == 0)
                return n2p_log_error("%s is a short address, which this version cannot resolve yet: "
                                     "use the node's long address (the server logs it)", c.peer);
        if (arg_stun)
                (void) n2p_parse_stun(arg_stun, &stun_host, &cfg.stun_port);
        cfg.stun_host = stun_host;
        r = n2p_identity(arg_key_file, arg_one_time_key, &c.key);
        if (r < 0)
                return r;
        c.socket_path = g_strdup(arg_socket);

        signal(SIGPIPE, SIG_IGN);
        c.loop = g_main_loop_new(NULL, false);
        c.relays = g_ptr_array_new_with_free_func(relay_free);
        g_unix_signal_add(SIGTERM, on_quit_signal, &c);
        g_unix_signal_add(SIGINT, on_quit_signal, &c);
        c.ice = n2p_ice_new(NULL, &cfg, true, &ice_callbacks, &c);
        if (!c.ice || n2p_ice_gather(c.ice) < 0) {
                n2p_log_error("cannot start ICE");
                c.exit_code = 1;
        } else
                g_main_loop_run(c.loop);

        if (c.listen_watch)
                g_source_remove(c.listen_watch);
        if (c.idle_timer)
                g_source_remove(c.idle_timer);
        if (c.listen_fd >= 0 && !c.activated) {
                (void) unlink(c.socket_path);
                close(c.listen_fd);
        }
        stop_signalling(&c);
        g_ptr_array_free(c.relays, true);
        c.session = n2p_session_free(c.session);
        c.ice = n2p_ice_free(c.ice);
        n2p_noise_wipe(&c.hs);
        n2p_cipher_wipe(&c.tx);
        n2p_cipher_wipe(&c.rx);
        n2p_key_wipe(&c.key);
        g_main_loop_unref(c.loop);
        g_free(c.socket_path);
        g_free(c.peer);
        return c.exit_code ? -EIO : 0;
}
