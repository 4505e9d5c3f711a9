/* SPDX-License-Identifier: MIT */
/*
 * The server role (`n2pd`, `n2pctl server`, `n2p server`): owns the UDP
 * signalling socket and the node's key, answers handshakes, and runs one worker
 * process per peer session (worker.c) that does ICE, the streams and the relays
 * to nix-daemon.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <gio/gio.h>
#include <glib-unix.h>
#include <signal.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <systemd/sd-daemon.h>

#include "addr.h"
#include "authkeys.h"
#include "common.h"
#include "control.h"
#include "log.h"
#include "ratelimit.h"
#include "rendezvous.h"
#include "signalling.h"
#include "util.h"
#include "worker.h"

static char *arg_key_file;
static bool arg_one_time_key;
static unsigned arg_timeout;
static char *arg_listen;
static char *arg_nix_socket = "/nix/var/nix/daemon-socket/socket";
static char *arg_stun;
static char *arg_turn;
static char *arg_turn_file;
static char *arg_rendezvous;
static char *arg_authorized_keys;
static unsigned arg_max_sessions = N2P_MAX_SESSIONS;
static unsigned arg_handshake_rate = N2P_HANDSHAKE_RATE;

/* Where an INIT came from, and so where its answer goes: straight back, or back
 * through the rendezvous service that forwarded it. */
typedef struct Path {
        struct sockaddr_storage to;
        socklen_t to_len;
        bool via_rv;
        uint32_t cookie;
} Path;

typedef struct Server Server;

typedef struct Session {
        Server *server;
        uint32_t index;                   /* ours, the RESP's sender */
        uint32_t peer_index;
        Path path;
        uint8_t init_hash[32];            /* recognises a retransmitted INIT */
        uint8_t client_ed[32];
        char *client;                     /* the client's short address, for logs */
        n2p_handshake hs;                 /* until the answer is sent */
        bool answered;
        uint8_t resp[N2P_PKT_MAX];
        size_t resp_len;
        GSubprocess *proc;
        int ctl_fd;
        guint ctl_watch;
        guint answer_timer;
        /* the worker's latest STATS */
        bool have_stats;
        uint32_t rtt_us, streams;
        uint64_t sent, received;
        char local_type[33], remote_type[33], cipher[33];   /* cipher: what the worker seals with */
} Session;

struct Server {
        GMainLoop *loop;
        n2p_key key;
        int udp_fd;
        guint udp_watch;
        GHashTable *sessions;             /* index -> Session */
        GHashTable *last_init;            /* client X25519 key (hex) -> Seen */
        GQueue seen_order;                /* Seen, least recently updated first */
        unsigned n_pending;
        guint idle_timer;
        guint reject_tokens;              /* REJECTs we may still send this second */
        gint64 reject_second;
        char *local_address;              /* the --listen IP, when not a wildcard */
        n2p_turn turn;                    /* --turn, or credentials from the rendezvous */
        bool have_rv;
        struct sockaddr_storage rv;
        guint rv_timer;
        bool rv_registered, rv_warned;
        gint64 rv_last_ok;                /* monotonic µs of the last REGISTERED */
        struct sockaddr_storage bound;
        n2p_control *control;
        /* what happened to handshakes, for `n2pctl status` */
        uint64_t n_accepted, n_undecryptable, n_replayed, n_busy, n_malformed, n_reject_limited;
        uint64_t n_unauthorized, n_rate_limited;
        n2p_ratelimit *handshake_rate;    /* per source address */
        n2p_bucket handshake_total;       /* all sources together */
        guint sweep_timer;
        n2p_authkeys *authorized;         /* NULL: any key is accepted (and logged) */
        gint64 refusal_second;            /* refusals are logged at a bounded rate */
        unsigned refusal_logged;
        bool one_time_used;               /* --one-time-key: its one session was taken */
};

/* The newest INIT timestamp of one client key, for replay protection. */
typedef struct Seen {
        char key[65];
        uint8_t tai64n[N2P_TAI64N_SIZE];
        GList link;                       /* in Server.seen_order */
} Seen;

static void session_free(Session *s) {
        if (!s)
                return;
        if (s->ctl_watch)
                g_source_remove(s->ctl_watch);
        if (s->answer_timer)
                g_source_remove(s->answer_timer);
        if (s->ctl_fd >= 0)
                close(s->ctl_fd);
        if (!s->answered && s->server)
                s->server->n_pending--;
        n2p_noise_wipe(&s->hs);
        g_clear_object(&s->proc);
        g_free(s->client);
        g_free(s);
}

static void update_status(Server *srv);

static gboolean on_idle_timeout(gpointer userdata) {
        Server *srv = userdata;
        srv->idle_timer = 0;
        n2p_log_info("no session for %u s, exiting (--timeout)", arg_timeout);
        g_main_loop_quit(srv->loop);
        return G_SOURCE_REMOVE;
}

static void update_status(Server *srv) {
        unsigned n = g_hash_table_size(srv->sessions);
        sd_notifyf(false, "STATUS=%u session%s", n, n == 1 ? "" : "s");
        if (n > 0 && srv->idle_timer) {
                g_source_remove(srv->idle_timer);
                srv->idle_timer = 0;
        } else if (n == 0 && arg_timeout > 0 && !srv->idle_timer)
                srv->idle_timer = g_timeout_add_seconds(arg_timeout, on_idle_timeout, srv);
}

static void session_end(Session *s) {
        Server *srv = s->server;
        bool was_one_time = arg_one_time_key && s->answered && s->resp_len > 0 && s->proc;
        g_hash_table_remove(srv->sessions, GUINT_TO_POINTER(s->index));
        update_status(srv);
        /* A one-time address serves one session: when it ends, so does the node. */
        if (was_one_time && srv->one_time_used && g_hash_table_size(srv->sessions) == 0) {
                n2p_log_info("the one session of this one-time key ended, exiting");
                g_main_loop_quit(srv->loop);
        }
}

