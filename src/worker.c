/* SPDX-License-Identifier: MIT */
/*
 * One peer session on the server side, in its own process: the ICE agent, the
 * encrypted stream session on top of it, and one relay per stream to nix-daemon.
 * The server (cmd-server.c) did the handshake and talks to us over fd 3
 * (worker.h). We exit when the session ends, when ICE fails, or when the server
 * goes away.
 */
#include <errno.h>
#include <getopt.h>
#include <glib-unix.h>
#include <signal.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "common.h"
#include "ice.h"
#include "link.h"
#include "log.h"
#include "relay.h"
#include "transport.h"
#include "util.h"
#include "worker.h"

typedef struct Worker {
        GMainLoop *loop;
        int exit_code;
        const char *nix_socket;
        const char *peer;                 /* client's short address, for logs */
        n2p_ice *ice;
        n2p_ice_config cfg;
        n2p_turn turn;
        n2p_ice_desc offer;
        bool have_offer, connected, have_keys;
        n2p_cipher tx, rx;
        n2p_session *session;
        n2p_link *link;                   /* the session's carrier, over ICE datagrams */
        GPtrArray *relays;
        guint ctl_watch, connect_timer, stats_timer;
        bool lingering;                   /* GOAWAY sent, exiting shortly */
} Worker;

enum { GOAWAY_LINGER_MS = 300 };

static void finish(Worker *w, int code) {
        if (w->exit_code == 0)
                w->exit_code = code;
        g_main_loop_quit(w->loop);
}

static void relay_free(gpointer p) {
        n2p_relay_free(p);
}

static ssize_t carrier_send(const uint8_t *buf, size_t len, void *userdata) {
        Worker *w = userdata;
        return n2p_link_write(w->link, buf, len);
}

static ssize_t link_send(const uint8_t *buf, size_t len, void *userdata) {
        Worker *w = userdata;
        return n2p_ice_send(w->ice, buf, len);
}

static void on_link_recv(n2p_link *l, const uint8_t *buf, size_t len, void *userdata) {
        Worker *w = userdata;
        if (w->session)
                (void) n2p_session_feed(w->session, buf, len);   /* errors close it: on_session_closed */
}

static void on_link_writable(n2p_link *l, void *userdata) {
        Worker *w = userdata;
        if (w->session)
                n2p_session_writable(w->session);
}

static const n2p_link_callbacks link_callbacks = {
        .recv = on_link_recv,
        .writable = on_link_writable,
};

static void on_relay_done(n2p_relay *r, int error, void *userdata) {
        Worker *w = userdata;
        if (error < 0)
                n2p_log_debug("stream for %s ended: %s", w->peer, strerror(-error));
        g_ptr_array_remove_fast(w->relays, r);   /* frees it */
}

/* A new Nix connection from the peer: connect it to our nix-daemon. */
static void on_stream_opened(n2p_session *s, n2p_stream *st, void *userdata) {
        Worker *w = userdata;
        struct sockaddr_un sa = { .sun_family = AF_UNIX };

        if (strlen(w->nix_socket) >= sizeof sa.sun_path) {
                n2p_stream_reset(st, ENAMETOOLONG);
                return;
        }
        strcpy(sa.sun_path, w->nix_socket);
        _cleanup_close_ int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0 || connect(fd, (struct sockaddr *) &sa, sizeof sa) < 0) {
                int e = errno;
                n2p_log_warning("cannot reach nix-daemon at %s for %s: %s", w->nix_socket, w->peer, strerror(e));
                n2p_stream_reset(st, e);
                return;
        }
        n2p_relay *r = n2p_relay_new(st, fd, on_relay_done, w);
        if (!r) {
                n2p_stream_reset(st, EIO);
                return;
        }
        fd = -1;   /* the relay owns it now */
        g_ptr_array_add(w->relays, r);
}

static gboolean on_linger_done(gpointer userdata) {
        finish(userdata, 0);
        return G_SOURCE_REMOVE;
}

/* The server stopped or restarted, or we were told to stop: GOAWAY, and a moment
 * for it to leave, so the client starts a new session at once instead of waiting
 * for consent freshness to fail. */
