/* SPDX-License-Identifier: MIT */
/*
 * The client role (`n2pctl connect ADDR`, `n2p client ADDR`): establish a session
 * with the peer, then serve a local unix socket whose every connection becomes
 * one stream to the peer's nix-daemon. Prints `unix:PATH` once the socket
 * accepts connections.
 *
 * An attempt sends the same INIT on every path it has at once (the endpoints of
 * a long address, a LAN broadcast, the rendezvous service) and takes the first
 * answer; the node answers a duplicate with the same RESP. When an established
 * session is lost, the next local connection starts a new attempt.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <glib-unix.h>
#include <ifaddrs.h>
#include <net/if.h>
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
#include "control.h"
#include "ice.h"
#include "link.h"
#include "log.h"
#include "relay.h"
#include "rendezvous.h"
#include "signalling.h"
#include "transport.h"
#include "util.h"

static char *arg_address;
static char *arg_socket;
static unsigned arg_timeout;
static char *arg_key_file;
static bool arg_one_time_key;
static char *arg_stun;
static char *arg_turn;
static char *arg_turn_file;
static char *arg_rendezvous;

enum {
        RESEND_INTERVAL_MS = 1000,
        MAX_CONNECTIONS = 64,      /* local Nix connections served at once */
        MAX_PENDING = 64,          /* local connections waiting for a session */
        MAX_BROADCASTS = 8,
};

typedef struct Client Client;

/* One try at a session: its ICE agent, handshake, signalling sockets, and (once
 * connected) the session. Freed from an idle callback, never from inside one of
 * its own libnice or session callbacks. */
typedef struct Attempt {
        Client *client;
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
        uint8_t rv_error;                   /* what the rendezvous said, if anything */
        bool rv_heard;
        bool turn_failed;                   /* a TURN server was set, but no relayed candidate came */
        n2p_cipher tx, rx;
        n2p_session *session;
        n2p_link *link;                     /* the session's carrier, over ICE datagrams */
        bool connected;
        bool ended;
} Attempt;

struct Client {
        GMainLoop *loop;
        int exit_code;
        bool quitting;
        n2p_key key;
        n2p_addr addr;
        char *peer;                         /* the peer's short address */
        n2p_ice_config cfg;
        n2p_turn turn;
        char *stun_host;
        struct sockaddr_storage rv;
        bool have_rv;
        Attempt *attempt;
        bool ever_connected;
        int listen_fd;
        bool activated;
        char *socket_path;
        guint listen_watch, idle_timer;
        GPtrArray *relays;
        GQueue pending;                     /* accepted fds waiting for a session */
        n2p_control *control;
        unsigned n_sessions;                /* established so far */
};

static void attempt_start(Client *c);

static void quit(Client *c, int code) {
        if (code)
                c->exit_code = code;
        c->quitting = true;
        g_main_loop_quit(c->loop);
}

static void stop_signalling(Attempt *a) {
        for (int i = 0; i < 2; i++) {
                if (a->udp_watch[i])
                        g_source_remove(a->udp_watch[i]);
                a->udp_watch[i] = 0;
                if (a->udp[i] >= 0)
                        close(a->udp[i]);
                a->udp[i] = -1;
        }
        if (a->resend_timer)
                g_source_remove(a->resend_timer);
        if (a->deadline_timer)
                g_source_remove(a->deadline_timer);
        a->resend_timer = a->deadline_timer = 0;
}

static gboolean attempt_free_cb(gpointer userdata) {
        Attempt *a = userdata;
        stop_signalling(a);
        a->session = n2p_session_free(a->session);
        a->link = n2p_link_free(a->link);
        a->ice = n2p_ice_free(a->ice);
        n2p_noise_wipe(&a->hs);
        n2p_cipher_wipe(&a->tx);
        n2p_cipher_wipe(&a->rx);
        g_free(a);
        return G_SOURCE_REMOVE;
}

/* The attempt (or the session it made) is over. Before the first success that is
 * the end of the program, with the reason; afterwards the next connection tries
 * again. */