static int load_authorized_keys(Server *srv) {
        g_autofree char *text = NULL;
        g_autoptr(GError) error = NULL;
        n2p_authkeys *k = NULL;
        char err[200];
        size_t len;

        if (!g_file_get_contents(arg_authorized_keys, &text, &len, &error))
                return n2p_log_error("cannot read --authorized-keys %s: %s", arg_authorized_keys, error->message);
        if (n2p_authkeys_parse(text, len, &k, err, sizeof err) < 0)
                return n2p_log_error("invalid --authorized-keys %s: %s", arg_authorized_keys, err);
        n2p_authkeys_free(srv->authorized);
        srv->authorized = k;
        n2p_log_info("%zu authorized client key%s from %s", n2p_authkeys_count(k),
                     n2p_authkeys_count(k) == 1 ? "" : "s", arg_authorized_keys);
        return 0;
}

static gboolean on_reload_signal(gpointer userdata) {
        Server *srv = userdata;
        /* A broken file keeps the list we have: better than admitting anyone or no one. */
        if (arg_authorized_keys && load_authorized_keys(srv) < 0)
                n2p_log_warning("keeping the previous list of authorized keys");
        return G_SOURCE_CONTINUE;
}

/* Refusals are logged with the key, but a flood of them must not flood the log. */
static bool refusal_log_ok(Server *srv) {
        gint64 now = g_get_monotonic_time() / G_USEC_PER_SEC;
        if (now != srv->refusal_second) {
                srv->refusal_second = now;
                srv->refusal_logged = 0;
        }
        return srv->refusal_logged++ < 10;
}

static void send_on_path(Server *srv, const Path *p, const uint8_t *buf, size_t len) {
        uint8_t wrapped[N2P_RV_MAX_PACKET];
        if (p->via_rv) {
                int n = n2p_rv_make_answer(p->cookie, buf, len, wrapped, sizeof wrapped);
                if (n < 0)
                        return;
                buf = wrapped;
                len = (size_t) n;
        }
        if (sendto(srv->udp_fd, buf, len, MSG_DONTWAIT, (const struct sockaddr *) &p->to, p->to_len) < 0)
                n2p_log_debug("sending an answer failed, ignoring: %m");
}

static void send_to_peer(Session *s, const uint8_t *buf, size_t len) {
        send_on_path(s->server, &s->path, buf, len);
}

/* The answer (or a refusal) goes out; then the worker gets the session keys. */
static int answer(Session *s, uint8_t status, const n2p_ice_desc *desc) {
        n2p_cipher tx, rx;
        uint8_t msg[1 + 64];
        int r;

        r = n2p_signal_make_resp(&s->hs, s->index, s->peer_index, status, desc,
                                 s->resp, sizeof s->resp, &s->resp_len);
        if (r < 0)
                return n2p_log_error_errno(r, "cannot build the answer for %s: %m", s->client);
        s->answered = true;
        s->server->n_pending--;
        if (s->answer_timer) {
                g_source_remove(s->answer_timer);
                s->answer_timer = 0;
        }
        send_to_peer(s, s->resp, s->resp_len);
        if (status != N2P_REFUSE_OK) {
                n2p_noise_wipe(&s->hs);
                return 0;
        }

        r = n2p_noise_split(&s->hs, &tx, &rx);
        if (r < 0)
                return n2p_log_error_errno(r, "handshake with %s did not complete: %m", s->client);
        msg[0] = N2P_CTL_KEYS;
        memcpy(msg + 1, tx.k, 32);
        memcpy(msg + 33, rx.k, 32);
        n2p_cipher_wipe(&tx);
        n2p_cipher_wipe(&rx);
        ssize_t n = send(s->ctl_fd, msg, sizeof msg, MSG_NOSIGNAL);
        sodium_memzero(msg, sizeof msg);
        if (n != (ssize_t) sizeof msg)
                return n2p_log_error_errno(-errno, "cannot hand the session keys to the worker: %m");
        return 0;
}

static bool get_text(const uint8_t *buf, size_t n, size_t *off, char out[33]) {
        if (*off >= n || buf[*off] > 32 || buf[*off] > n - *off - 1)
                return false;
        size_t l = buf[(*off)++];
        for (size_t i = 0; i < l; i++)
                out[i] = g_ascii_isprint(buf[*off + i]) ? (char) buf[*off + i] : '?';
        out[l] = '\0';
        *off += l;
        return true;
}

static void parse_stats(Session *s, const uint8_t *buf, size_t n) {
        size_t off = N2P_CTL_STATS_FIXED;
        char lt[33], rt[33], cipher[33];
        if (n < N2P_CTL_STATS_FIXED || !get_text(buf, n, &off, lt) || !get_text(buf, n, &off, rt) ||
            !get_text(buf, n, &off, cipher))
                return;
        s->rtt_us = n2p_get_be32(buf + 1);
        s->sent = n2p_get_be64(buf + 5);
        s->received = n2p_get_be64(buf + 13);
        s->streams = n2p_get_be32(buf + 21);
        memcpy(s->local_type, lt, sizeof lt);
        memcpy(s->remote_type, rt, sizeof rt);
        memcpy(s->cipher, cipher, sizeof cipher);
        s->have_stats = true;
}

