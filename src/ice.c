/* SPDX-License-Identifier: MIT */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/udp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <nice/agent.h>
#include <nice/nice.h>

#include "ice.h"
#include "util.h"

#if defined(NICE_CHECK_VERSION)
#  if NICE_CHECK_VERSION(0, 1, 23)
#    define STUN_BESIDE_TURN_WORKS 1
#  endif
#endif
#ifndef STUN_BESIDE_TURN_WORKS
#  define STUN_BESIDE_TURN_WORKS 0
#endif

enum {
        UFRAG_MIN = 4,
        UFRAG_MAX = 64,
        PWD_MIN = 22,
        PWD_MAX = 128,
        FOUNDATION_MIN = 1,
        FOUNDATION_MAX = 32,
        COMPONENT_ID = 1,
        /* A datagram (non-reliable mode) larger than this cannot be one UDP packet. */
        DATAGRAM_MAX = 65507,
        /* Non-reliable mode has no writable signal: retry after this long instead. */
        DATAGRAM_RETRY_MS = 2,
        /* Datagram mode: socket buffers for a burst of a fast path's window (the
         * kernel default of ~200 KiB holds under 100 datagrams). */
        DATAGRAM_SOCKET_BUFFER = 8 * 1024 * 1024,
        /* Datagram mode sends a run of equal datagrams with one sendmsg (UDP
         * GSO): the kernel's per-packet path is most of the cost of a transfer. */
        GSO_MAX_SEGMENTS = 64,
        GSO_MAX_BYTES = 65000,
};

/* --- the description codec --- */

/* RFC 8445 ice-char = ALPHA / DIGIT / "+" / "/" */
static bool ice_chars_valid(const char *s, size_t len) {
        for (size_t i = 0; i < len; i++) {
                char c = s[i];
                if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
                      (c >= '0' && c <= '9') || c == '+' || c == '/'))
                        return false;
        }
        return true;
}

/* Length of a NUL-terminated ice-char string held in a field of `size` bytes, or
 * -EINVAL if it is unterminated, out of [min, max] or has a forbidden char. */
static int ice_string_len(const char *s, size_t size, size_t min, size_t max) {
        size_t len = strnlen(s, size);
        if (len == size || len < min || len > max || !ice_chars_valid(s, len))
                return -EINVAL;
        return (int) len;
}

/* Where a sockaddr keeps its address and (big-endian) port, and the address's
 * length on the wire: 4 or 16, or 0 for a family we do not carry. */
static size_t addr_view(struct sockaddr_storage *ss, uint8_t **ret_addr, uint8_t **ret_port) {
        if (ss->ss_family == AF_INET) {
                struct sockaddr_in *sin = (struct sockaddr_in *) ss;
                *ret_addr = (uint8_t *) &sin->sin_addr;
                *ret_port = (uint8_t *) &sin->sin_port;
                return 4;
        }
        if (ss->ss_family == AF_INET6) {
                struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *) ss;
                *ret_addr = (uint8_t *) &sin6->sin6_addr;
                *ret_port = (uint8_t *) &sin6->sin6_port;
                return 16;
        }
        return 0;
}

static int candidate_valid(const n2p_ice_candidate *c) {
        uint8_t *addr, *port;

        if ((unsigned) c->type > N2P_ICE_CAND_RELAY)
                return -EINVAL;
        if (ice_string_len(c->foundation, sizeof c->foundation, FOUNDATION_MIN, FOUNDATION_MAX) < 0)
                return -EINVAL;
        if (addr_view((struct sockaddr_storage *) &c->addr, &addr, &port) == 0)
                return -EINVAL;
        return port[0] == 0 && port[1] == 0 ? -EINVAL : 0;
}

static void put_string(uint8_t *buf, size_t *off, const char *s, size_t len) {
        buf[(*off)++] = (uint8_t) len;
        memcpy(buf + *off, s, len);
        *off += len;
}