static void stop(Worker *w) {
        if (w->lingering)
                return;
        if (!w->session) {
                finish(w, 0);
                return;
        }
        w->lingering = true;
        n2p_session_close(w->session, -ESHUTDOWN);
        g_timeout_add(GOAWAY_LINGER_MS, on_linger_done, w);
}

static void on_session_closed(n2p_session *s, int error, void *userdata) {
        Worker *w = userdata;
        if (error == -ESHUTDOWN)
                return;   /* we closed it: on_linger_done finishes */
        if (error == -ETIMEDOUT)
                n2p_log_warning("lost the connection to %s (nothing heard from it for %.1f s)", w->peer,
                                N2P_SESSION_SILENCE_MS / 1000.0);
        else if (error < 0)
                n2p_log_warning("session with %s failed: %s", w->peer, strerror(-error));
        finish(w, error < 0 ? 1 : 0);
}

static const n2p_session_callbacks session_callbacks = {
        .stream_opened = on_stream_opened,
        .closed = on_session_closed,
};

/* The session exists as soon as the keys do: the client may send right after its
 * side connected, before our CONNECTED event is dispatched, and those bytes must
 * not be lost. Until the path is up the carrier just takes nothing. */
static void maybe_start_session(Worker *w) {
        if (w->session || !w->have_keys)
                return;
        w->link = n2p_link_new(&w->tx, &w->rx, link_send, &link_callbacks, w);
        if (w->link)
                w->session = n2p_session_new(false, &w->tx, &w->rx, carrier_send, w, &session_callbacks, w);
        /* The link seals every byte with keys from the same handshake. */
        if (w->session)
                (void) n2p_session_set_sealed_carrier(w->session);
        if (!w->session) {
                n2p_log_error("cannot create the session for %s", w->peer);
                finish(w, 1);
                return;
        }
}

static void send_ctl(Worker *w, const uint8_t *buf, size_t len) {
        if (send(N2P_CTL_FD, buf, len, MSG_NOSIGNAL) < 0) {
                n2p_log_error_errno(-errno, "lost the server: %m");
                finish(w, 1);
        }
}

static gboolean on_stats_timer(gpointer userdata);

static void on_ice_event(n2p_ice *ice, n2p_ice_event ev, void *userdata) {
        Worker *w = userdata;
        uint8_t msg[N2P_CTL_MAX];
        n2p_ice_desc local;
        size_t len;

        switch (ev) {
        case N2P_ICE_GATHERED:
                if (w->cfg.turn_host && n2p_ice_get_local(ice, &local) == 0) {
                        bool relay = false;
                        for (size_t i = 0; i < local.n_candidates; i++)
                                relay |= local.candidates[i].type == N2P_ICE_CAND_RELAY;
                        if (!relay)
                                n2p_log_warning("TURN server %s:%u gave no relayed candidate: wrong user name "
                                                "or password, or the server is unreachable",
                                                w->cfg.turn_host, w->cfg.turn_port);
                }
                if (n2p_ice_get_local(ice, &local) < 0 ||
                    n2p_ice_desc_encode(&local, msg + 1, sizeof msg - 1, &len) < 0 ||
                    n2p_ice_set_remote(ice, &w->offer) < 0) {
                        uint8_t fail[5] = { N2P_CTL_FAIL };
                        n2p_put_be32(fail + 1, EINVAL);
                        n2p_log_error("cannot prepare an ICE answer for %s", w->peer);
                        send_ctl(w, fail, sizeof fail);
                        finish(w, 1);
                        return;
                }
                msg[0] = N2P_CTL_ANSWER;
                send_ctl(w, msg, len + 1);
                break;
        case N2P_ICE_CONNECTED:
                if (w->connect_timer) {
                        g_source_remove(w->connect_timer);
                        w->connect_timer = 0;
                }
                w->connected = true;
                n2p_session_ping(w->session);
                if (!w->stats_timer)
                        w->stats_timer = g_timeout_add_seconds(1, on_stats_timer, w);
                /* Now, not a second later: until the first report, the server's
                 * status shows this session as still connecting. */
                (void) on_stats_timer(w);
                n2p_log_info("session with %s established (%s <-> %s)", w->peer,
                             n2p_ice_local_type(w->ice), n2p_ice_remote_type(w->ice));
                break;
        case N2P_ICE_FAILED:
                if (w->session)
                        n2p_log_warning("lost the connection to %s", w->peer);
                else
                        n2p_log_warning("could not connect to %s (ICE failed)", w->peer);
                if (w->session)
                        n2p_session_close(w->session, -ECONNRESET);
                finish(w, 1);
                break;
        }
}