static gboolean on_ctl(int fd, GIOCondition cond, gpointer userdata) {
        Session *s = userdata;
        uint8_t buf[N2P_CTL_MAX + 1];
        n2p_ice_desc desc;

        ssize_t n = recv(fd, buf, sizeof buf, MSG_DONTWAIT);
        if (n < 0 && (errno == EAGAIN || errno == EINTR))
                return G_SOURCE_CONTINUE;
        if (n <= 0) {
                /* The worker is gone; its exit is reported by on_worker_exit. */
                s->ctl_watch = 0;
                if (!s->answered)
                        (void) answer(s, N2P_REFUSE_INTERNAL, NULL);
                return G_SOURCE_REMOVE;
        }
        if (buf[0] == N2P_CTL_STATS) {
                parse_stats(s, buf, (size_t) n);
                return G_SOURCE_CONTINUE;
        }
        if (s->answered)
                return G_SOURCE_CONTINUE;   /* nothing else is expected from a worker */
        if (buf[0] == N2P_CTL_ANSWER && n2p_ice_desc_decode(buf + 1, (size_t) n - 1, &desc) == 0) {
                if (answer(s, N2P_REFUSE_OK, &desc) < 0 && s->proc)
                        g_subprocess_force_exit(s->proc);
                return G_SOURCE_CONTINUE;
        }
        n2p_log_warning("worker for %s could not start the session", s->client);
        (void) answer(s, N2P_REFUSE_INTERNAL, NULL);
        return G_SOURCE_CONTINUE;
}

static gboolean on_answer_timeout(gpointer userdata) {
        Session *s = userdata;
        s->answer_timer = 0;
        n2p_log_warning("worker for %s did not answer in time", s->client);
        (void) answer(s, N2P_REFUSE_INTERNAL, NULL);
        if (s->proc)
                g_subprocess_force_exit(s->proc);
        return G_SOURCE_REMOVE;
}

static void on_worker_exit(GObject *source, GAsyncResult *res, gpointer userdata) {
        Session *s = userdata;
        GSubprocess *p = G_SUBPROCESS(source);
        g_autoptr(GError) error = NULL;

        (void) g_subprocess_wait_finish(p, res, &error);
        if (g_subprocess_get_if_signaled(p))
                n2p_log_warning("session with %s: worker killed by signal %d", s->client,
                                g_subprocess_get_term_sig(p));
        else if (g_subprocess_get_if_exited(p) && g_subprocess_get_exit_status(p) != 0)
                n2p_log_info("session with %s ended with an error", s->client);
        else
                n2p_log_info("session with %s ended", s->client);
        session_end(s);
}

static int spawn_worker(Session *s) {
        g_autoptr(GSubprocessLauncher) l = NULL;
        g_autoptr(GPtrArray) argv = g_ptr_array_new();
        g_autoptr(GError) error = NULL;
        int sv[2];

        if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
                return -errno;
        g_ptr_array_add(argv, (char *) n2p_self_exe());
        g_ptr_array_add(argv, "__worker");
        g_ptr_array_add(argv, "--nix-daemon-socket");
        g_ptr_array_add(argv, arg_nix_socket);
        if (arg_stun) {
                g_ptr_array_add(argv, "--stun");
                g_ptr_array_add(argv, arg_stun);
        }
        if (s->server->local_address) {
                g_ptr_array_add(argv, "--local-address");
                g_ptr_array_add(argv, s->server->local_address);
        }
        g_ptr_array_add(argv, "--peer");
        g_ptr_array_add(argv, s->client);
        g_ptr_array_add(argv, NULL);

        l = g_subprocess_launcher_new(G_SUBPROCESS_FLAGS_STDIN_INHERIT);
        g_subprocess_launcher_take_fd(l, sv[1], N2P_CTL_FD);
        s->proc = g_subprocess_launcher_spawnv(l, (const char *const *) argv->pdata, &error);
        if (!s->proc) {
                close(sv[0]);
                return n2p_log_error("cannot start a worker: %s", error->message);
        }
        s->ctl_fd = sv[0];
        s->ctl_watch = g_unix_fd_add(s->ctl_fd, G_IO_IN | G_IO_HUP | G_IO_ERR, on_ctl, s);
        s->answer_timer = g_timeout_add(N2P_ICE_TIMEOUT_MS, on_answer_timeout, s);
        g_subprocess_wait_async(s->proc, NULL, on_worker_exit, s);
        return 0;
}