int n2p_ice_desc_encode(const n2p_ice_desc *d, uint8_t *buf, size_t cap, size_t *ret_len) {
        int ulen, plen;
        size_t need, off = 0;

        if (!d || (!buf && cap > 0))
                return -EINVAL;
        ulen = ice_string_len(d->ufrag, sizeof d->ufrag, UFRAG_MIN, UFRAG_MAX);
        plen = ice_string_len(d->pwd, sizeof d->pwd, PWD_MIN, PWD_MAX);
        if (ulen < 0 || plen < 0 || d->n_candidates > N2P_ICE_MAX_CANDIDATES)
                return -EINVAL;

        /* Validate everything and size it before writing a byte. */
        need = 1 + (size_t) ulen + 1 + (size_t) plen + 1;
        for (size_t i = 0; i < d->n_candidates; i++) {
                const n2p_ice_candidate *c = &d->candidates[i];
                if (candidate_valid(c) < 0)
                        return -EINVAL;
                need += 1 + 4 + 1 + strlen(c->foundation) + 1 +
                        (c->addr.ss_family == AF_INET ? 4 : 16) + 2;
        }
        if (need > cap)
                return -ENOBUFS;

        put_string(buf, &off, d->ufrag, (size_t) ulen);
        put_string(buf, &off, d->pwd, (size_t) plen);
        buf[off++] = (uint8_t) d->n_candidates;
        for (size_t i = 0; i < d->n_candidates; i++) {
                n2p_ice_candidate c = d->candidates[i];
                uint8_t *addr = NULL, *port = NULL;
                size_t alen = addr_view(&c.addr, &addr, &port);

                buf[off++] = (uint8_t) c.type;
                n2p_put_be32(buf + off, c.priority);
                off += 4;
                put_string(buf, &off, c.foundation, strlen(c.foundation));
                buf[off++] = alen == 4 ? 4 : 6;
                memcpy(buf + off, addr, alen);
                memcpy(buf + off + alen, port, 2);
                off += alen + 2;
        }

        if (ret_len)
                *ret_len = off;
        return 0;
}

/* Reads a u8 length then that many ice-chars into dst (NUL-terminated). */
static int decode_string(const uint8_t *buf, size_t len, size_t *off, size_t min, size_t max,
                         char *dst) {
        size_t n;

        if (*off >= len)
                return -EINVAL;
        n = buf[(*off)++];
        if (n < min || n > max || n > len - *off || !ice_chars_valid((const char *) buf + *off, n))
                return -EINVAL;
        memcpy(dst, buf + *off, n);
        dst[n] = '\0';
        *off += n;
        return 0;
}

int n2p_ice_desc_decode(const uint8_t *buf, size_t len, n2p_ice_desc *ret) {
        n2p_ice_desc d;
        size_t off = 0, n;

        if (!buf || !ret)
                return -EINVAL;

        memset(&d, 0, sizeof d);
        if (decode_string(buf, len, &off, UFRAG_MIN, UFRAG_MAX, d.ufrag) < 0 ||
            decode_string(buf, len, &off, PWD_MIN, PWD_MAX, d.pwd) < 0)
                return -EINVAL;
        if (off >= len)
                return -EINVAL;
        n = buf[off++];
        if (n > N2P_ICE_MAX_CANDIDATES)
                return -EINVAL;

        for (size_t i = 0; i < n; i++) {
                n2p_ice_candidate *c = &d.candidates[i];
                uint8_t *addr = NULL, *port = NULL;
                size_t alen;

                if (len - off < 5 || buf[off] > N2P_ICE_CAND_RELAY)
                        return -EINVAL;
                c->type = (n2p_ice_cand_type) buf[off];
                c->priority = n2p_get_be32(buf + off + 1);
                off += 5;
                if (decode_string(buf, len, &off, FOUNDATION_MIN, FOUNDATION_MAX, c->foundation) < 0)
                        return -EINVAL;
                if (off >= len || (buf[off] != 4 && buf[off] != 6))
                        return -EINVAL;
                c->addr.ss_family = buf[off++] == 4 ? AF_INET : AF_INET6;
                alen = addr_view(&c->addr, &addr, &port);
                if (len - off < alen + 2)
                        return -EINVAL;
                memcpy(addr, buf + off, alen);
                memcpy(port, buf + off + alen, 2);
                off += alen + 2;
                if (port[0] == 0 && port[1] == 0)
                        return -EINVAL;
        }
        if (off != len)
                return -EINVAL;

        d.n_candidates = n;
        memcpy(ret, &d, sizeof d);      /* padding included: callers may memcmp */
        return 0;
}

/* --- the agent --- */

struct n2p_ice {
        GMainContext *ctx;
        NiceAgent *agent;
        guint stream_id;
        bool reliable;
        n2p_ice_callbacks cb;
        void *userdata;

        GSource *guard;         /* N2P_ICE_TIMEOUT_MS after set_remote */
        GSource *dispatch;      /* idle: reports what the signal handlers noted */
        GSource *retry;         /* non-reliable: writable after a dropped send */

        /* What libnice told us, noted by the signal handlers ... */
        bool gathered;
        bool ready;             /* component reached READY */
        bool checks_connected;  /* a check succeeded (libnice's CONNECTED) */
        bool stream_open;       /* reliable: PseudoTCP signalled writable once */
        bool failed;
        bool writable;          /* a writable signal came while one was wanted */
        unsigned writable_seen; /* counts writable signals, see n2p_ice_send() */

        /* ... and what we have reported, each at most once. */
        bool want_writable;
        bool reported_gathered;
        bool reported_connected;
        bool reported_failed;