static void on_ice_recv(n2p_ice *ice, const uint8_t *buf, size_t len, void *userdata) {
        Worker *w = userdata;
        if (w->link)
                (void) n2p_link_input(w->link, buf, len);   /* forged or replayed: dropped */
}

static void on_ice_writable(n2p_ice *ice, void *userdata) {
        Worker *w = userdata;
        if (w->link)
                n2p_link_path_writable(w->link);
}

static const n2p_ice_callbacks ice_callbacks = {
        .event = on_ice_event,
        .recv = on_ice_recv,
        .writable = on_ice_writable,
};

/* INIT from the server: the offer, and the TURN server to use. */
static int start(Worker *w, const uint8_t *buf, size_t n) {
        size_t olen, tlen;

        if (n < 35 || (olen = n2p_get_be16(buf + 33)) > n - 35 - 2 ||
            n2p_ice_desc_decode(buf + 35, olen, &w->offer) < 0 ||
            (tlen = n2p_get_be16(buf + 35 + olen)) != n - 35 - olen - 2)
                return n2p_log_error("malformed INIT from the server");
        if (tlen > 0) {
                g_autofree char *t = g_strndup((const char *) buf + 37 + olen, tlen);
                int r = n2p_parse_turn(t, &w->turn);
                sodium_memzero(t, tlen);
                if (r < 0)
                        return r;
                w->cfg.turn_host = w->turn.host;
                w->cfg.turn_port = w->turn.port;
                w->cfg.turn_user = w->turn.user;
                w->cfg.turn_pass = w->turn.pass;
        }
        w->have_offer = true;
        w->ice = n2p_ice_new(NULL, &w->cfg, false, &ice_callbacks, w);
        if (!w->ice)
                return n2p_log_error("cannot create the ICE agent");
        if (n2p_ice_gather(w->ice) < 0)
                return n2p_log_error("cannot gather ICE candidates");
        return 0;
}

static gboolean on_ctl(int fd, GIOCondition cond, gpointer userdata) {
        Worker *w = userdata;
        uint8_t buf[N2P_CTL_MAX + 1];
        ssize_t n = recv(fd, buf, sizeof buf, MSG_DONTWAIT);

        if (n < 0 && (errno == EAGAIN || errno == EINTR))
                return G_SOURCE_CONTINUE;
        if (n <= 0) {
                /* The server is gone (stopped or restarted): so is this session. */
                w->ctl_watch = 0;
                stop(w);
                return G_SOURCE_REMOVE;
        }
        if (buf[0] == N2P_CTL_INIT && !w->have_offer && w->ice == NULL) {
                if (start(w, buf, (size_t) n) < 0)
                        finish(w, 1);
        } else if (buf[0] == N2P_CTL_KEYS && w->have_offer && !w->have_keys && n == 65) {
                memcpy(w->tx.k, buf + 1, 32);
                memcpy(w->rx.k, buf + 33, 32);
                w->tx.n = w->rx.n = 0;
                w->have_keys = true;
                maybe_start_session(w);
        } else {
                n2p_log_error("unexpected control message %u from the server", buf[0]);
                finish(w, 1);
        }
        sodium_memzero(buf, sizeof buf);
        return G_SOURCE_CONTINUE;
}

static void put_text(uint8_t *buf, size_t *off, const char *t) {
        size_t n = strlen(t) > 32 ? 32 : strlen(t);
        buf[(*off)++] = (uint8_t) n;
        memcpy(buf + *off, t, n);
        *off += n;
}