/* An INIT that authenticated: replay check, limits, then a worker. */
static void handle_init(Server *srv, const uint8_t *pkt, size_t len, const Path *path) {
        uint8_t hash[32], msg[N2P_CTL_MAX];
        n2p_init_info info;
        GHashTableIter it;
        gpointer v;
        size_t dlen;
        int r;

        /* A retransmission of an INIT we already answered gets the same answer again. */
        crypto_generichash(hash, sizeof hash, pkt, len, NULL, 0);
        g_hash_table_iter_init(&it, srv->sessions);
        while (g_hash_table_iter_next(&it, NULL, &v)) {
                Session *o = v;
                if (sodium_memcmp(o->init_hash, hash, sizeof hash) == 0) {
                        if (o->answered && o->resp_len > 0)
                                send_on_path(srv, path, o->resp, o->resp_len);
                        return;
                }
        }

        Session *s = g_new0(Session, 1);
        s->ctl_fd = -1;
        r = n2p_signal_read_init(&srv->key, pkt, len, &s->hs, &info);
        if (r < 0) {
                uint8_t rej[N2P_PKT_REJECT_SIZE];
                gint64 now = g_get_monotonic_time() / G_USEC_PER_SEC;
                g_free(s);
                if (r != -EBADMSG || len < N2P_PKT_INIT_HEADER) {
                        srv->n_malformed++;
                        return;
                }
                srv->n_undecryptable++;
                /* A LAN broadcast or a rendezvous routed this by our key, so a failure
                 * there is garbage, not a dialled wrong key: stay silent. */
                if (path->via_rv)
                        return;
                /* Tell a client that dialled the wrong key, at a bounded rate and never
                 * with more bytes than it sent. */
                if (now != srv->reject_second) {
                        srv->reject_second = now;
                        srv->reject_tokens = 10;
                }
                if (srv->reject_tokens == 0) {
                        srv->n_reject_limited++;
                        return;
                }
                srv->reject_tokens--;
                n2p_signal_make_reject(n2p_get_be32(pkt + 4), N2P_REFUSE_UNDECRYPTABLE, rej);
                send_on_path(srv, path, rej, sizeof rej);
                return;
        }

        /* Replay protection: every INIT carries a TAI64N timestamp, which must grow. */
        char xhex[65];
        sodium_bin2hex(xhex, sizeof xhex, info.client_x, 32);
        Seen *seen = g_hash_table_lookup(srv->last_init, xhex);
        if (seen && memcmp(info.tai64n, seen->tai64n, N2P_TAI64N_SIZE) <= 0) {
                n2p_log_debug("replayed or stale handshake from %s, dropped", xhex);
                srv->n_replayed++;
                n2p_noise_wipe(&s->hs);
                g_free(s);
                return;
        }

        /* Who may connect is decided here, inside the handshake: a refused client
         * never gets a worker, so not one byte of it reaches nix-daemon. */
        if ((srv->authorized && !n2p_authkeys_contains(srv->authorized, info.client_ed)) ||
            (arg_one_time_key && srv->one_time_used)) {
                uint8_t resp[N2P_PKT_MAX];
                size_t resp_len;
                srv->n_unauthorized++;
                if (refusal_log_ok(srv)) {
                        g_autofree char *who = n2p_addr_format_short(info.client_ed);
                        n2p_log_warning("refused %s: %s", who, srv->authorized && !n2p_authkeys_contains(srv->authorized, info.client_ed) ?
                                        "not in --authorized-keys" : "this one-time address was already used");
                }
                if (n2p_signal_make_resp(&s->hs, 0, info.sender, N2P_REFUSE_UNAUTHORIZED, NULL,
                                         resp, sizeof resp, &resp_len) == 0)
                        send_on_path(srv, path, resp, resp_len);
                n2p_noise_wipe(&s->hs);
                g_free(s);
                return;
        }
        if (arg_one_time_key)
                srv->one_time_used = true;

        /* Remembered only for clients that may connect (a refused one gains nothing by
         * a replay), and for at most N2P_MAX_REPLAY_KEYS keys: the least recently
         * seen is forgotten first. */
        if (!seen) {
                if (g_hash_table_size(srv->last_init) >= N2P_MAX_REPLAY_KEYS) {
                        Seen *old = srv->seen_order.head->data;
                        g_queue_unlink(&srv->seen_order, &old->link);
                        g_hash_table_remove(srv->last_init, old->key);
                }
                seen = g_new0(Seen, 1);
                memcpy(seen->key, xhex, sizeof xhex);
                seen->link.data = seen;
                g_hash_table_insert(srv->last_init, seen->key, seen);
        } else
                g_queue_unlink(&srv->seen_order, &seen->link);
        memcpy(seen->tai64n, info.tai64n, N2P_TAI64N_SIZE);
        g_queue_push_tail_link(&srv->seen_order, &seen->link);

        s->server = srv;
        do
                s->index = randombytes_random();
        while (s->index == 0 || g_hash_table_contains(srv->sessions, GUINT_TO_POINTER(s->index)));
        s->peer_index = info.sender;
        s->path = *path;
        memcpy(s->init_hash, hash, sizeof hash);
        memcpy(s->client_ed, info.client_ed, 32);
        s->client = n2p_addr_format_short(info.client_ed);
        srv->n_pending++;
        srv->n_accepted++;
        g_hash_table_insert(srv->sessions, GUINT_TO_POINTER(s->index), s);
        update_status(srv);

        char from_text[80];
        n2p_log_info("handshake from %s at %s%s", s->client,
                     n2p_endpoint_format(&path->to, from_text, sizeof from_text),
                     path->via_rv ? " (the rendezvous)" : "");

        if (g_hash_table_size(srv->sessions) > arg_max_sessions || srv->n_pending > N2P_MAX_PENDING_HANDSHAKES) {
                n2p_log_warning("refusing %s: session limit reached", s->client);
                srv->n_busy++;
                (void) answer(s, N2P_REFUSE_BUSY, NULL);
                session_end(s);
                return;
        }
        if (spawn_worker(s) < 0) {
                (void) answer(s, N2P_REFUSE_INTERNAL, NULL);
                session_end(s);
                return;
        }
        msg[0] = N2P_CTL_INIT;
        memcpy(msg + 1, info.client_ed, 32);
        r = n2p_ice_desc_encode(&info.offer, msg + 35, N2P_ICE_MAX_DESCRIPTION, &dlen);
        if (r == 0) {
                /* The TURN server the worker should use; the password never goes on
                 * a command line (see `ps`). */
                g_autofree char *turn = srv->turn.host ?
                        g_strdup_printf("%s:%s@%s:%u", srv->turn.user, srv->turn.pass, srv->turn.host, srv->turn.port) :
                        g_strdup("");
                size_t tlen = strlen(turn);
                n2p_put_be16(msg + 33, (uint16_t) dlen);
                if (tlen > N2P_CTL_MAX_TURN)
                        r = -ENOBUFS;
                else {
                        n2p_put_be16(msg + 35 + dlen, (uint16_t) tlen);
                        memcpy(msg + 35 + dlen + 2, turn, tlen);
                        dlen += 2 + tlen;
                }
                sodium_memzero(turn, tlen);
        }
        if (r < 0 || send(s->ctl_fd, msg, 35 + dlen, MSG_NOSIGNAL) < 0) {
                n2p_log_warning("cannot hand the offer of %s to its worker", s->client);
                g_subprocess_force_exit(s->proc);
        }
}

static void rv_register(Server *srv) {
        uint8_t pkt[N2P_RV_REGISTER_SIZE];
        int n = n2p_rv_make_register(srv->key.ed_secret, srv->key.ed_public,
                                     (uint64_t) (g_get_real_time() / 1000), pkt, sizeof pkt);
        if (n > 0 && sendto(srv->udp_fd, pkt, (size_t) n, MSG_DONTWAIT, (struct sockaddr *) &srv->rv, n2p_sockaddr_len(&srv->rv)) < 0)
                n2p_log_debug("cannot reach the rendezvous: %m");
}