        bool have_pair;
        n2p_ice_cand_type local_type;
        n2p_ice_cand_type remote_type;

        /* Datagram mode over a non-relayed pair: we send on the pair's socket
         * ourselves, batched (libnice still owns it for receiving and checks). */
        bool pair_changed;
        GSocket *direct_sock;
        struct sockaddr_storage direct_to;
        socklen_t direct_len;
        bool no_gso;                    /* the kernel refused UDP_SEGMENT once */
        uint8_t *batch;
        size_t batch_len, seg_size;
        unsigned n_segs;
        bool batch_closed;              /* ends with a short datagram */
        GSource *flush;                 /* end of this main loop turn: send the batch */
};

static void direct_refresh(n2p_ice *ice);
static void batch_flush(n2p_ice *ice);

static void source_clear(GSource **s) {
        if (!*s)
                return;
        g_source_destroy(*s);
        g_source_unref(*s);
        *s = NULL;
}

/* Best effort: the FORCE variants pass net.core.[rw]mem_max when we may (root);
 * otherwise the kernel clamps the plain ones to that maximum. */
static void grow_socket_buffers(n2p_ice *ice) {
        GSocket *sock = nice_agent_get_selected_socket(ice->agent, ice->stream_id, COMPONENT_ID);
        int size = DATAGRAM_SOCKET_BUFFER, fd;

        if (!sock)
                return;
        fd = g_socket_get_fd(sock);
        if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof size) < 0)
                (void) setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof size);
        if (setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &size, sizeof size) < 0)
                (void) setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &size, sizeof size);
        g_object_unref(sock);
}

/*
 * libnice emits its signals while unlocking the agent, which also happens inside
 * nice_agent_send() and friends. Calling the user from there would re-enter the
 * caller of n2p_ice_send() (a writable or FAILED callback before send returned),
 * so the handlers only take notes and this idle source reports them from ctx.
 */
static gboolean dispatch_cb(gpointer userdata) {
        n2p_ice *ice = userdata;

        g_source_unref(ice->dispatch);
        ice->dispatch = NULL;

        if (ice->gathered && !ice->reported_gathered) {
                ice->reported_gathered = true;
                if (ice->cb.event)
                        ice->cb.event(ice, N2P_ICE_GATHERED, ice->userdata);
        }

        if (ice->failed) {
                if (!ice->reported_failed) {
                        ice->reported_failed = true;
                        if (ice->cb.event)
                                ice->cb.event(ice, N2P_ICE_FAILED, ice->userdata);
                }
                return G_SOURCE_REMOVE;
        }

        /*
         * Reliable mode: a component turns READY when ICE is done, but PseudoTCP
         * opens on its own schedule (before or after READY); until then
         * nice_agent_send() returns -1. Report CONNECTED only when both happened,
         * so the first send after CONNECTED can succeed.
         */
        /* READY waits for every check to end, which across NATs means waiting for
         * the host pairs that cannot work to time out (~2 s). A check that succeeded
         * on a nominated pair (CONNECTED and a selected pair) already carries data;
         * if a better pair is selected later, sends follow it. */
        bool usable = ice->ready || (ice->checks_connected && ice->have_pair);
        if (usable && (ice->stream_open || !ice->reliable) && !ice->reported_connected) {
                ice->reported_connected = true;
                source_clear(&ice->guard);
                if (!ice->reliable) {
                        grow_socket_buffers(ice);
                        direct_refresh(ice);
                }
                if (ice->cb.event)
                        ice->cb.event(ice, N2P_ICE_CONNECTED, ice->userdata);
                /* A send refused before CONNECTED waits for this. */
                if (ice->want_writable)
                        ice->writable = true;
        }

        /* A better pair: its socket receives coalesced datagrams too. */
        if (!ice->reliable && ice->reported_connected && ice->pair_changed) {
                batch_flush(ice);
                direct_refresh(ice);
        }

        if (ice->writable && ice->reported_connected && !ice->failed) {
                ice->writable = false;
                ice->want_writable = false;
                if (ice->cb.writable)
                        ice->cb.writable(ice, ice->userdata);
        }
        return G_SOURCE_REMOVE;
}

static void schedule_dispatch(n2p_ice *ice) {
        if (ice->dispatch)
                return;
        ice->dispatch = g_idle_source_new();
        g_source_set_priority(ice->dispatch, G_PRIORITY_DEFAULT);
        g_source_set_callback(ice->dispatch, dispatch_cb, ice, NULL);
        g_source_attach(ice->dispatch, ice->ctx);
}

static void on_gathering_done(NiceAgent *agent, guint stream_id, gpointer userdata) {
        n2p_ice *ice = userdata;

        if (stream_id != ice->stream_id)
                return;
        ice->gathered = true;
        schedule_dispatch(ice);
}