static void attempt_end(Attempt *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void attempt_end(Attempt *a, const char *fmt, ...) {
        Client *c = a->client;
        char buf[768];
        va_list ap;

        if (a->ended)
                return;
        a->ended = true;
        va_start(ap, fmt);
        vsnprintf(buf, sizeof buf, fmt, ap);
        va_end(ap);

        stop_signalling(a);
        if (c->attempt == a)
                c->attempt = NULL;
        g_idle_add(attempt_free_cb, a);

        if (c->quitting)
                return;
        if (!c->ever_connected) {
                n2p_log_error("%s", buf);
                quit(c, 1);
                return;
        }
        n2p_log_error("%s; a new session is tried for the next connection", buf);
        while (!g_queue_is_empty(&c->pending))
                close(GPOINTER_TO_INT(g_queue_pop_head(&c->pending)));
}

static gboolean on_idle_timeout(gpointer userdata) {
        Client *c = userdata;
        c->idle_timer = 0;
        n2p_log_info("no connection for %u s, exiting (--timeout)", arg_timeout);
        quit(c, 0);
        return G_SOURCE_REMOVE;
}

static void update_idle(Client *c) {
        bool busy = c->relays->len > 0 || !g_queue_is_empty(&c->pending);
        if (busy && c->idle_timer) {
                g_source_remove(c->idle_timer);
                c->idle_timer = 0;
        } else if (!busy && arg_timeout > 0 && !c->idle_timer)
                c->idle_timer = g_timeout_add_seconds(arg_timeout, on_idle_timeout, c);
}

static void relay_free(gpointer p) {
        n2p_relay_free(p);
}

static void on_relay_done(n2p_relay *r, int error, void *userdata) {
        Client *c = userdata;
        if (error < 0 && error != -ECONNRESET && error != -ECONNABORTED)
                n2p_log_warning("connection to the peer's nix-daemon ended: %s", strerror(-error));
        g_ptr_array_remove_fast(c->relays, r);
        update_idle(c);
}

/* A local connection becomes a stream, or waits for a session. */
static void serve(Client *c, int fd) {
        Attempt *a = c->attempt;

        if (!a || !a->connected) {
                if (g_queue_get_length(&c->pending) >= MAX_PENDING) {
                        n2p_log_warning("%d connections already wait for the session, refusing another", MAX_PENDING);
                        close(fd);
                        return;
                }
                g_queue_push_tail(&c->pending, GINT_TO_POINTER(fd));
                if (!a)
                        attempt_start(c);
                return;
        }
        if (c->relays->len >= MAX_CONNECTIONS) {
                n2p_log_warning("%d connections already open, refusing another", MAX_CONNECTIONS);
                close(fd);
                return;
        }
        n2p_stream *st = n2p_session_open_stream(a->session);
        if (!st) {
                n2p_log_warning("cannot open a stream to the peer: %m");
                close(fd);
                return;
        }
        n2p_relay *r = n2p_relay_new(st, fd, on_relay_done, c);
        if (!r) {
                n2p_stream_reset(st, EIO);
                close(fd);
                return;
        }
        g_ptr_array_add(c->relays, r);
}

static gboolean on_accept(int fd, GIOCondition cond, gpointer userdata) {
        Client *c = userdata;

        for (unsigned i = 0; i < 16; i++) {
                int conn = accept4(fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
                if (conn < 0) {
                        if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED)
                                n2p_log_warning("accept failed, ignoring: %m");
                        break;
                }
                serve(c, conn);
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

static int take_activated_socket(Client *c) {
        int n = sd_listen_fds(true);

        if (n < 0)
                return n2p_log_error_errno(n, "socket activation failed: %m");
        if (n > 1)
                return n2p_log_error("expected one socket from the service manager, got %d", n);
        if (n == 1) {
                if (sd_is_socket_unix(SD_LISTEN_FDS_START, SOCK_STREAM, 1, NULL, 0) <= 0)
                        return n2p_log_error("the socket passed by the service manager is not a listening unix stream socket");
                c->listen_fd = SD_LISTEN_FDS_START;
                c->activated = true;
                (void) g_unix_set_fd_nonblocking(c->listen_fd, true, NULL);
        }
        return 0;
}

static int open_listener(Client *c) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        int r;

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

static ssize_t carrier_send(const uint8_t *buf, size_t len, void *userdata) {
        Attempt *a = userdata;
        return n2p_link_write(a->link, buf, len);
}

static ssize_t link_send(const uint8_t *buf, size_t len, void *userdata) {
        Attempt *a = userdata;
        return n2p_ice_send(a->ice, buf, len);
}

static void on_link_recv(n2p_link *l, const uint8_t *buf, size_t len, void *userdata) {
        Attempt *a = userdata;
        if (a->session && !a->ended)
                (void) n2p_session_feed(a->session, buf, len);
}

static void on_link_writable(n2p_link *l, void *userdata) {
        Attempt *a = userdata;
        if (a->session && !a->ended)
                n2p_session_writable(a->session);
}

static const n2p_link_callbacks link_callbacks = {
        .recv = on_link_recv,
        .writable = on_link_writable,
};

static void on_session_closed(n2p_session *s, int error, void *userdata) {
        Attempt *a = userdata;
        if (error == -ESHUTDOWN)
                attempt_end(a, "%s stopped or restarted, which ended the session", a->client->peer);
        else if (error == -ETIMEDOUT)
                attempt_end(a, "lost the connection to %s (nothing heard from it for %.1f s)", a->client->peer,
                            N2P_SESSION_SILENCE_MS / 1000.0);
        else if (error < 0)
                attempt_end(a, "the session with %s ended: %s", a->client->peer, strerror(-error));
        else
                attempt_end(a, "the peer %s closed the session", a->client->peer);
}

static void on_stream_opened(n2p_session *s, n2p_stream *st, void *userdata) {
        n2p_stream_reset(st, EPERM);   /* servers do not open streams to clients */
}

static const n2p_session_callbacks session_callbacks = {
        .stream_opened = on_stream_opened,
        .closed = on_session_closed,
};

static void on_connected(Attempt *a) {
        Client *c = a->client;

        n2p_log_info("connected to %s (%s <-> %s)", c->peer, n2p_ice_local_type(a->ice), n2p_ice_remote_type(a->ice));
        a->connected = true;
        c->n_sessions++;
        n2p_session_ping(a->session);

        if (c->listen_fd < 0) {
                if (open_listener(c) < 0)
                        return quit(c, 1);
                printf("unix:%s\n", c->socket_path);
                fflush(stdout);
        }
        if (!c->listen_watch)
                c->listen_watch = g_unix_fd_add(c->listen_fd, G_IO_IN, on_accept, c);
        if (!c->ever_connected)
                sd_notify(false, "READY=1");
        c->ever_connected = true;
        while (!g_queue_is_empty(&c->pending))
                serve(c, GPOINTER_TO_INT(g_queue_pop_head(&c->pending)));
        update_idle(c);
}

static void send_to(Attempt *a, const struct sockaddr_storage *to, const uint8_t *buf, size_t len) {
        int fd = a->udp[to->ss_family == AF_INET ? 0 : 1];
        char t[80];
        if (fd >= 0 && sendto(fd, buf, len, MSG_DONTWAIT, (const struct sockaddr *) to, n2p_sockaddr_len(to)) < 0)
                n2p_log_debug("sending to %s failed: %m", n2p_endpoint_format(to, t, sizeof t));
}

static void broadcast(int fd, unsigned ifindex, const uint8_t *buf, size_t len) {
        struct sockaddr_in to = { .sin_family = AF_INET, .sin_port = htons(N2P_DEFAULT_PORT),
                                  .sin_addr.s_addr = htonl(INADDR_BROADCAST) };
        union {
                struct cmsghdr align;
                char buf[CMSG_SPACE(sizeof(struct in_pktinfo))];
        } control = {};
        struct iovec iov = { (void *) buf, len };
        struct msghdr mh = { .msg_name = &to, .msg_namelen = sizeof to, .msg_iov = &iov, .msg_iovlen = 1,
                             .msg_control = control.buf, .msg_controllen = sizeof control.buf };
        struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
        cm->cmsg_level = IPPROTO_IP;
        cm->cmsg_type = IP_PKTINFO;
        cm->cmsg_len = CMSG_LEN(sizeof(struct in_pktinfo));
        ((struct in_pktinfo *) CMSG_DATA(cm))->ipi_ifindex = (int) ifindex;
        if (sendmsg(fd, &mh, MSG_DONTWAIT) < 0)
                n2p_log_debug("LAN discovery on interface %u failed: %m", ifindex);
}

/* The INIT goes out on every path at once. */
static void send_init(Attempt *a) {
        Client *c = a->client;
        uint8_t pkt[N2P_RV_MAX_PACKET];
        size_t len;

        for (size_t i = 0; i < c->addr.n_endpoints; i++)
                if (!a->rejected[i])
                        send_to(a, &c->addr.endpoints[i], a->init, a->init_len);

        /* LAN discovery: the limited broadcast 255.255.255.255 out of every IPv4
         * interface (IP_PKTINFO picks it), so it needs neither a broadcast address
         * configured nor a route; only the node with the key answers. */
        if (a->udp[0] >= 0 && n2p_signal_make_discover(c->addr.key, a->init, a->init_len, pkt, sizeof pkt, &len) == 0) {
                struct ifaddrs *ifa = NULL;
                unsigned done[MAX_BROADCASTS], n = 0;
                if (getifaddrs(&ifa) == 0) {
                        for (struct ifaddrs *i = ifa; i && n < MAX_BROADCASTS; i = i->ifa_next) {
                                unsigned idx;
                                bool seen = false;
                                if (!i->ifa_addr || i->ifa_addr->sa_family != AF_INET ||
                                    !(i->ifa_flags & IFF_UP) || (i->ifa_flags & IFF_LOOPBACK) ||
                                    !(idx = if_nametoindex(i->ifa_name)))
                                        continue;
                                for (unsigned k = 0; k < n; k++)
                                        seen |= done[k] == idx;
                                if (seen)
                                        continue;
                                done[n++] = idx;
                                broadcast(a->udp[0], idx, pkt, len);
                        }
                        freeifaddrs(ifa);
                }
        }

        if (c->have_rv) {
                int r = n2p_rv_make_offer(c->addr.key, a->init, a->init_len, pkt, sizeof pkt);
                if (r > 0)
                        send_to(a, &c->rv, pkt, (size_t) r);
        }
}

static gboolean on_resend(gpointer userdata) {
        send_init(userdata);
        return G_SOURCE_CONTINUE;
}

static gboolean on_deadline(gpointer userdata) {
        Attempt *a = userdata;
        Client *c = a->client;
        g_autoptr(GString) why = g_string_new(NULL);
        char t[80];

        a->deadline_timer = 0;
        for (size_t i = 0; i < c->addr.n_endpoints; i++)
                g_string_append_printf(why, "%s%s", why->len ? ", " : "direct to ",
                                       n2p_endpoint_format(&c->addr.endpoints[i], t, sizeof t));
        if (why->len)
                g_string_append(why, ": no answer; ");
        g_string_append(why, "LAN discovery: no answer");
        if (c->have_rv) {
                n2p_endpoint_format(&c->rv, t, sizeof t);
                if (a->rv_error)
                        g_string_append_printf(why, "; rendezvous %s: %s", t, n2p_rv_strerror(a->rv_error));
                else if (!a->rv_heard)
                        g_string_append_printf(why, "; rendezvous %s: no answer (unreachable or not running)", t);
                else
                        g_string_append_printf(why, "; rendezvous %s: the node did not answer", t);
        }
        attempt_end(a, "cannot reach %s within %d s (%s)", c->peer, N2P_HANDSHAKE_TIMEOUT_MS / 1000, why->str);
        return G_SOURCE_REMOVE;
}

static void handle_resp(Attempt *a, const uint8_t *pkt, size_t len) {
        Client *c = a->client;
        n2p_ice_desc answer;
        uint8_t status;
        int r;

        if (a->answered)
                return;
        r = n2p_signal_read_resp(&a->hs, a->index, pkt, len, &status, &answer);
        if (r < 0)
                return;    /* not ours, or forged: keep waiting for the real one */
        a->answered = true;
        stop_signalling(a);
        if (status != N2P_REFUSE_OK)
                return attempt_end(a, "%s refused the session: %s", c->peer, n2p_refuse_reason(status));
        r = n2p_noise_split(&a->hs, &a->tx, &a->rx);
        if (r < 0)
                return attempt_end(a, "handshake with %s failed: %s", c->peer, strerror(-r));
        /* The session exists before the path does, so nothing the peer sends right
         * after its side connected is lost; streams open only once we are connected. */
        a->link = n2p_link_new(&a->tx, &a->rx, link_send, &link_callbacks, a);
        if (a->link)
                a->session = n2p_session_new(true, &a->tx, &a->rx, carrier_send, a, &session_callbacks, a);
        /* The link seals every byte with keys from the same handshake. */
        if (a->session)
                (void) n2p_session_set_sealed_carrier(a->session);
        if (!a->session)
                return attempt_end(a, "cannot create the session");
        if (n2p_ice_set_remote(a->ice, &answer) < 0)
                return attempt_end(a, "cannot use the ICE answer of %s", c->peer);
}

static void handle_reject(Attempt *a, const uint8_t *pkt, size_t len, const struct sockaddr_storage *from) {
        Client *c = a->client;
        uint32_t receiver;
        uint8_t reason;
        size_t n_rejected = 0;
        char t[80];

        if (n2p_signal_parse_reject(pkt, len, &receiver, &reason) < 0 || receiver != a->index)
                return;
        /* Unauthenticated, so it only counts for the endpoint it came from, and only
         * ends the attempt once every path has said so or cannot answer. */
        for (size_t i = 0; i < c->addr.n_endpoints; i++) {
                if (n2p_endpoint_equal(&c->addr.endpoints[i], from))
                        a->rejected[i] = true;
                n_rejected += a->rejected[i];
        }
        if (n_rejected > 0 && n_rejected == c->addr.n_endpoints && (!c->have_rv || a->rv_error))
                attempt_end(a, "the node at %s is not %s (%s): wrong address, or the server's key changed",
                            n2p_endpoint_format(from, t, sizeof t), c->peer, n2p_refuse_reason(reason));
}

static void handle_datagram(Attempt *a, const uint8_t *pkt, size_t len, const struct sockaddr_storage *from) {
        Client *c = a->client;
        const uint8_t *inner;
        size_t inner_len;
        uint8_t code, target[32];

        if (len == 0)
                return;
        switch (pkt[0]) {
        case N2P_PKT_RESP:
                return handle_resp(a, pkt, len);
        case N2P_PKT_REJECT:
                return handle_reject(a, pkt, len, from);
        case N2P_RV_DELIVER:
                if (!c->have_rv || !n2p_endpoint_equal(from, &c->rv) ||
                    n2p_rv_parse_deliver(pkt, len, &inner, &inner_len) < 0)
                        return;
                a->rv_heard = true;
                if (inner[0] == N2P_PKT_RESP)
                        handle_resp(a, inner, inner_len);
                return;
        case N2P_RV_ERROR:
                if (!c->have_rv || !n2p_endpoint_equal(from, &c->rv) ||
                    n2p_rv_parse_error(pkt, len, &code, target) < 0 || memcmp(target, c->addr.key, 32) != 0)
                        return;
                a->rv_heard = true;
                a->rv_error = code;
                /* With nothing else to try, say it now rather than at the deadline. */
                if (code == N2P_RV_ERR_UNKNOWN_KEY && c->addr.n_endpoints == 0)
                        n2p_log_debug("rendezvous: %s", n2p_rv_strerror(code));
                return;
        default:
                return;
        }
}

static gboolean on_udp(int fd, GIOCondition cond, gpointer userdata) {
        Attempt *a = userdata;
        uint8_t pkt[N2P_RV_MAX_PACKET + 1];

        for (unsigned i = 0; i < 16 && !a->answered && !a->ended; i++) {
                struct sockaddr_storage from;
                socklen_t from_len = sizeof from;
                ssize_t n = recvfrom(fd, pkt, sizeof pkt, MSG_DONTWAIT, (struct sockaddr *) &from, &from_len);
                if (n < 0)
                        break;
                if (n <= N2P_RV_MAX_PACKET)
                        handle_datagram(a, pkt, (size_t) n, &from);
        }
        return G_SOURCE_CONTINUE;
}

static void start_signalling(Attempt *a) {
        Client *c = a->client;
        n2p_ice_desc offer;
        int r;

        r = n2p_ice_get_local(a->ice, &offer);
        if (r < 0)
                return attempt_end(a, "cannot gather ICE candidates: %s", strerror(-r));
        if (c->cfg.turn_host) {
                bool relay = false;
                for (size_t i = 0; i < offer.n_candidates; i++)
                        relay |= offer.candidates[i].type == N2P_ICE_CAND_RELAY;
                if (!relay) {
                        a->turn_failed = true;
                        n2p_log_warning("TURN server %s:%u gave no relayed candidate: wrong user name or "
                                        "password, or the server is unreachable", c->cfg.turn_host, c->cfg.turn_port);
                }
        }
        a->index = randombytes_random() | 1;
        r = n2p_signal_make_init(&c->key, c->addr.key, a->index, &offer, &a->hs, a->init, sizeof a->init, &a->init_len);
        if (r < 0)
                return attempt_end(a, "cannot build the handshake: %s", strerror(-r));

        for (int fam = 0; fam < 2; fam++) {
                bool needed = fam == 0;   /* IPv4 always: LAN discovery */
                for (size_t i = 0; i < c->addr.n_endpoints; i++)
                        needed |= (c->addr.endpoints[i].ss_family == AF_INET6) == (fam == 1);
                needed |= c->have_rv && (c->rv.ss_family == AF_INET6) == (fam == 1);
                if (!needed)
                        continue;
                a->udp[fam] = socket(fam == 0 ? AF_INET : AF_INET6, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
                if (a->udp[fam] < 0) {
                        n2p_log_debug("no IPv%d socket: %m", fam == 0 ? 4 : 6);
                        continue;
                }
                if (fam == 0)
                        (void) setsockopt(a->udp[0], SOL_SOCKET, SO_BROADCAST, &(int) { 1 }, sizeof(int));
                a->udp_watch[fam] = g_unix_fd_add(a->udp[fam], G_IO_IN, on_udp, a);
        }
        if (a->udp[0] < 0 && a->udp[1] < 0)
                return attempt_end(a, "cannot open a UDP socket to reach %s", c->peer);
        send_init(a);
        a->resend_timer = g_timeout_add(RESEND_INTERVAL_MS, on_resend, a);
        a->deadline_timer = g_timeout_add(N2P_HANDSHAKE_TIMEOUT_MS, on_deadline, a);
}

static void on_ice_event(n2p_ice *ice, n2p_ice_event ev, void *userdata) {
        Attempt *a = userdata;
        switch (ev) {
        case N2P_ICE_GATHERED:
                start_signalling(a);
                break;
        case N2P_ICE_CONNECTED:
                on_connected(a);
                break;
        case N2P_ICE_FAILED:
                if (a->connected)
                        attempt_end(a, "lost the connection to %s", a->client->peer);
                else if (a->turn_failed)
                        attempt_end(a, "%s answered, but no network path to it worked (ICE failed), and the "
                                    "TURN server %s:%u refused or did not answer (wrong TURN user name or password?)",
                                    a->client->peer, a->client->cfg.turn_host, a->client->cfg.turn_port);
                else
                        attempt_end(a, "%s answered, but no network path to it worked (ICE failed)", a->client->peer);
                if (a->session)
                        n2p_session_close(a->session, -ECONNRESET);   /* resets its streams */
                break;
        }
}

static void on_ice_recv(n2p_ice *ice, const uint8_t *buf, size_t len, void *userdata) {
        Attempt *a = userdata;
        if (a->link && !a->ended)
                (void) n2p_link_input(a->link, buf, len);   /* forged or replayed: dropped */
}

static void on_ice_writable(n2p_ice *ice, void *userdata) {
        Attempt *a = userdata;
        if (a->link && !a->ended)
                n2p_link_path_writable(a->link);
}

static const n2p_ice_callbacks ice_callbacks = {
        .event = on_ice_event,
        .recv = on_ice_recv,
        .writable = on_ice_writable,
};

static void attempt_start(Client *c) {
        Attempt *a = g_new0(Attempt, 1);
        a->client = c;
        a->udp[0] = a->udp[1] = -1;
        c->attempt = a;
        a->ice = n2p_ice_new(NULL, &c->cfg, true, &ice_callbacks, a);
        if (!a->ice || n2p_ice_gather(a->ice) < 0)
                attempt_end(a, "cannot start ICE");
}

static void status_text(GString *out, void *userdata) {
        Client *c = userdata;
        Attempt *a = c->attempt;

        g_string_append_printf(out, "client of %s (pid %d)\n", c->peer, (int) getpid());
        if (c->socket_path)
                g_string_append_printf(out, "  socket       unix:%s\n", c->socket_path);
        g_string_append_printf(out, "  state        %s\n", !a ? "idle" : a->connected ? "connected" : "connecting");
        g_string_append_printf(out, "  sessions     %u established so far\n", c->n_sessions);
        g_string_append_printf(out, "  connections  %u open, %u waiting\n", c->relays->len, g_queue_get_length(&c->pending));
        if (!a || !a->connected || !a->session)
                return;
        g_string_append_printf(out, "  pair         %s <-> %s\n", n2p_ice_local_type(a->ice), n2p_ice_remote_type(a->ice));
        g_string_append_printf(out, "  cipher       %s\n", n2p_link_cipher(a->link));
        g_string_append_printf(out, "  rtt          %.1f ms\n", n2p_session_rtt_us(a->session) / 1000.0);
        g_string_append_printf(out, "  sent         %" G_GUINT64_FORMAT " bytes\n", n2p_session_bytes_sent(a->session));
        g_string_append_printf(out, "  received     %" G_GUINT64_FORMAT " bytes\n", n2p_session_bytes_received(a->session));
        g_string_append_printf(out, "  streams      %u\n", n2p_session_n_streams(a->session));
}

static gboolean on_quit_signal(gpointer userdata) {
        quit(userdata, 0);
        return G_SOURCE_CONTINUE;
}

static int parse_argv(int argc, char **argv) {
        enum { ARG_SOCKET = 0x100, ARG_TIMEOUT, ARG_KEY, ARG_ONE_TIME, ARG_STUN, ARG_TURN, ARG_TURN_FILE,
               ARG_RENDEZVOUS, ARG_VERSION };
        static const struct option options[] = {
                { "help",                  no_argument,       NULL, 'h' },
                { "version",               no_argument,       NULL, ARG_VERSION },
                { "verbose",               no_argument,       NULL, 'v' },
                { "socket",                required_argument, NULL, ARG_SOCKET },
                { "timeout",               required_argument, NULL, ARG_TIMEOUT },
                { "secret-key-file",       required_argument, NULL, ARG_KEY },
                { "one-time-key",          no_argument,       NULL, ARG_ONE_TIME },
                { "stun",                  required_argument, NULL, ARG_STUN },
                { "turn",                  required_argument, NULL, ARG_TURN },
                { "turn-credentials-file", required_argument, NULL, ARG_TURN_FILE },
                { "rendezvous",            required_argument, NULL, ARG_RENDEZVOUS },
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
                               "     --stun HOST:PORT        STUN server for server-reflexive candidates\n"
                               "     --turn turn:USER:PASS@HOST:PORT\n"
                               "                             TURN server for relayed candidates\n"
                               "     --turn-credentials-file FILE\n"
                               "                             the same, read from a file (mode 0600)\n"
                               "     --rendezvous HOST:PORT  rendezvous service that knows the peer\n"
                               "                             (default: the hint in its long address)\n",
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
                case ARG_STUN:
                        arg_stun = optarg;
                        break;
                case ARG_TURN:
                        arg_turn = optarg;
                        break;
                case ARG_TURN_FILE:
                        arg_turn_file = optarg;
                        break;
                case ARG_RENDEZVOUS:
                        arg_rendezvous = optarg;
                        break;
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
        if (arg_turn && arg_turn_file)
                return n2p_log_error("--turn and --turn-credentials-file exclude each other");
        return 1;
}

static int configure(Client *c) {
        char err[160];
        int r;

        r = n2p_addr_parse(arg_address, &c->addr, err, sizeof err);
        if (r < 0)
                return n2p_log_error("invalid address: %s", err);
        c->peer = n2p_addr_format_short(c->addr.key);

        if (arg_stun) {
                r = n2p_parse_stun(arg_stun, &c->stun_host, &c->cfg.stun_port);
                if (r < 0)
                        return r;
                c->cfg.stun_host = c->stun_host;
        }
        r = arg_turn ? n2p_parse_turn(arg_turn, &c->turn) : arg_turn_file ? n2p_read_turn_file(arg_turn_file, &c->turn) : 0;
        if (r < 0)
                return r;
        c->cfg.turn_host = c->turn.host;
        c->cfg.turn_port = c->turn.port;
        c->cfg.turn_user = c->turn.user;
        c->cfg.turn_pass = c->turn.pass;
        c->cfg.reliable = false;

        const char *rv = arg_rendezvous ?: (c->addr.rendezvous[0] ? c->addr.rendezvous : NULL);
        if (rv) {
                if (n2p_endpoint_parse(rv, N2P_RV_DEFAULT_PORT, &c->rv, err, sizeof err) < 0)
                        return n2p_log_error("invalid rendezvous '%s': %s", rv, err);
                c->have_rv = true;
        }
        return 0;
}

int n2p_connect_main(int argc, char **argv) {
        Client c = { .listen_fd = -1 };
        int r;

        r = parse_argv(argc, argv);
        if (r <= 0)
                return r;
        r = configure(&c);
        if (r < 0)
                goto out;
        r = n2p_identity(arg_key_file, arg_one_time_key, &c.key);
        if (r < 0)
                goto out;
        r = take_activated_socket(&c);
        if (r < 0)
                goto out;
        c.socket_path = g_strdup(arg_socket);

        signal(SIGPIPE, SIG_IGN);
        c.loop = g_main_loop_new(NULL, false);
        c.relays = g_ptr_array_new_with_free_func(relay_free);
        g_queue_init(&c.pending);
        g_unix_signal_add(SIGTERM, on_quit_signal, &c);
        g_unix_signal_add(SIGINT, on_quit_signal, &c);
        if (c.activated)
                c.listen_watch = g_unix_fd_add(c.listen_fd, G_IO_IN, on_accept, &c);
        {
                g_autofree char *dir = n2p_control_dir();
                char hex[9];
                sodium_bin2hex(hex, sizeof hex, c.addr.key, 4);
                g_autofree char *path = g_strdup_printf("%s/client-%s-%d.ctl", dir, hex, (int) getpid());
                r = n2p_control_open(path, status_text, &c, &c.control);
                if (r < 0)
                        n2p_log_debug("no control socket at %s: %s", path, strerror(-r));
        }
        attempt_start(&c);
        g_main_loop_run(c.loop);

        c.control = n2p_control_free(c.control);
        if (c.listen_watch)
                g_source_remove(c.listen_watch);
        if (c.idle_timer)
                g_source_remove(c.idle_timer);
        if (c.listen_fd >= 0 && !c.activated) {
                (void) unlink(c.socket_path);
                close(c.listen_fd);
        }
        while (!g_queue_is_empty(&c.pending))
                close(GPOINTER_TO_INT(g_queue_pop_head(&c.pending)));
        g_ptr_array_free(c.relays, true);
        if (c.attempt) {
                Attempt *a = c.attempt;
                c.attempt = NULL;
                attempt_free_cb(a);
        }
        /* Attempts ended earlier are freed from idle callbacks: run them. */
        for (unsigned i = 0; i < 100 && g_main_context_iteration(NULL, false); i++)
                ;
        g_main_loop_unref(c.loop);
        r = c.exit_code ? -EIO : 0;
out:
        n2p_key_wipe(&c.key);
        n2p_turn_clear(&c.turn);
        g_free(c.stun_host);
        g_free(c.socket_path);
        g_free(c.peer);
        return r;
}