static gboolean on_rv_timer(gpointer userdata) {
        Server *srv = userdata;
        char t[80];
        /* Unanswered for a while: say so once, and keep trying at the same pace. */
        if (!srv->rv_warned && g_get_monotonic_time() - srv->rv_last_ok > 3 * N2P_RV_REFRESH_S * G_USEC_PER_SEC / 2) {
                n2p_log_warning("rendezvous %s does not answer; peers that know only the short address "
                                "cannot reach this node through it", n2p_endpoint_format(&srv->rv, t, sizeof t));
                srv->rv_warned = true;
                srv->rv_registered = false;
        }
        rv_register(srv);
        return G_SOURCE_CONTINUE;
}

static void handle_rv(Server *srv, const uint8_t *pkt, size_t len) {
        struct sockaddr_storage observed;
        const uint8_t *init;
        size_t init_len;
        n2p_rv_creds creds;
        uint32_t lifetime;
        uint8_t status;
        char t[80];
        Path path;

        switch (pkt[0]) {
        case N2P_RV_REGISTERED:
                if (n2p_rv_parse_registered(pkt, len, &status, &lifetime, &observed, &creds) < 0)
                        return;
                if (status != N2P_RV_OK) {
                        n2p_log_warning("rendezvous %s refused the registration: %s",
                                        n2p_endpoint_format(&srv->rv, t, sizeof t), n2p_rv_strerror(status));
                        return;
                }
                srv->rv_last_ok = g_get_monotonic_time();
                srv->rv_warned = false;
                if (!srv->rv_registered)
                        n2p_log_info("registered with rendezvous %s, which sees this node at %s",
                                     n2p_endpoint_format(&srv->rv, t, sizeof t),
                                     n2p_endpoint_format(&observed, (char[80]) {}, 80));
                srv->rv_registered = true;
                /* Time-limited TURN credentials from the service (coturn's shared secret),
                 * unless --turn set some: they are for coturn on the rendezvous host,
                 * port 3478, where the two are meant to run together. */
                if (creds.user[0] && !arg_turn && !arg_turn_file) {
                        char ip[INET6_ADDRSTRLEN];
                        const void *a = srv->rv.ss_family == AF_INET ?
                                (const void *) &((struct sockaddr_in *) &srv->rv)->sin_addr :
                                (const void *) &((struct sockaddr_in6 *) &srv->rv)->sin6_addr;
                        n2p_turn_clear(&srv->turn);
                        srv->turn.host = g_strdup(inet_ntop(srv->rv.ss_family, a, ip, sizeof ip));
                        srv->turn.port = 3478;
                        srv->turn.user = g_strdup(creds.user);
                        srv->turn.pass = g_strdup(creds.pass);
                }
                sodium_memzero(&creds, sizeof creds);
                return;
        case N2P_RV_FORWARD:
                memset(&path, 0, sizeof path);
                if (n2p_rv_parse_forward(pkt, len, &path.cookie, &observed, &init, &init_len) < 0)
                        return;
                path.to = srv->rv;
                path.to_len = n2p_sockaddr_len(&srv->rv);
                path.via_rv = true;
                handle_init(srv, init, init_len, &path);
                return;
        default:
                return;
        }
}

static gboolean on_udp(int fd, GIOCondition cond, gpointer userdata) {
        Server *srv = userdata;
        uint8_t pkt[N2P_RV_MAX_PACKET + 1];

        /* Bounded: at most this many datagrams per wakeup, so timers still run. */
        for (unsigned i = 0; i < 64; i++) {
                struct sockaddr_storage from;
                socklen_t from_len = sizeof from;
                const uint8_t *init;
                size_t init_len;
                uint8_t key[32];
                Path path = {};

                ssize_t n = recvfrom(fd, pkt, sizeof pkt, MSG_DONTWAIT, (struct sockaddr *) &from, &from_len);
                if (n < 0) {
                        if (errno != EAGAIN && errno != EINTR)
                                n2p_log_warning("receiving on the signalling socket failed, ignoring: %m");
                        break;
                }
                if (n == 0 || n > N2P_RV_MAX_PACKET)
                        continue;
                path.to = from;
                path.to_len = from_len;
                /* Handshakes cost DH operations: bounded per source and in total before
                 * anything is decrypted. (The rendezvous limits what it forwards.) */
                if ((pkt[0] == N2P_PKT_INIT || pkt[0] == N2P_PKT_DISCOVER) &&
                    (!n2p_ratelimit_allow(srv->handshake_rate, &from, g_get_monotonic_time()) ||
                     !n2p_bucket_take(&srv->handshake_total, N2P_HANDSHAKE_RATE_TOTAL,
                                      N2P_HANDSHAKE_RATE_TOTAL, g_get_monotonic_time()))) {
                        srv->n_rate_limited++;
                        continue;
                }
                switch (pkt[0]) {
                case N2P_PKT_INIT:
                        if (n <= N2P_PKT_MAX)
                                handle_init(srv, pkt, (size_t) n, &path);
                        break;
                case N2P_PKT_DISCOVER:
                        /* LAN discovery: only for us if it names our key; everyone else on
                         * the LAN stays silent. */
                        if (n2p_signal_parse_discover(pkt, (size_t) n, key, &init, &init_len) == 0 &&
                            sodium_memcmp(key, srv->key.ed_public, 32) == 0)
                                handle_init(srv, init, init_len, &path);
                        break;
                case N2P_RV_REGISTERED:
                case N2P_RV_FORWARD:
                        if (srv->have_rv && n2p_endpoint_equal(&from, &srv->rv))
                                handle_rv(srv, pkt, (size_t) n);
                        break;
                default:
                        srv->n_malformed++;
                        break;
                }
        }
        return G_SOURCE_CONTINUE;
}