static void on_state_changed(NiceAgent *agent, guint stream_id, guint component_id, guint state,
                             gpointer userdata) {
        n2p_ice *ice = userdata;

        if (stream_id != ice->stream_id || component_id != COMPONENT_ID)
                return;
        if (state == NICE_COMPONENT_STATE_READY)
                ice->ready = true;
        else if (state == NICE_COMPONENT_STATE_CONNECTED)
                ice->checks_connected = true;
        else if (state == NICE_COMPONENT_STATE_FAILED)
                /* Checks failed, PseudoTCP died, or (after READY) consent expired. */
                ice->failed = true;
        else
                return;
        schedule_dispatch(ice);
}

static void on_transport_writable(NiceAgent *agent, guint stream_id, guint component_id,
                                  gpointer userdata) {
        n2p_ice *ice = userdata;

        if (stream_id != ice->stream_id || component_id != COMPONENT_ID)
                return;
        ice->writable_seen++;
        ice->stream_open = true;
        if (ice->want_writable)
                ice->writable = true;
        schedule_dispatch(ice);
}

/* Our wire values are libnice's, so conversion is a range check. */
G_STATIC_ASSERT((int) NICE_CANDIDATE_TYPE_HOST == N2P_ICE_CAND_HOST);
G_STATIC_ASSERT((int) NICE_CANDIDATE_TYPE_SERVER_REFLEXIVE == N2P_ICE_CAND_SRFLX);
G_STATIC_ASSERT((int) NICE_CANDIDATE_TYPE_PEER_REFLEXIVE == N2P_ICE_CAND_PRFLX);
G_STATIC_ASSERT((int) NICE_CANDIDATE_TYPE_RELAYED == N2P_ICE_CAND_RELAY);

static void on_selected_pair(NiceAgent *agent, guint stream_id, guint component_id,
                             NiceCandidate *local, NiceCandidate *remote, gpointer userdata) {
        n2p_ice *ice = userdata;

        if (stream_id != ice->stream_id || component_id != COMPONENT_ID || !local || !remote ||
            (unsigned) local->type > N2P_ICE_CAND_RELAY || (unsigned) remote->type > N2P_ICE_CAND_RELAY)
                return;
        ice->local_type = (n2p_ice_cand_type) local->type;
        ice->remote_type = (n2p_ice_cand_type) remote->type;
        ice->have_pair = true;
        ice->pair_changed = true;
        schedule_dispatch(ice);
}

static void on_recv(NiceAgent *agent, guint stream_id, guint component_id, guint len, gchar *buf,
                    gpointer userdata) {
        n2p_ice *ice = userdata;

        /* Data can race ahead of our CONNECTED report (the peer got there first):
         * pass it on rather than lose it; authenticity is the Noise layer's job. */
        if (len > 0 && ice->cb.recv && !ice->reported_failed)
                ice->cb.recv(ice, (const uint8_t *) buf, len, ice->userdata);
}

static gboolean guard_cb(gpointer userdata) {
        n2p_ice *ice = userdata;

        g_source_unref(ice->guard);
        ice->guard = NULL;
        if (!ice->reported_connected) {
                ice->failed = true;
                schedule_dispatch(ice);
        }
        return G_SOURCE_REMOVE;
}

static gboolean retry_cb(gpointer userdata) {
        n2p_ice *ice = userdata;

        g_source_unref(ice->retry);
        ice->retry = NULL;
        ice->writable = true;
        schedule_dispatch(ice);
        return G_SOURCE_REMOVE;
}