/* What `n2pctl status` shows about this session, for the server to keep. */
static gboolean on_stats_timer(gpointer userdata) {
        Worker *w = userdata;
        uint8_t msg[N2P_CTL_STATS_FIXED + 3 * 33];
        size_t off = 0;

        if (!w->session)
                return G_SOURCE_CONTINUE;
        msg[off++] = N2P_CTL_STATS;
        n2p_put_be32(msg + off, n2p_session_rtt_us(w->session));
        n2p_put_be64(msg + off + 4, n2p_session_bytes_sent(w->session));
        n2p_put_be64(msg + off + 12, n2p_session_bytes_received(w->session));
        n2p_put_be32(msg + off + 20, n2p_session_n_streams(w->session));
        off += 24;
        put_text(msg, &off, n2p_ice_local_type(w->ice));
        put_text(msg, &off, n2p_ice_remote_type(w->ice));
        put_text(msg, &off, n2p_link_cipher(w->link));
        send_ctl(w, msg, off);
        return G_SOURCE_CONTINUE;
}

static gboolean on_connect_timeout(gpointer userdata) {
        Worker *w = userdata;
        w->connect_timer = 0;
        n2p_log_warning("no connection from %s in time", w->peer);
        finish(w, 1);
        return G_SOURCE_REMOVE;
}

static gboolean on_term(gpointer userdata) {
        stop(userdata);
        return G_SOURCE_CONTINUE;
}

int n2p_worker_main(int argc, char **argv) {
        enum { ARG_NIX = 0x100, ARG_STUN, ARG_LOCAL, ARG_PEER };
        static const struct option options[] = {
                { "nix-daemon-socket", required_argument, NULL, ARG_NIX },
                { "stun",              required_argument, NULL, ARG_STUN },
                { "local-address",     required_argument, NULL, ARG_LOCAL },
                { "peer",              required_argument, NULL, ARG_PEER },
                {}
        };
        Worker w = { .peer = "peer", .nix_socket = "/nix/var/nix/daemon-socket/socket", .cfg.reliable = false };
        g_autofree char *stun_host = NULL;
        int c;

        optind = 0;
        while ((c = getopt_long(argc, argv, "", options, NULL)) >= 0)
                switch (c) {
                case ARG_NIX:
                        w.nix_socket = optarg;
                        break;
                case ARG_STUN:
                        if (n2p_parse_stun(optarg, &stun_host, &w.cfg.stun_port) < 0)
                                return -EINVAL;
                        w.cfg.stun_host = stun_host;
                        break;
                case ARG_LOCAL:
                        w.cfg.local_address = optarg;
                        break;
                case ARG_PEER:
                        w.peer = optarg;
                        break;
                default:
                        return -EINVAL;
                }
        signal(SIGPIPE, SIG_IGN);

        w.loop = g_main_loop_new(NULL, false);
        w.relays = g_ptr_array_new_with_free_func(relay_free);
        w.ctl_watch = g_unix_fd_add(N2P_CTL_FD, G_IO_IN | G_IO_HUP | G_IO_ERR, on_ctl, &w);
        /* Gathering, the answer and the connectivity checks must all fit in this. */
        w.connect_timer = g_timeout_add(N2P_HANDSHAKE_TIMEOUT_MS + N2P_ICE_TIMEOUT_MS, on_connect_timeout, &w);
        g_unix_signal_add(SIGTERM, on_term, &w);

        g_main_loop_run(w.loop);

        /* Relays first: they hold streams of the session. */
        g_ptr_array_free(w.relays, true);
        w.session = n2p_session_free(w.session);
        w.link = n2p_link_free(w.link);
        w.ice = n2p_ice_free(w.ice);
        if (w.ctl_watch)
                g_source_remove(w.ctl_watch);
        if (w.connect_timer)
                g_source_remove(w.connect_timer);
        if (w.stats_timer)
                g_source_remove(w.stats_timer);
        n2p_turn_clear(&w.turn);
        n2p_cipher_wipe(&w.tx);
        n2p_cipher_wipe(&w.rx);
        g_main_loop_unref(w.loop);
        return w.exit_code ? -EIO : 0;
}