static void status_text(GString *out, void *userdata) {
        Server *srv = userdata;
        g_autofree char *me = n2p_addr_format_short(srv->key.ed_public);
        char t[80];
        GHashTableIter it;
        gpointer v;

        g_string_append_printf(out, "server %s (pid %d)\n", me, (int) getpid());
        g_string_append_printf(out, "  listening    %s\n", n2p_endpoint_format(&srv->bound, t, sizeof t));
        if (srv->have_rv)
                g_string_append_printf(out, "  rendezvous   %s, %s\n", n2p_endpoint_format(&srv->rv, t, sizeof t),
                                       srv->rv_registered ? "registered" : "not registered");
        g_string_append_printf(out, "  handshakes   %" G_GUINT64_FORMAT " accepted; dropped: %" G_GUINT64_FORMAT
                               " undecryptable, %" G_GUINT64_FORMAT " replayed, %" G_GUINT64_FORMAT
                               " malformed, %" G_GUINT64_FORMAT " over the session limit, %" G_GUINT64_FORMAT
                               " unanswered (rate limit), %" G_GUINT64_FORMAT " not authorized, %"
                               G_GUINT64_FORMAT " over the handshake rate\n",
                               srv->n_accepted, srv->n_undecryptable, srv->n_replayed, srv->n_malformed,
                               srv->n_busy, srv->n_reject_limited, srv->n_unauthorized, srv->n_rate_limited);
        if (arg_authorized_keys)
                g_string_append_printf(out, "  authorized   %zu keys from %s\n",
                                       srv->authorized ? n2p_authkeys_count(srv->authorized) : 0, arg_authorized_keys);
        g_string_append_printf(out, "  sessions     %u\n", g_hash_table_size(srv->sessions));
        g_hash_table_iter_init(&it, srv->sessions);
        while (g_hash_table_iter_next(&it, NULL, &v)) {
                Session *s = v;
                const char *pid = s->proc ? g_subprocess_get_identifier(s->proc) : NULL;
                g_string_append_printf(out, "  session %s (worker %s)\n", s->client, pid ?: "-");
                if (!s->have_stats) {
                        g_string_append(out, "    state      connecting\n");
                        continue;
                }
                g_string_append_printf(out, "    pair       %s <-> %s\n", s->local_type, s->remote_type);
                g_string_append_printf(out, "    cipher     %s\n", s->cipher);
                if (s->rtt_us)
                        g_string_append_printf(out, "    rtt        %.1f ms\n", s->rtt_us / 1000.0);
                g_string_append_printf(out, "    sent       %" G_GUINT64_FORMAT " bytes\n", s->sent);
                g_string_append_printf(out, "    received   %" G_GUINT64_FORMAT " bytes\n", s->received);
                g_string_append_printf(out, "    streams    %u\n", s->streams);
        }
}

static gboolean on_sweep(gpointer userdata) {
        Server *srv = userdata;
        n2p_ratelimit_sweep(srv->handshake_rate, g_get_monotonic_time());
        return G_SOURCE_CONTINUE;
}

static gboolean on_quit_signal(gpointer userdata) {
        Server *srv = userdata;
        n2p_log_info("stopping");
        g_main_loop_quit(srv->loop);
        return G_SOURCE_CONTINUE;
}

static int open_socket(Server *srv, struct sockaddr_storage *ret_bound) {
        struct sockaddr_storage sa;
        socklen_t len = sizeof sa;
        char err[128];
        int n, r;

        n = sd_listen_fds(true);
        if (n < 0)
                return n2p_log_error_errno(n, "socket activation failed: %m");
        if (n > 1)
                return n2p_log_error("expected one socket from the service manager, got %d", n);
        if (n == 1) {
                if (sd_is_socket(SD_LISTEN_FDS_START, AF_UNSPEC, SOCK_DGRAM, -1) <= 0)
                        return n2p_log_error("the socket passed by the service manager is not a datagram socket");
                srv->udp_fd = SD_LISTEN_FDS_START;
        } else {
                r = n2p_endpoint_parse(arg_listen ?: "0.0.0.0", N2P_DEFAULT_PORT, &sa, err, sizeof err);
                if (r < 0)
                        return n2p_log_error("invalid --listen '%s': %s", arg_listen, err);
                _cleanup_close_ int fd = socket(sa.ss_family, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
                if (fd < 0)
                        return n2p_log_error_errno(-errno, "cannot create the UDP socket: %m");
                if (bind(fd, (struct sockaddr *) &sa,
                         sa.ss_family == AF_INET ? sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6)) < 0) {
                        char t[80];
                        return n2p_log_error_errno(-errno, "cannot listen on %s: %m",
                                                   n2p_endpoint_format(&sa, t, sizeof t));
                }
                srv->udp_fd = n2p_take_fd(&fd);
        }
        if (getsockname(srv->udp_fd, (struct sockaddr *) &sa, &len) < 0)
                return n2p_log_error_errno(-errno, "getsockname: %m");
        *ret_bound = sa;
        return 0;
}