n2p_ice *n2p_ice_new(GMainContext *ctx, const n2p_ice_config *cfg, bool controlling,
                     const n2p_ice_callbacks *cb, void *userdata) {
        NiceAgentOption flags;
        n2p_ice *ice;

        if (!cfg || !cb)
                return NULL;
        if (cfg->stun_host) {
                NiceAddress probe;
                /* libnice resolves names with a blocking lookup; accept only numbers. */
                if (!nice_address_set_from_string(&probe, cfg->stun_host) ||
                    cfg->stun_port == 0 || cfg->stun_port > 65535)
                        return NULL;
        }
        if (cfg->turn_host) {
                NiceAddress probe;
                if (!nice_address_set_from_string(&probe, cfg->turn_host) ||
                    cfg->turn_port == 0 || cfg->turn_port > 65535 || !cfg->turn_user || !cfg->turn_pass)
                        return NULL;
        }

        ice = g_new0(n2p_ice, 1);
        ice->ctx = g_main_context_ref(ctx ? ctx : g_main_context_default());
        ice->reliable = cfg->reliable;
        ice->cb = *cb;
        ice->userdata = userdata;

        /* Consent freshness (RFC 7675) is what turns a vanished peer into FAILED:
         * libnice 0.1.21 fails the pair 10 s after the last consent answer.
         * Trickle stays off: the whole description travels in one message. */
        flags = NICE_AGENT_OPTION_CONSENT_FRESHNESS;
        if (cfg->reliable)
                flags |= NICE_AGENT_OPTION_RELIABLE;
        ice->agent = nice_agent_new_full(ice->ctx, NICE_COMPATIBILITY_RFC5245, flags);
        if (!ice->agent)
                goto fail;

        /* ICE-TCP and UPnP stay off: see recipes/nat/README.md. */
        g_object_set(ice->agent,
                     "ice-tcp", FALSE,
                     "ice-udp", TRUE,
                     "upnp", FALSE,
                     "controlling-mode", controlling ? TRUE : FALSE,
                     NULL);
        /* Before 0.1.23 libnice asks STUN servers in RFC 3489 form, and checks the
         * cookie-less answer against a TURN allocation on the same socket first,
         * which drops it: beside TURN, STUN only costs a 2 s time-out. The TURN
         * Allocate answer carries the mapped address, so the server-reflexive
         * candidate comes from there instead. */
        if (cfg->stun_host && (STUN_BESIDE_TURN_WORKS || !cfg->turn_host))
                g_object_set(ice->agent,
                             "stun-server", cfg->stun_host,
                             "stun-server-port", cfg->stun_port,
                             NULL);
        if (cfg->local_address) {
                NiceAddress a;
                nice_address_init(&a);
                if (!nice_address_set_from_string(&a, cfg->local_address) ||
                    !nice_agent_add_local_address(ice->agent, &a))
                        goto fail;
        }

        ice->stream_id = nice_agent_add_stream(ice->agent, 1);
        if (ice->stream_id == 0)
                goto fail;
        /* A relayed candidate is the path of last resort: it works through any NAT
         * (symmetric ones included), so it is gathered whenever a server is known. */
        if (cfg->turn_host &&
            !nice_agent_set_relay_info(ice->agent, ice->stream_id, COMPONENT_ID, cfg->turn_host,
                                       cfg->turn_port, cfg->turn_user, cfg->turn_pass,
                                       NICE_RELAY_TYPE_TURN_UDP))
                goto fail;

        g_signal_connect(ice->agent, "candidate-gathering-done", G_CALLBACK(on_gathering_done), ice);
        g_signal_connect(ice->agent, "component-state-changed", G_CALLBACK(on_state_changed), ice);
        g_signal_connect(ice->agent, "reliable-transport-writable",
                         G_CALLBACK(on_transport_writable), ice);
        g_signal_connect(ice->agent, "new-selected-pair-full", G_CALLBACK(on_selected_pair), ice);

        if (!nice_agent_attach_recv(ice->agent, ice->stream_id, COMPONENT_ID, ice->ctx, on_recv, ice))
                goto fail;

        return ice;

fail:
        return n2p_ice_free(ice);
}

int n2p_ice_gather(n2p_ice *ice) {
        if (!ice)
                return -EINVAL;
        if (!nice_agent_gather_candidates(ice->agent, ice->stream_id))
                return -EADDRNOTAVAIL;
        return 0;
}

static int cmp_priority_desc(const void *a, const void *b) {
        const n2p_ice_candidate *x = a, *y = b;
        return x->priority < y->priority ? 1 : x->priority > y->priority ? -1 : 0;
}

/* Fills c from a libnice candidate; -EINVAL if our format cannot carry it. */
static int candidate_from_nice(const NiceCandidate *nc, n2p_ice_candidate *c) {
        memset(c, 0, sizeof *c);
        if (nc->transport != NICE_CANDIDATE_TRANSPORT_UDP || (unsigned) nc->type > N2P_ICE_CAND_RELAY)
                return -EINVAL;
        c->type = (n2p_ice_cand_type) nc->type;
        c->priority = nc->priority;
        g_strlcpy(c->foundation, nc->foundation, sizeof c->foundation);
        nice_address_copy_to_sockaddr(&nc->addr, (struct sockaddr *) &c->addr);
        /* A link-local address needs a scope only the sender knows: useless to the peer. */
        if (c->addr.ss_family == AF_INET6 &&
            IN6_IS_ADDR_LINKLOCAL(&((struct sockaddr_in6 *) &c->addr)->sin6_addr))
                return -EINVAL;
        if (c->addr.ss_family == AF_INET6)
                ((struct sockaddr_in6 *) &c->addr)->sin6_scope_id = 0;
        return candidate_valid(c);
}

int n2p_ice_get_local(n2p_ice *ice, n2p_ice_desc *ret) {
        g_autofree gchar *ufrag = NULL, *pwd = NULL;
        g_autofree n2p_ice_candidate *all = NULL;
        GSList *list, *l;
        size_t n = 0, cap;
        n2p_ice_desc d;

        if (!ice || !ret)
                return -EINVAL;
        if (!ice->gathered)
                return -EAGAIN;
        if (!nice_agent_get_local_credentials(ice->agent, ice->stream_id, &ufrag, &pwd))
                return -EIO;

        memset(&d, 0, sizeof d);
        if (ice_string_len(ufrag, strlen(ufrag) + 1, UFRAG_MIN, UFRAG_MAX) < 0 ||
            ice_string_len(pwd, strlen(pwd) + 1, PWD_MIN, PWD_MAX) < 0)
                return -EINVAL;
        g_strlcpy(d.ufrag, ufrag, sizeof d.ufrag);
        g_strlcpy(d.pwd, pwd, sizeof d.pwd);

        list = nice_agent_get_local_candidates(ice->agent, ice->stream_id, COMPONENT_ID);
        cap = g_slist_length(list);
        all = g_new0(n2p_ice_candidate, cap > 0 ? cap : 1);
        for (l = list; l; l = l->next)
                if (candidate_from_nice(l->data, &all[n]) == 0)
                        n++;
        g_slist_free_full(list, (GDestroyNotify) nice_candidate_free);

        /* Keep the ones libnice would try first. */
        qsort(all, n, sizeof all[0], cmp_priority_desc);
        d.n_candidates = MIN(n, (size_t) N2P_ICE_MAX_CANDIDATES);
        memcpy(d.candidates, all, d.n_candidates * sizeof all[0]);

        *ret = d;
        return 0;
}

int n2p_ice_set_remote(n2p_ice *ice, const n2p_ice_desc *remote) {
        GSList *list = NULL;
        int r = 0, added;

        if (!ice || !remote)
                return -EINVAL;
        /* Re-validate: the struct may not have come from our decoder. */
        if (ice_string_len(remote->ufrag, sizeof remote->ufrag, UFRAG_MIN, UFRAG_MAX) < 0 ||
            ice_string_len(remote->pwd, sizeof remote->pwd, PWD_MIN, PWD_MAX) < 0 ||
            remote->n_candidates > N2P_ICE_MAX_CANDIDATES)
                return -EINVAL;
        for (size_t i = 0; i < remote->n_candidates; i++)
                if (candidate_valid(&remote->candidates[i]) < 0)
                        return -EINVAL;
        if (ice->guard || ice->reported_connected || ice->failed)
                return -EALREADY;

        if (!nice_agent_set_remote_credentials(ice->agent, ice->stream_id, remote->ufrag, remote->pwd))
                return -EIO;

        for (size_t i = remote->n_candidates; i > 0; i--) {
                const n2p_ice_candidate *c = &remote->candidates[i - 1];
                NiceCandidate *nc = nice_candidate_new((NiceCandidateType) c->type);

                nice_address_set_from_sockaddr(&nc->addr, (const struct sockaddr *) &c->addr);
                nc->priority = c->priority;
                g_strlcpy(nc->foundation, c->foundation, sizeof nc->foundation);
                nc->stream_id = ice->stream_id;
                nc->component_id = COMPONENT_ID;
                nc->transport = NICE_CANDIDATE_TRANSPORT_UDP;
                list = g_slist_prepend(list, nc);
        }

        /* Arm the guard first: whatever libnice does next, FAILED comes in time. */
        ice->guard = g_timeout_source_new(N2P_ICE_TIMEOUT_MS);
        g_source_set_callback(ice->guard, guard_cb, ice, NULL);
        g_source_attach(ice->guard, ice->ctx);

        /* No candidates is legal: the peer's checks can still find us (prflx). */
        if (!list)
                return 0;
        added = nice_agent_set_remote_candidates(ice->agent, ice->stream_id, COMPONENT_ID, list);
        if (added <= 0) {
                source_clear(&ice->guard);
                r = -EINVAL;
        }
        g_slist_free_full(list, (GDestroyNotify) nice_candidate_free);
        return r;
}

static void direct_drop(n2p_ice *ice) {
        if (ice->direct_sock)
                g_object_unref(ice->direct_sock);
        ice->direct_sock = NULL;
}

/* Where the selected pair sends, if we may send there ourselves: not through a
 * TURN allocation, whose framing only libnice knows. */