static int parse_argv(int argc, char **argv) {
        enum { ARG_KEY = 0x100, ARG_ONE_TIME, ARG_TIMEOUT, ARG_LISTEN, ARG_NIX, ARG_STUN, ARG_TURN,
               ARG_TURN_FILE, ARG_RENDEZVOUS, ARG_AUTHORIZED_KEYS, ARG_MAX_SESSIONS, ARG_HANDSHAKE_RATE,
               ARG_VERSION };
        static const struct option options[] = {
                { "help",              no_argument,       NULL, 'h' },
                { "version",           no_argument,       NULL, ARG_VERSION },
                { "verbose",           no_argument,       NULL, 'v' },
                { "secret-key-file",   required_argument, NULL, ARG_KEY },
                { "one-time-key",      no_argument,       NULL, ARG_ONE_TIME },
                { "timeout",           required_argument, NULL, ARG_TIMEOUT },
                { "listen",            required_argument, NULL, ARG_LISTEN },
                { "nix-daemon-socket", required_argument, NULL, ARG_NIX },
                { "stun",              required_argument, NULL, ARG_STUN },
                { "turn",              required_argument, NULL, ARG_TURN },
                { "turn-credentials-file", required_argument, NULL, ARG_TURN_FILE },
                { "rendezvous",        required_argument, NULL, ARG_RENDEZVOUS },
                { "authorized-keys",   required_argument, NULL, ARG_AUTHORIZED_KEYS },
                { "max-sessions",      required_argument, NULL, ARG_MAX_SESSIONS },
                { "handshake-rate",    required_argument, NULL, ARG_HANDSHAKE_RATE },
                {}
        };
        int c;

        optind = 0;
        while ((c = getopt_long(argc, argv, "hv", options, NULL)) >= 0)
                switch (c) {
                case 'h':
                        printf("Usage: %s%s [OPTIONS...]\n\n"
                               "Share this node's nix-daemon with peers: answer their handshakes on a UDP\n"
                               "port and relay each of their Nix connections to the local nix-daemon.\n\n"
                               "  -h --help                    show this help\n"
                               "     --version                 show the version\n"
                               "  -v --verbose                 log debugging information\n"
                               "     --secret-key-file FILE    the node's Ed25519 key (32-byte seed, mode 0600;\n"
                               "                               created if missing; default\n"
                               "                               $STATE_DIRECTORY/secret.key or\n"
                               "                               $XDG_STATE_HOME/n2p/secret.key)\n"
                               "     --one-time-key            use a random key and store nothing\n"
                               "     --timeout SECS            exit after SECS without a session (0: never)\n"
                               "     --listen ADDR:PORT        UDP endpoint for handshakes (default 0.0.0.0:%d)\n"
                               "     --nix-daemon-socket PATH  default /nix/var/nix/daemon-socket/socket\n"
                               "     --stun HOST:PORT          STUN server for server-reflexive candidates\n"
                               "     --turn turn:USER:PASS@HOST:PORT\n"
                               "                               TURN server for relayed candidates\n"
                               "     --turn-credentials-file FILE\n"
                               "                               the same, read from a file (mode 0600)\n"
                               "     --authorized-keys FILE    accept only the client keys listed in FILE\n"
                               "                               (reloaded on SIGHUP); default: any key\n"
                               "     --max-sessions N          concurrent peer sessions (default %d)\n"
                               "     --handshake-rate N        handshakes per second from one source address\n"
                               "                               (default %d)\n"
                               "     --rendezvous HOST:PORT    register with this rendezvous service, so that\n"
                               "                               peers behind NATs reach this node by its key\n",
                               n2p_program, strcmp(n2p_program, "n2pd") == 0 ? "" : " server", N2P_DEFAULT_PORT,
                               N2P_MAX_SESSIONS, N2P_HANDSHAKE_RATE);
                        return 0;
                case ARG_VERSION:
                        puts("n2pd " N2P_VERSION);
                        return 0;
                case 'v':
                        n2p_log_set_debug(1);
                        break;
                case ARG_KEY:
                        arg_key_file = optarg;
                        break;
                case ARG_ONE_TIME:
                        arg_one_time_key = true;
                        break;
                case ARG_TIMEOUT:
                        if (n2p_parse_seconds(optarg, &arg_timeout) < 0)
                                return n2p_log_error("invalid --timeout '%s': expected seconds", optarg);
                        break;
                case ARG_LISTEN:
                        arg_listen = optarg;
                        break;
                case ARG_NIX:
                        arg_nix_socket = optarg;
                        break;
                case ARG_STUN: {
                        g_autofree char *h = NULL;
                        unsigned p;
                        if (n2p_parse_stun(optarg, &h, &p) < 0)
                                return -EINVAL;
                        arg_stun = optarg;
                        break;
                }
                case ARG_TURN:
                        arg_turn = optarg;
                        break;
                case ARG_TURN_FILE:
                        arg_turn_file = optarg;
                        break;
                case ARG_RENDEZVOUS:
                        arg_rendezvous = optarg;
                        break;
                case ARG_AUTHORIZED_KEYS:
                        arg_authorized_keys = optarg;
                        break;
                case ARG_MAX_SESSIONS:
                        if (n2p_parse_seconds(optarg, &arg_max_sessions) < 0 || arg_max_sessions == 0 ||
                            arg_max_sessions > 4096)
                                return n2p_log_error("invalid --max-sessions '%s': expected 1..4096", optarg);
                        break;
                case ARG_HANDSHAKE_RATE:
                        if (n2p_parse_seconds(optarg, &arg_handshake_rate) < 0 || arg_handshake_rate == 0 ||
                            arg_handshake_rate > 10000)
                                return n2p_log_error("invalid --handshake-rate '%s': expected 1..10000", optarg);
                        break;
                default:
                        fprintf(stderr, "Try '%s --help'.\n", n2p_program);
                        return -EINVAL;
                }
        if (optind < argc) {
                n2p_log_error("unexpected argument '%s'", argv[optind]);
                return -EINVAL;
        }
        if (arg_one_time_key && arg_key_file)
                return n2p_log_error("--one-time-key and --secret-key-file exclude each other");
        if (arg_turn && arg_turn_file)
                return n2p_log_error("--turn and --turn-credentials-file exclude each other");
        return 1;
}