static void direct_refresh(n2p_ice *ice) {
        NiceCandidate *local = NULL, *remote = NULL;
        GSocket *sock;

        ice->pair_changed = false;
        direct_drop(ice);
        if (!nice_agent_get_selected_pair(ice->agent, ice->stream_id, COMPONENT_ID, &local, &remote) ||
            !local || !remote || local->transport != NICE_CANDIDATE_TRANSPORT_UDP)
                return;
        sock = nice_agent_get_selected_socket(ice->agent, ice->stream_id, COMPONENT_ID);
        if (!sock)
                return;
        /*
         * Receive runs of datagrams as one buffer (UDP GRO): a GSO batch from the
         * peer then crosses the kernel and libnice's receive path once, not 40
         * times; the link splits it again by the lengths in its headers. Never
         * beside a TURN allocation in use, whose framing libnice parses itself.
         */
        int gro = local->type != NICE_CANDIDATE_TYPE_RELAYED;
        (void) setsockopt(g_socket_get_fd(sock), SOL_UDP, UDP_GRO, &gro, sizeof gro);
        if (local->type == NICE_CANDIDATE_TYPE_RELAYED) {
                g_object_unref(sock);
                return;
        }
        memset(&ice->direct_to, 0, sizeof ice->direct_to);
        nice_address_copy_to_sockaddr(&remote->addr, (struct sockaddr *) &ice->direct_to);
        if (ice->direct_to.ss_family == AF_INET)
                ice->direct_len = sizeof(struct sockaddr_in);
        else if (ice->direct_to.ss_family == AF_INET6)
                ice->direct_len = sizeof(struct sockaddr_in6);
        else {
                g_object_unref(sock);
                return;
        }
        ice->direct_sock = sock;
        if (!ice->batch)
                ice->batch = g_malloc(GSO_MAX_BYTES + DATAGRAM_MAX);
}

/* Sends what is batched. A datagram the kernel does not take is lost, as on
 * any UDP path: the link above retransmits. */
static void batch_flush(n2p_ice *ice) {
        int fd;

        if (ice->n_segs == 0)
                return;
        fd = ice->direct_sock ? g_socket_get_fd(ice->direct_sock) : -1;
        if (fd >= 0 && ice->n_segs > 1 && !ice->no_gso) {
                struct iovec iov = { .iov_base = ice->batch, .iov_len = ice->batch_len };
                union {
                        char buf[CMSG_SPACE(sizeof(uint16_t))];
                        struct cmsghdr align;
                } control = {};
                struct msghdr msg = {
                        .msg_name = &ice->direct_to,
                        .msg_namelen = ice->direct_len,
                        .msg_iov = &iov,
                        .msg_iovlen = 1,
                        .msg_control = control.buf,
                        .msg_controllen = sizeof control.buf,
                };
                struct cmsghdr *cm = CMSG_FIRSTHDR(&msg);
                uint16_t seg = (uint16_t) ice->seg_size;

                cm->cmsg_level = SOL_UDP;
                cm->cmsg_type = UDP_SEGMENT;
                cm->cmsg_len = CMSG_LEN(sizeof seg);
                memcpy(CMSG_DATA(cm), &seg, sizeof seg);
                if (sendmsg(fd, &msg, MSG_DONTWAIT | MSG_NOSIGNAL) >= 0 ||
                    errno == EAGAIN || errno == EWOULDBLOCK || errno == ENOBUFS)
                        goto done;
                /* No GSO here (old kernel, device without checksum offload):
                 * one datagram at a time from now on. */
                ice->no_gso = true;
        }
        for (size_t off = 0; off < ice->batch_len; off += ice->seg_size) {
                size_t n = MIN(ice->seg_size, ice->batch_len - off);
                if (fd >= 0)
                        (void) sendto(fd, ice->batch + off, n, MSG_DONTWAIT | MSG_NOSIGNAL,
                                      (struct sockaddr *) &ice->direct_to, ice->direct_len);
                else
                        (void) nice_agent_send(ice->agent, ice->stream_id, COMPONENT_ID, (guint) n,
                                               (const gchar *) ice->batch + off);
        }
done:
        ice->batch_len = 0;
        ice->n_segs = 0;
        ice->batch_closed = false;
}

static gboolean flush_cb(gpointer userdata) {
        n2p_ice *ice = userdata;

        g_source_unref(ice->flush);
        ice->flush = NULL;
        batch_flush(ice);
        return G_SOURCE_REMOVE;
}

static ssize_t batch_add(n2p_ice *ice, const uint8_t *buf, size_t len) {
        bool first = !ice->flush;

        /* The first datagram of a main loop turn leaves at once: alone, it is a
         * request or an answer and must not wait; the ones after it are a burst
         * and wait for the end of the turn, batched. */
        if (!ice->flush) {
                ice->flush = g_idle_source_new();
                g_source_set_priority(ice->flush, G_PRIORITY_HIGH);
                g_source_set_callback(ice->flush, flush_cb, ice, NULL);
                g_source_attach(ice->flush, ice->ctx);
        }
        if (first && ice->n_segs == 0) {
                /* not taken: lost, as on any UDP path */
                (void) sendto(g_socket_get_fd(ice->direct_sock), buf, len, MSG_DONTWAIT | MSG_NOSIGNAL,
                              (struct sockaddr *) &ice->direct_to, ice->direct_len);
                return (ssize_t) len;
        }
        if (ice->n_segs > 0 && (ice->batch_closed || len > ice->seg_size || ice->n_segs == GSO_MAX_SEGMENTS ||
                                ice->batch_len + len > GSO_MAX_BYTES))
                batch_flush(ice);
        if (ice->n_segs == 0)
                ice->seg_size = len;
        memcpy(ice->batch + ice->batch_len, buf, len);
        ice->batch_len += len;
        ice->n_segs++;
        if (len < ice->seg_size)
                ice->batch_closed = true;
        return (ssize_t) len;
}

ssize_t n2p_ice_send(n2p_ice *ice, const uint8_t *buf, size_t len) {
        unsigned seen;
        gint n;

        if (!ice || (!buf && len > 0))
                return -EINVAL;
        if (ice->failed)
                return -ENOTCONN;
        if (len == 0)
                return 0;
        if (!ice->reported_connected) {
                ice->want_writable = true;
                return -EAGAIN;
        }
        if (ice->reliable)
                len = MIN(len, (size_t) G_MAXINT);
        else if (len > DATAGRAM_MAX)
                return -EMSGSIZE;

        if (!ice->reliable) {
                if (ice->pair_changed) {
                        batch_flush(ice);
                        direct_refresh(ice);
                }
                if (ice->direct_sock)
                        return batch_add(ice, buf, len);
        }

        seen = ice->writable_seen;
        n = nice_agent_send(ice->agent, ice->stream_id, COMPONENT_ID, (guint) len, (const gchar *) buf);
        /* A fatal error (PseudoTCP reset, consent revoked) changed the state during the call. */
        if (ice->failed)
                return -ENOTCONN;
        if (n > 0 && (size_t) n >= len)
                return n;

        /*
         * nice_agent_send() gives no errno: -1 means "would block" or a transient
         * socket error, anything fatal arrives as FAILED (checked above). Reliable
         * mode then promises reliable-transport-writable; a writable that came
         * during the call is passed on too, so none is lost.
         */
        ice->want_writable = true;
        if (ice->reliable) {
                if (ice->writable_seen != seen) {
                        ice->writable = true;
                        schedule_dispatch(ice);
                }
        } else if (!ice->retry) {
                /* UDP has no writable signal; the socket buffer drains in microseconds. */
                ice->retry = g_timeout_source_new(DATAGRAM_RETRY_MS);
                g_source_set_callback(ice->retry, retry_cb, ice, NULL);
                g_source_attach(ice->retry, ice->ctx);
        }
        return n > 0 ? n : -EAGAIN;
}

static const char *type_name(n2p_ice_cand_type t) {
        static const char *const names[] = {
                [N2P_ICE_CAND_HOST] = "host",
                [N2P_ICE_CAND_SRFLX] = "srflx",
                [N2P_ICE_CAND_PRFLX] = "prflx",
                [N2P_ICE_CAND_RELAY] = "relay",
        };
        return (unsigned) t < N2P_ELEMENTSOF(names) ? names[t] : "none";
}

const char *n2p_ice_local_type(n2p_ice *ice) {
        if (!ice || !ice->reported_connected || !ice->have_pair)
                return "none";
        return type_name(ice->local_type);
}

const char *n2p_ice_remote_type(n2p_ice *ice) {
        if (!ice || !ice->reported_connected || !ice->have_pair)
                return "none";
        return type_name(ice->remote_type);
}

n2p_ice *n2p_ice_free(n2p_ice *ice) {
        if (!ice)
                return NULL;

        source_clear(&ice->guard);
        source_clear(&ice->dispatch);
        source_clear(&ice->retry);
        source_clear(&ice->flush);
        batch_flush(ice);       /* a last GOAWAY, say */
        direct_drop(ice);
        g_free(ice->batch);

        if (ice->agent) {
                if (ice->stream_id > 0)
                        nice_agent_attach_recv(ice->agent, ice->stream_id, COMPONENT_ID, ice->ctx,
                                               NULL, NULL);
                g_signal_handlers_disconnect_by_data(ice->agent, ice);
                /* Releases TURN allocations; the task holds the agent until done, so
                 * dropping our reference now is safe. */
                nice_agent_close_async(ice->agent, NULL, NULL);
                g_object_unref(ice->agent);
        }
        g_main_context_unref(ice->ctx);
        g_free(ice);
        return NULL;
}