int n2p_server_main(int argc, char **argv) {
        struct sockaddr_storage bound, eps[N2P_ADDR_MAX_ENDPOINTS];
        Server srv = { .udp_fd = -1 };
        n2p_addr a = { .is_long = true };
        struct stat st;
        size_t n_eps;
        int r;

        r = parse_argv(argc, argv);
        if (r <= 0)
                return r;

        /* Fail now rather than on the first peer's first connection. */
        if (stat(arg_nix_socket, &st) < 0)
                return n2p_log_error_errno(-errno, "nix-daemon socket %s: %m (is nix-daemon running? "
                                           "see --nix-daemon-socket)", arg_nix_socket);
        if (!S_ISSOCK(st.st_mode))
                return n2p_log_error("nix-daemon socket %s is not a socket", arg_nix_socket);

        r = arg_turn ? n2p_parse_turn(arg_turn, &srv.turn) : arg_turn_file ? n2p_read_turn_file(arg_turn_file, &srv.turn) : 0;
        if (r < 0)
                return r;
        if (arg_rendezvous) {
                char err[128];
                if (n2p_endpoint_parse(arg_rendezvous, N2P_RV_DEFAULT_PORT, &srv.rv, err, sizeof err) < 0) {
                        n2p_turn_clear(&srv.turn);
                        return n2p_log_error("invalid --rendezvous '%s': %s", arg_rendezvous, err);
                }
                srv.have_rv = true;
                n2p_endpoint_format(&srv.rv, a.rendezvous, sizeof a.rendezvous);
        }

        if (arg_authorized_keys && load_authorized_keys(&srv) < 0) {
                n2p_turn_clear(&srv.turn);
                return -EINVAL;
        }
        r = n2p_identity(arg_key_file, arg_one_time_key, &srv.key);
        if (r < 0) {
                n2p_turn_clear(&srv.turn);
                srv.authorized = n2p_authkeys_free(srv.authorized);
                return r;
        }
        r = open_socket(&srv, &bound);
        if (r < 0)
                goto out;

        if (bound.ss_family == AF_INET && ((struct sockaddr_in *) &bound)->sin_addr.s_addr != htonl(INADDR_ANY)) {
                char ip[INET_ADDRSTRLEN];
                srv.local_address = g_strdup(inet_ntop(AF_INET, &((struct sockaddr_in *) &bound)->sin_addr, ip, sizeof ip));
        } else if (bound.ss_family == AF_INET6 &&
                   !IN6_IS_ADDR_UNSPECIFIED(&((struct sockaddr_in6 *) &bound)->sin6_addr)) {
                char ip[INET6_ADDRSTRLEN];
                srv.local_address = g_strdup(inet_ntop(AF_INET6, &((struct sockaddr_in6 *) &bound)->sin6_addr, ip, sizeof ip));
        }

        srv.bound = bound;
        r = n2p_local_endpoints(&bound, eps, N2P_ADDR_MAX_ENDPOINTS, &n_eps);
        if (r < 0) {
                n2p_log_error_errno(r, "cannot list local addresses: %m");
                goto out;
        }
        memcpy(a.key, srv.key.ed_public, 32);
        memcpy(a.endpoints, eps, n_eps * sizeof eps[0]);
        a.n_endpoints = n_eps;
        {
                g_autofree char *s = n2p_addr_format_short(a.key);
                g_autofree char *l = n2p_addr_format_long(&a);
                if (!l) {
                        r = n2p_log_error("cannot format the long address");
                        goto out;
                }
                n2p_log_addresses(s, l);
        }

        srv.loop = g_main_loop_new(NULL, false);
        srv.sessions = g_hash_table_new_full(g_direct_hash, g_direct_equal, NULL, (GDestroyNotify) session_free);
        srv.last_init = g_hash_table_new_full(g_str_hash, g_str_equal, NULL, g_free);
        g_queue_init(&srv.seen_order);
        srv.handshake_rate = n2p_ratelimit_new(arg_handshake_rate, 2.0 * arg_handshake_rate, N2P_MAX_SOURCES);
        srv.handshake_total = (n2p_bucket) { N2P_HANDSHAKE_RATE_TOTAL, g_get_monotonic_time() };
        srv.sweep_timer = g_timeout_add_seconds(5, on_sweep, &srv);
        srv.udp_watch = g_unix_fd_add(srv.udp_fd, G_IO_IN, on_udp, &srv);
        g_unix_signal_add(SIGTERM, on_quit_signal, &srv);
        g_unix_signal_add(SIGINT, on_quit_signal, &srv);
        g_unix_signal_add(SIGHUP, on_reload_signal, &srv);
        signal(SIGPIPE, SIG_IGN);
        update_status(&srv);
        {
                const char *rd = g_getenv("RUNTIME_DIRECTORY");
                g_autofree char *dir = rd && *rd ? g_strdup(rd) : n2p_control_dir();
                g_autofree char *path = g_build_filename(dir, rd && *rd ? "control" : "server.ctl", NULL);
                r = n2p_control_open(path, status_text, &srv, &srv.control);
                if (r < 0)
                        n2p_log_warning_errno(r, "no control socket at %s (n2pctl status will not see this server): %m", path);
        }
        if (srv.have_rv) {
                srv.rv_last_ok = g_get_monotonic_time();
                rv_register(&srv);
                srv.rv_timer = g_timeout_add_seconds(N2P_RV_REFRESH_S, on_rv_timer, &srv);
        }
        sd_notify(false, "READY=1");

        g_main_loop_run(srv.loop);

        sd_notify(false, "STOPPING=1");
        /* Workers end with their control socket; make sure of it. */
        GHashTableIter it;
        gpointer v;
        g_hash_table_iter_init(&it, srv.sessions);
        while (g_hash_table_iter_next(&it, NULL, &v))
                if (((Session *) v)->proc)
                        g_subprocess_send_signal(((Session *) v)->proc, SIGTERM);
        r = 0;
out:
        if (srv.sessions)
                g_hash_table_destroy(srv.sessions);
        if (srv.last_init)
                g_hash_table_destroy(srv.last_init);
        if (srv.udp_watch)
                g_source_remove(srv.udp_watch);
        if (srv.rv_timer)
                g_source_remove(srv.rv_timer);
        srv.control = n2p_control_free(srv.control);
        srv.authorized = n2p_authkeys_free(srv.authorized);
        srv.handshake_rate = n2p_ratelimit_free(srv.handshake_rate);
        if (srv.sweep_timer)
                g_source_remove(srv.sweep_timer);
        n2p_turn_clear(&srv.turn);
        if (srv.udp_fd >= 0)
                close(srv.udp_fd);
        if (srv.loop)
                g_main_loop_unref(srv.loop);
        g_free(srv.local_address);
        n2p_key_wipe(&srv.key);
        return r;
}
