/* SPDX-License-Identifier: MIT */
/*
 * A reliable byte pipe over datagrams (link.h). One byte stream each way, so the
 * whole protocol is QUIC's recovery for a single stream: packet numbers that are
 * never reused, ACK ranges, data retransmitted by offset in new packets, and a
 * delivery-rate congestion controller with pacing. Callbacks (recv, writable) run
 * only from n2p_link_input() and the link's own timer, never from n2p_link_write().
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <glib.h>
#include <sodium.h>

#include "link.h"
#include "util.h"

enum {
        MSS = N2P_LINK_DATAGRAM,
        PLAIN_MAX = N2P_LINK_DATAGRAM - N2P_LINK_OVERHEAD,
        ACK_FIXED = 1 + 8 + 4 + 1 + 1,
        ACK_MAX = ACK_FIXED + 16 * N2P_LINK_MAX_RANGES,
        ACK_FLAG_AES = 1,                      /* the sender of the ACK opens AES-256-GCM */
        DATA_HEADER = 1 + 8 + 2,
        SENT_RING = 32768,                     /* ack-eliciting packets tracked, power of 2 */
        OOO_MAX = 512,                         /* out-of-order byte ranges kept */
        PACKET_THRESHOLD = 3,
        ACK_EVERY = 8,                         /* ack-eliciting packets per ACK */
        ACK_DELAY_US = 1000,
        GRANULARITY_US = 1000,
        INITIAL_RTT_US = 100000,
        INITIAL_CWND = 32 * MSS,
        MIN_CWND = 4 * MSS,
        MAX_PTO_SHIFT = 6,
        MIN_RTT_WINDOW_US = 10 * 1000000,
        BW_EPOCH_ROUNDS = 10,
        BURST_PACKETS_PER_CALL = 512,          /* then yield to the main loop */
        WRITABLE_ROOM = 256 * 1024,
        /* Tokens the pacer may bank: the main loop wakes at millisecond
         * granularity and may be busy for a while, and time it cannot use is
         * rate lost for good (the delivery rate would then fall with it). */
        PACING_BURST_US = 10000,
};

G_STATIC_ASSERT((N2P_LINK_BUFFER & (N2P_LINK_BUFFER - 1)) == 0);
G_STATIC_ASSERT(ACK_MAX + DATA_HEADER + 64 < PLAIN_MAX);

#define STARTUP_GAIN 2.885
static const double probe_gains[8] = { 1.25, 0.75, 1, 1, 1, 1, 1, 1 };

typedef struct range {
        uint64_t lo, hi;        /* packet numbers: inclusive; bytes: [lo, hi) */
} range;

typedef struct sent_pkt {
        uint64_t pn;
        uint64_t off;
        uint64_t sent_us;
        uint64_t delivered, delivered_us, first_sent_us;
        uint32_t size;
        uint16_t len;
        bool in_flight;
        bool app_limited;
} sent_pkt;

typedef enum { MODE_STARTUP, MODE_DRAIN, MODE_PROBE_BW } cc_mode;

struct n2p_link {
        uint8_t tx_key[32], rx_key[32];
        /* AES-256-GCM, where the CPU has it: keys expanded once. We open it
         * if aes_local; we seal with it once the peer's ACKs say it opens it. */
        crypto_aead_aes256gcm_state tx_aes, rx_aes;
        bool aes_local, aes_peer;
        n2p_link_send_fn send_fn;
        n2p_link_callbacks cb;
        void *userdata;
        int error;

        /* send side: bytes [snd_una, snd_end) are in sbuf */
        uint8_t *sbuf;
        uint64_t snd_una, snd_nxt, snd_end;
        range *retx;                    /* byte ranges to send again, oldest first */
        size_t retx_head, retx_len, retx_cap;
        sent_pkt *sent;
        uint64_t pn_next, pn_oldest, largest_acked;
        bool have_largest_acked;
        uint64_t bytes_in_flight;
        uint64_t last_eliciting_us;
        bool want_writable;
        bool path_blocked;
        uint8_t pending[N2P_LINK_DATAGRAM];     /* built, refused with -EAGAIN */
        size_t pending_len;
        sent_pkt pending_meta;
        bool pending_eliciting;
        unsigned probes;

        /* round trip (RFC 9002) */
        bool have_rtt;
        uint64_t srtt, rttvar, latest_rtt, min_rtt, min_rtt_stamp;
        uint64_t loss_time;
        unsigned pto_count;

        /* congestion control */
        uint64_t delivered, delivered_us, first_sent_us;
        uint64_t bw, bw_cur, bw_prev;
        uint64_t round, next_round_delivered;
        unsigned epoch_rounds;
        cc_mode mode;
        uint64_t full_bw;
        unsigned full_bw_count;
        bool filled_pipe;
        unsigned cycle;
        uint64_t cycle_start;
        uint64_t cwnd;
        double pacing_gain, cwnd_gain;
        double tokens;
        uint64_t tokens_us;
        bool app_limited;

        /* receive side */
        uint8_t *rbuf;
        uint64_t rcv_nxt;
        range ooo[OOO_MAX];
        size_t n_ooo;
        range seen[N2P_LINK_MAX_RANGES + 1];   /* packet numbers, newest first */
        size_t n_seen;
        uint64_t pn_floor;              /* below: treated as seen */
        uint64_t largest_recv_us;
        unsigned unacked_eliciting;
        bool ack_now;
        uint64_t ack_deadline;

        GSource *timer;
        n2p_link_stats stats;
        /* Separate buffers: sending happens while a received packet is processed
         * (the session answers from inside recv). */
        uint8_t plain[PLAIN_MAX];               /* received, decrypted */
        uint8_t out[PLAIN_MAX];                 /* being built */
        uint8_t pkt[N2P_LINK_DATAGRAM];
        uint64_t deadline;                      /* the timer's, UINT64_MAX = none */
};

typedef struct link_timer {
        GSource source;
        n2p_link *l;
} link_timer;

static uint64_t now_us(void) {
        return (uint64_t) g_get_monotonic_time();
}

/* --- receive-side bookkeeping of packet numbers (replay window + ACK ranges) --- */

static bool pn_seen(const n2p_link *l, uint64_t pn) {
        if (pn < l->pn_floor)
                return true;
        for (size_t i = 0; i < l->n_seen; i++)
                if (pn >= l->seen[i].lo && pn <= l->seen[i].hi)
                        return true;
        return false;
}

static void pn_record(n2p_link *l, uint64_t pn) {
        size_t i;

        /* seen[] is newest first and ranges never touch. */
        for (i = 0; i < l->n_seen; i++) {
                range *r = &l->seen[i];
                if (pn == r->hi + 1) {
                        r->hi = pn;
                        if (i > 0 && l->seen[i - 1].lo == pn + 1) {
                                l->seen[i - 1].lo = r->lo;
                                memmove(&l->seen[i], &l->seen[i + 1], (l->n_seen - i - 1) * sizeof(range));
                                l->n_seen--;
                        }
                        return;
                }
                if (pn + 1 == r->lo) {
                        r->lo = pn;
                        if (i + 1 < l->n_seen && l->seen[i + 1].hi + 1 == pn) {
                                r->lo = l->seen[i + 1].lo;
                                memmove(&l->seen[i + 1], &l->seen[i + 2], (l->n_seen - i - 2) * sizeof(range));
                                l->n_seen--;
                        }
                        return;
                }
                if (pn > r->hi)
                        break;
        }
        memmove(&l->seen[i + 1], &l->seen[i], (l->n_seen - i) * sizeof(range));
        l->seen[i] = (range) { pn, pn };
        l->n_seen++;
        if (l->n_seen > N2P_LINK_MAX_RANGES) {
                /* Forget the oldest range; everything below what we keep counts as seen. */
                l->n_seen--;
                l->pn_floor = l->seen[l->n_seen - 1].lo;
        }
}

/* --- send buffer --- */

static size_t ring_pos(uint64_t off) {
        return (size_t) (off & (N2P_LINK_BUFFER - 1));
}

static void ring_copy_out(const uint8_t *ring, uint64_t off, uint8_t *dst, size_t len) {
        size_t p = ring_pos(off), first = MIN(len, (size_t) N2P_LINK_BUFFER - p);
        memcpy(dst, ring + p, first);
        memcpy(dst + first, ring, len - first);
}

static void ring_copy_in(uint8_t *ring, uint64_t off, const uint8_t *src, size_t len) {
        size_t p = ring_pos(off), first = MIN(len, (size_t) N2P_LINK_BUFFER - p);
        memcpy(ring + p, src, first);
        memcpy(ring, src + first, len - first);
}

static void retx_push(n2p_link *l, uint64_t lo, uint64_t hi) {
        if (l->retx_len > 0) {
                range *t = &l->retx[(l->retx_head + l->retx_len - 1) % l->retx_cap];
                if (t->hi == lo) {
                        t->hi = hi;
                        return;
                }
        }
        if (l->retx_len == l->retx_cap) {
                size_t ncap = l->retx_cap ? l->retx_cap * 2 : 64;
                range *n = g_new(range, ncap);
                for (size_t i = 0; i < l->retx_len; i++)
                        n[i] = l->retx[(l->retx_head + i) % l->retx_cap];
                g_free(l->retx);
                l->retx = n;
                l->retx_cap = ncap;
                l->retx_head = 0;
        }
        l->retx[(l->retx_head + l->retx_len) % l->retx_cap] = (range) { lo, hi };
        l->retx_len++;
}

/* The next byte range to send again, clipped to what is not yet acknowledged. */
static bool retx_peek(n2p_link *l, range *ret) {
        while (l->retx_len > 0) {
                range *r = &l->retx[l->retx_head];
                if (r->lo < l->snd_una)
                        r->lo = l->snd_una;
                if (r->lo < r->hi) {
                        *ret = *r;
                        return true;
                }
                l->retx_head = (l->retx_head + 1) % l->retx_cap;
                l->retx_len--;
        }
        return false;
}

static void retx_consume(n2p_link *l, size_t n) {
        range *r = &l->retx[l->retx_head];
        r->lo += n;
        if (r->lo >= r->hi) {
                l->retx_head = (l->retx_head + 1) % l->retx_cap;
                l->retx_len--;
        }
}

static bool has_data(n2p_link *l) {
        range r;
        return retx_peek(l, &r) || l->snd_nxt < l->snd_end;
}

/* --- round trip and congestion control --- */

static uint64_t bdp(const n2p_link *l, double gain) {
        if (l->bw == 0 || !l->have_rtt)
                return INITIAL_CWND;
        return (uint64_t) (gain * (double) l->bw * (double) l->min_rtt / 1e6);
}

static double pacing_rate(const n2p_link *l) {
        if (l->bw == 0) {
                uint64_t rtt = l->have_rtt ? MAX(l->srtt, (uint64_t) GRANULARITY_US) : (uint64_t) INITIAL_RTT_US / 10;
                return STARTUP_GAIN * (double) l->cwnd * 1e6 / (double) rtt;
        }
        return l->pacing_gain * (double) l->bw;
}

static void rtt_sample(n2p_link *l, uint64_t latest, uint64_t ack_delay, uint64_t now) {
        l->latest_rtt = latest;
        if (!l->have_rtt || latest <= l->min_rtt || now - l->min_rtt_stamp > MIN_RTT_WINDOW_US) {
                l->min_rtt = latest;
                l->min_rtt_stamp = now;
        }
        if (!l->have_rtt) {
                l->have_rtt = true;
                l->srtt = latest;
                l->rttvar = latest / 2;
                return;
        }
        uint64_t adj = latest;
        if (latest >= l->min_rtt + ack_delay)
                adj = latest - ack_delay;
        uint64_t d = l->srtt > adj ? l->srtt - adj : adj - l->srtt;
        l->rttvar = (3 * l->rttvar + d) / 4;
        l->srtt = (7 * l->srtt + adj) / 8;
}

typedef struct rate_sample {
        bool valid;
        uint64_t prior_delivered, prior_us;
        uint64_t send_elapsed, ack_elapsed;
        bool app_limited;
} rate_sample;

static void cc_on_ack(n2p_link *l, const rate_sample *rs, uint64_t acked, uint64_t now) {
        bool round_start = false;

        if (!rs->valid)
                return;
        if (rs->prior_delivered >= l->next_round_delivered) {
                l->next_round_delivered = l->delivered;
                l->round++;
                round_start = true;
                if (++l->epoch_rounds >= BW_EPOCH_ROUNDS) {
                        l->epoch_rounds = 0;
                        l->bw_prev = l->bw_cur;
                        l->bw_cur = 0;
                }
        }

        uint64_t interval = MAX(rs->send_elapsed, rs->ack_elapsed);
        if (interval > 0) {
                uint64_t sample = (l->delivered - rs->prior_delivered) * 1000000 / interval;
                if (!rs->app_limited || sample >= l->bw) {
                        l->bw_cur = MAX(l->bw_cur, sample);
                }
        }
        l->bw = MAX(l->bw_cur, l->bw_prev);

        switch (l->mode) {
        case MODE_STARTUP:
                /* A flow held back by the streams' windows is "application
                 * limited", yet once a whole BDP is in flight its samples do show
                 * the path: without this it would pace at startup gain forever. */
                if (round_start && (!rs->app_limited || l->bytes_in_flight >= bdp(l, 1.0))) {
                        if (l->bw >= l->full_bw + l->full_bw / 4) {
                                l->full_bw = l->bw;
                                l->full_bw_count = 0;
                        } else if (++l->full_bw_count >= 3) {
                                l->filled_pipe = true;
                                l->mode = MODE_DRAIN;
                                l->pacing_gain = 1 / STARTUP_GAIN;
                        }
                }
                break;
        case MODE_DRAIN:
                if (l->bytes_in_flight <= bdp(l, 1.0)) {
                        l->mode = MODE_PROBE_BW;
                        l->cycle = 2;
                        l->cycle_start = now;
                        l->pacing_gain = probe_gains[l->cycle];
                        l->cwnd_gain = 2.0;
                }
                break;
        case MODE_PROBE_BW:
                if (now - l->cycle_start > l->min_rtt) {
                        l->cycle = (l->cycle + 1) % G_N_ELEMENTS(probe_gains);
                        l->cycle_start = now;
                        l->pacing_gain = probe_gains[l->cycle];
                }
                break;
        }

        /* Room for ACKs that come in bursts (delayed, or batched by the main loop). */
        uint64_t target = bdp(l, l->cwnd_gain) + l->bw * 4 * GRANULARITY_US / 1000000 + 4 * MSS;
        if (l->filled_pipe)
                l->cwnd = MIN(l->cwnd + acked, target);
        else if (l->cwnd < target || l->delivered < INITIAL_CWND)
                l->cwnd += acked;
        l->cwnd = CLAMP(l->cwnd, (uint64_t) MIN_CWND, (uint64_t) N2P_LINK_BUFFER);
}

/* --- timers --- */

static uint64_t pto_interval(const n2p_link *l) {
        uint64_t srtt = l->have_rtt ? l->srtt : INITIAL_RTT_US;
        uint64_t var = l->have_rtt ? l->rttvar : INITIAL_RTT_US / 2;
        uint64_t base = srtt + MAX(4 * var, (uint64_t) GRANULARITY_US) + ACK_DELAY_US + GRANULARITY_US;
        return base << MIN(l->pto_count, (unsigned) MAX_PTO_SHIFT);
}

static void arm_timer(n2p_link *l, uint64_t now, uint64_t pace_at) {
        uint64_t t = UINT64_MAX;

        if (l->unacked_eliciting > 0 && l->ack_deadline > 0)
                t = MIN(t, l->ack_deadline);
        if (l->loss_time > 0)
                t = MIN(t, l->loss_time);
        else if (l->bytes_in_flight > 0)
                t = MIN(t, l->last_eliciting_us + pto_interval(l));
        if (pace_at > 0)
                t = MIN(t, pace_at);
        if (l->path_blocked)
                t = MIN(t, now + 100 * GRANULARITY_US);   /* should writable never come */

        /* A plain field that the timer source's prepare() reads: this runs for
         * every packet, and g_source_set_ready_time() would write the loop's
         * wakeup eventfd each time (one more syscall and one more empty loop
         * turn per packet, measurable in a request/response round trip). */
        l->deadline = t == UINT64_MAX ? UINT64_MAX : MAX(t, now);
}

/* --- sending --- */

static size_t put_ack(n2p_link *l, uint8_t *p, uint64_t now) {
        size_t off = 0;
        p[off++] = N2P_LINK_FRAME_ACK;
        n2p_put_be64(p + off, l->rcv_nxt);
        off += 8;
        n2p_put_be32(p + off, (uint32_t) MIN(now - l->largest_recv_us, (uint64_t) UINT32_MAX));
        off += 4;
        p[off++] = l->aes_local ? ACK_FLAG_AES : 0;
        p[off++] = (uint8_t) l->n_seen;
        for (size_t i = 0; i < l->n_seen; i++) {
                n2p_put_be64(p + off, l->seen[i].hi);
                n2p_put_be64(p + off + 8, l->seen[i].lo);
                off += 16;
        }
        l->unacked_eliciting = 0;
        l->ack_now = false;
        l->ack_deadline = 0;
        return off;
}

static void fail(n2p_link *l, int error) {
        if (l->error == 0)
                l->error = error;
}

/* AES-256-GCM's 96-bit nonce: the packet number, big-endian, zero-padded. */
static void aes_nonce(uint8_t npub[crypto_aead_aes256gcm_NPUBBYTES], uint64_t pn) {
        memset(npub, 0, crypto_aead_aes256gcm_NPUBBYTES);
        n2p_put_be64(npub + 4, pn);
}

/* Builds datagram pn around the frames in p[0..len) into d. */
static int seal(n2p_link *l, uint64_t pn, const uint8_t *p, size_t len, uint8_t *d) {
        bool aes = l->aes_local && l->aes_peer;
        int r;

        d[0] = aes ? N2P_LINK_PKT_AES : N2P_LINK_PKT_DATA;
        n2p_put_be64(d + 1, pn);
        n2p_put_be16(d + 9, (uint16_t) (len + N2P_LINK_OVERHEAD));
        if (aes) {
                uint8_t npub[crypto_aead_aes256gcm_NPUBBYTES];
                if (pn == UINT64_MAX)
                        return -EOVERFLOW;
                aes_nonce(npub, pn);
                crypto_aead_aes256gcm_encrypt_afternm(d + N2P_LINK_HEADER, NULL, p, len, d, N2P_LINK_HEADER,
                                                      NULL, npub, &l->tx_aes);
                l->stats.packets_sent_aes++;
                return 0;
        }
        n2p_cipher encryptor = { .n = 0 };
        memcpy(encryptor.k, l->tx_key, sizeof encryptor.k);
        r = n2p_cipher_encrypt_at(&encryptor, pn, d, N2P_LINK_HEADER, p, len, d + N2P_LINK_HEADER);
        sodium_memzero(&encryptor, sizeof encryptor);
        return r;
}

/* Hands one built datagram to the path; false if it must wait for writable. */
static bool transmit(n2p_link *l, const uint8_t *d, size_t len, const sent_pkt *meta, bool eliciting,
                     uint64_t now) {
        ssize_t n = l->send_fn(d, len, l->userdata);

        if (n == -EAGAIN || n == -EWOULDBLOCK || n == -ENOBUFS) {
                if (d != l->pending)
                        memcpy(l->pending, d, len);
                l->pending_len = len;
                l->pending_meta = *meta;
                l->pending_eliciting = eliciting;
                l->path_blocked = true;
                return false;
        }
        if (n < 0) {
                fail(l, (int) n);
                return false;
        }
        l->pending_len = 0;
        l->stats.packets_sent++;
        if (eliciting) {
                sent_pkt *e = &l->sent[meta->pn & (SENT_RING - 1)];
                if (l->bytes_in_flight == 0) {
                        l->first_sent_us = now;
                        l->delivered_us = now;
                }
                *e = *meta;
                e->sent_us = now;
                e->delivered = l->delivered;
                e->delivered_us = l->delivered_us;
                e->first_sent_us = l->first_sent_us;
                e->app_limited = l->app_limited;
                e->in_flight = true;
                l->bytes_in_flight += e->size;
                l->last_eliciting_us = now;
        }
        return true;
}

static void link_send(n2p_link *l) {
        uint64_t now = now_us(), pace_at = 0;
        double rate = pacing_rate(l);
        unsigned budget = BURST_PACKETS_PER_CALL;

        if (l->error != 0)
                return;

        l->tokens += rate * (double) (now - l->tokens_us) / 1e6;
        l->tokens = MIN(l->tokens, MAX(rate * PACING_BURST_US / 1e6, 16.0 * MSS));
        l->tokens_us = now;

        if (l->pending_len > 0) {
                l->path_blocked = false;
                if (!transmit(l, l->pending, l->pending_len, &l->pending_meta, l->pending_eliciting, now))
                        goto out;
        }

        while (budget-- > 0) {
                bool want_ack = l->ack_now || (l->unacked_eliciting > 0 && l->ack_deadline > 0 && now >= l->ack_deadline);
                bool data = has_data(l);
                bool slot_free = !l->sent[l->pn_next & (SENT_RING - 1)].in_flight;
                bool can_data = data && slot_free &&
                        (l->probes > 0 || (l->bytes_in_flight + MSS <= l->cwnd && l->tokens >= MSS));
                bool ping = l->probes > 0 && !can_data;

                want_ack = want_ack && l->n_seen > 0;
                if (!can_data && !want_ack && !ping) {
                        if (data && slot_free && l->bytes_in_flight + MSS <= l->cwnd && l->tokens < MSS)
                                pace_at = now + (uint64_t) ((MSS - l->tokens) * 1e6 / rate) + 1;
                        /* Nothing to send although the window had room: samples from
                         * now on may understate the path. */
                        l->app_limited = !data && l->bytes_in_flight + MSS <= l->cwnd;
                        break;
                }

                uint8_t *p = l->out;
                size_t off = 0;
                sent_pkt meta = { .pn = l->pn_next };
                bool eliciting = false;

                if ((want_ack || l->unacked_eliciting > 0) && l->n_seen > 0)
                        off += put_ack(l, p, now);
                if (can_data) {
                        range r;
                        size_t room = PLAIN_MAX - off - DATA_HEADER, n;
                        if (retx_peek(l, &r)) {
                                n = (size_t) MIN((uint64_t) room, r.hi - r.lo);
                                meta.off = r.lo;
                                retx_consume(l, n);
                                l->stats.bytes_retransmitted += n;
                        } else {
                                n = (size_t) MIN((uint64_t) room, l->snd_end - l->snd_nxt);
                                meta.off = l->snd_nxt;
                                l->snd_nxt += n;
                        }
                        p[off] = N2P_LINK_FRAME_DATA;
                        n2p_put_be64(p + off + 1, meta.off);
                        n2p_put_be16(p + off + 9, (uint16_t) n);
                        ring_copy_out(l->sbuf, meta.off, p + off + DATA_HEADER, n);
                        off += DATA_HEADER + n;
                        meta.len = (uint16_t) n;
                        eliciting = true;
                } else if (ping) {
                        p[off++] = N2P_LINK_FRAME_PING;
                        eliciting = true;
                }
                if (l->probes > 0 && eliciting)
                        l->probes--;

                uint8_t *d = l->pkt;
                int r = seal(l, l->pn_next, p, off, d);
                if (r < 0) {
                        fail(l, r);
                        break;
                }
                l->pn_next++;
                meta.size = (uint32_t) (off + N2P_LINK_OVERHEAD);
                if (eliciting)
                        l->tokens -= meta.size;
                if (!transmit(l, d, off + N2P_LINK_OVERHEAD, &meta, eliciting, now))
                        break;
        }
        if (budget == (unsigned) -1 && l->error == 0)
                pace_at = now;   /* more to do: come back after the main loop had a turn */
out:
        arm_timer(l, now, pace_at);
}

/* --- acknowledgements and loss --- */

static void on_lost(n2p_link *l, sent_pkt *e) {
        e->in_flight = false;
        l->bytes_in_flight -= e->size;
        l->stats.packets_lost++;
        if (e->len > 0 && e->off + e->len > l->snd_una)
                retx_push(l, e->off, e->off + e->len);
}

static sent_pkt *tracked(n2p_link *l, uint64_t pn) {
        sent_pkt *e = &l->sent[pn & (SENT_RING - 1)];
        return e->in_flight && e->pn == pn ? e : NULL;
}

static void advance_oldest(n2p_link *l) {
        while (l->pn_oldest < l->pn_next && !tracked(l, l->pn_oldest))
                l->pn_oldest++;
}

static void detect_lost(n2p_link *l, uint64_t now) {
        uint64_t rtt = l->have_rtt ? MAX(l->srtt, l->latest_rtt) : INITIAL_RTT_US;
        uint64_t delay = MAX(rtt * 9 / 8, (uint64_t) GRANULARITY_US);

        l->loss_time = 0;
        if (!l->have_largest_acked)
                return;
        for (uint64_t pn = l->pn_oldest; pn < l->largest_acked; pn++) {
                sent_pkt *e = tracked(l, pn);
                if (!e)
                        continue;
                if (l->largest_acked - pn >= PACKET_THRESHOLD || e->sent_us + delay <= now)
                        on_lost(l, e);
                else if (l->loss_time == 0 || e->sent_us + delay < l->loss_time)
                        l->loss_time = e->sent_us + delay;
        }
        advance_oldest(l);
}

static int handle_ack(n2p_link *l, const uint8_t *p, size_t len, size_t *used, uint64_t now) {
        uint64_t cum, delay_us;
        range r[N2P_LINK_MAX_RANGES];
        size_t n;
        rate_sample rs = {};
        uint64_t acked = 0;

        if (len < ACK_FIXED)
                return -EBADMSG;
        cum = n2p_get_be64(p + 1);
        delay_us = n2p_get_be32(p + 9);
        n = p[14];
        if (n == 0 || n > N2P_LINK_MAX_RANGES || len - ACK_FIXED < n * 16)
                return -EBADMSG;
        for (size_t i = 0; i < n; i++) {
                r[i].hi = n2p_get_be64(p + ACK_FIXED + 16 * i);
                r[i].lo = n2p_get_be64(p + ACK_FIXED + 16 * i + 8);
                if (r[i].lo > r[i].hi || (i > 0 && r[i].hi >= r[i - 1].lo))
                        return -EBADMSG;
        }
        /* Nothing can be acknowledged that was never sent. */
        if (r[0].hi >= l->pn_next || cum > l->snd_nxt)
                return -EBADMSG;
        *used = ACK_FIXED + n * 16;
        if (p[13] & ACK_FLAG_AES)
                l->aes_peer = true;

        if (cum > l->snd_una)
                l->snd_una = cum;

        for (size_t i = 0; i < n; i++) {
                uint64_t lo = MAX(r[i].lo, l->pn_oldest);
                for (uint64_t pn = r[i].hi + 1; pn-- > lo;) {
                        sent_pkt *e = tracked(l, pn);
                        if (!e)
                                continue;
                        if (pn == r[0].hi)
                                rtt_sample(l, now - e->sent_us, MIN(delay_us, (uint64_t) 25000), now);
                        e->in_flight = false;
                        l->bytes_in_flight -= e->size;
                        l->delivered += e->size;
                        l->delivered_us = now;
                        acked += e->size;
                        if (!rs.valid || e->delivered > rs.prior_delivered) {
                                rs.valid = true;
                                rs.prior_delivered = e->delivered;
                                rs.prior_us = e->delivered_us;
                                rs.send_elapsed = e->sent_us - e->first_sent_us;
                                rs.ack_elapsed = now - e->delivered_us;
                                rs.app_limited = e->app_limited;
                                l->first_sent_us = e->sent_us;
                        }
                }
        }
        if (!l->have_largest_acked || r[0].hi > l->largest_acked) {
                l->largest_acked = r[0].hi;
                l->have_largest_acked = true;
        }
        if (acked > 0) {
                l->pto_count = 0;
                l->probes = 0;
        }
        advance_oldest(l);
        detect_lost(l, now);
        cc_on_ack(l, &rs, acked, now);
        return 0;
}

/* --- receiving --- */

static void ooo_insert(n2p_link *l, uint64_t lo, uint64_t hi) {
        size_t i = 0, j;

        while (i < l->n_ooo && l->ooo[i].hi < lo)
                i++;
        /* ranges i..j-1 touch [lo, hi): merge them */
        for (j = i; j < l->n_ooo && l->ooo[j].lo <= hi; j++) {
                lo = MIN(lo, l->ooo[j].lo);
                hi = MAX(hi, l->ooo[j].hi);
        }
        if (j == i) {
                if (l->n_ooo == OOO_MAX)
                        return;
                memmove(&l->ooo[i + 1], &l->ooo[i], (l->n_ooo - i) * sizeof(range));
                l->n_ooo++;
        } else if (j > i + 1) {
                memmove(&l->ooo[i + 1], &l->ooo[j], (l->n_ooo - j) * sizeof(range));
                l->n_ooo -= j - i - 1;
        }
        l->ooo[i] = (range) { lo, hi };
}

static bool ooo_has(const n2p_link *l, uint64_t lo, uint64_t hi) {
        for (size_t i = 0; i < l->n_ooo && l->ooo[i].lo <= lo; i++)
                if (l->ooo[i].hi >= hi)
                        return true;
        return false;
}

static void deliver(n2p_link *l, const uint8_t *buf, size_t len) {
        l->rcv_nxt += len;
        if (l->cb.recv)
                l->cb.recv(l, buf, len, l->userdata);
}

/* *ret_ooo is set when the data arrived out of order (worth an immediate ACK). */
static int handle_data(n2p_link *l, uint64_t off, const uint8_t *buf, size_t len, bool *ret_ooo) {
        uint64_t end = off + len;

        if (end < off || end > l->rcv_nxt + N2P_LINK_BUFFER)
                return -EBADMSG;
        if (end <= l->rcv_nxt)
                return 0;       /* a copy of what we have */
        if (off < l->rcv_nxt) {
                buf += l->rcv_nxt - off;
                off = l->rcv_nxt;
        }
        if (off > l->rcv_nxt) {
                *ret_ooo = true;
                if (ooo_has(l, off, end))
                        return 0;
                if (!l->rbuf)
                        l->rbuf = g_malloc(N2P_LINK_BUFFER);
                ring_copy_in(l->rbuf, off, buf, (size_t) (end - off));
                ooo_insert(l, off, end);
                return 0;
        }

        deliver(l, buf, (size_t) (end - off));
        /* What waited behind the gap may now follow. */
        while (l->n_ooo > 0 && l->ooo[0].lo <= l->rcv_nxt) {
                range r = l->ooo[0];
                memmove(&l->ooo[0], &l->ooo[1], (l->n_ooo - 1) * sizeof(range));
                l->n_ooo--;
                while (r.hi > l->rcv_nxt) {
                        size_t p = ring_pos(l->rcv_nxt);
                        size_t n = (size_t) MIN(r.hi - l->rcv_nxt, (uint64_t) (N2P_LINK_BUFFER - p));
                        deliver(l, l->rbuf + p, n);
                }
        }
        return 0;
}

static int process_frames(n2p_link *l, uint64_t pn, const uint8_t *p, size_t len, uint64_t now) {
        bool eliciting = false, ooo = false;
        size_t off = 0;
        int r;

        /* A gap in the packet numbers means loss or reordering: the sender wants
         * to know at once. */
        if (l->n_seen > 0 && pn != l->seen[0].hi + 1)
                ooo = true;
        if (l->n_seen == 0 || pn > l->seen[0].hi)
                l->largest_recv_us = now;
        pn_record(l, pn);
        l->stats.packets_received++;
        if (len == 0)
                return -EBADMSG;

        while (off < len) {
                size_t used = 0;
                switch (p[off]) {
                case N2P_LINK_FRAME_ACK:
                        r = handle_ack(l, p + off, len - off, &used, now);
                        if (r < 0)
                                return r;
                        off += used;
                        break;
                case N2P_LINK_FRAME_DATA: {
                        if (len - off < DATA_HEADER)
                                return -EBADMSG;
                        uint64_t doff = n2p_get_be64(p + off + 1);
                        size_t dlen = n2p_get_be16(p + off + 9);
                        if (dlen == 0 || len - off - DATA_HEADER < dlen)
                                return -EBADMSG;
                        r = handle_data(l, doff, p + off + DATA_HEADER, dlen, &ooo);
                        if (r < 0)
                                return r;
                        off += DATA_HEADER + dlen;
                        eliciting = true;
                        break;
                }
                case N2P_LINK_FRAME_PING:
                        off++;
                        eliciting = true;
                        break;
                default:
                        return -EBADMSG;
                }
        }

        if (eliciting) {
                l->unacked_eliciting++;
                if (ooo || l->unacked_eliciting >= ACK_EVERY)
                        l->ack_now = true;
                else if (l->ack_deadline == 0)
                        l->ack_deadline = now + ACK_DELAY_US;
        }
        return 0;
}

static void maybe_writable(n2p_link *l) {
        if (l->want_writable && l->error == 0 && N2P_LINK_BUFFER - (l->snd_end - l->snd_una) >= WRITABLE_ROOM) {
                l->want_writable = false;
                if (l->cb.writable)
                        l->cb.writable(l, l->userdata);
        }
}

int n2p_link_deliver_plaintext(n2p_link *l, uint64_t pn, const uint8_t *frames, size_t len) {
        int r;

        if (!l || (!frames && len > 0))
                return -EINVAL;
        if (pn_seen(l, pn) || pn == UINT64_MAX) {
                l->stats.packets_dropped++;
                return -EBADMSG;
        }
        r = process_frames(l, pn, frames, len, now_us());
        if (r < 0)
                l->stats.packets_dropped++;
        maybe_writable(l);
        link_send(l);
        return r < 0 ? -EBADMSG : 0;
}

/* One datagram; the caller sends what it calls for. */
static int input_one(n2p_link *l, const uint8_t *buf, size_t len, uint64_t now) {
        uint64_t pn;
        size_t plen;
        int r;

        if (len < N2P_LINK_OVERHEAD || len > N2P_LINK_DATAGRAM)
                return -EBADMSG;
        pn = n2p_get_be64(buf + 1);
        if (pn_seen(l, pn) || pn == UINT64_MAX)
                return -EBADMSG;
        plen = len - N2P_LINK_OVERHEAD;
        if (buf[0] == N2P_LINK_PKT_DATA) {
                n2p_cipher dec = { .n = 0 };
                memcpy(dec.k, l->rx_key, sizeof dec.k);
                r = n2p_cipher_decrypt_at(&dec, pn, buf, N2P_LINK_HEADER, buf + N2P_LINK_HEADER,
                                          len - N2P_LINK_HEADER, l->plain);
                sodium_memzero(&dec, sizeof dec);
        } else if (buf[0] == N2P_LINK_PKT_AES && l->aes_local) {
                uint8_t npub[crypto_aead_aes256gcm_NPUBBYTES];
                aes_nonce(npub, pn);
                r = crypto_aead_aes256gcm_decrypt_afternm(l->plain, NULL, NULL, buf + N2P_LINK_HEADER,
                                                          len - N2P_LINK_HEADER, buf, N2P_LINK_HEADER,
                                                          npub, &l->rx_aes);
        } else {
                return -EBADMSG;
        }
        if (r < 0)
                return -EBADMSG;
        /* Authentic but not understood: counted, and its packet number is spent. */
        if (process_frames(l, pn, l->plain, plen, now) < 0)
                l->stats.packets_dropped++;
        return 0;
}

int n2p_link_input(n2p_link *l, const uint8_t *buf, size_t len) {
        uint64_t now;
        bool any = false, dropped = false;

        if (!l || (!buf && len > 0))
                return -EINVAL;
        now = now_us();
        /* Datagrams the kernel coalesced (UDP GRO) arrive back to back; each
         * header says how long it is. What cannot be split is dropped whole. */
        while (len > 0) {
                size_t dlen = len >= N2P_LINK_HEADER ? n2p_get_be16(buf + 9) : len;
                if (dlen < N2P_LINK_OVERHEAD || dlen > len) {
                        dropped = true;
                        l->stats.packets_dropped++;
                        break;
                }
                if (input_one(l, buf, dlen, now) == 0) {
                        any = true;
                } else {
                        dropped = true;
                        l->stats.packets_dropped++;
                }
                buf += dlen;
                len -= dlen;
        }
        if (any) {
                maybe_writable(l);
                link_send(l);
        }
        return dropped ? -EBADMSG : 0;
}

/* --- the timer --- */

static void on_pto(n2p_link *l) {
        l->pto_count++;
        l->probes = 2;
}

static gboolean timer_prepare(GSource *source, gint *timeout) {
        const n2p_link *l = ((link_timer *) source)->l;
        uint64_t now = (uint64_t) g_source_get_time(source);

        if (l->deadline == UINT64_MAX) {
                *timeout = -1;
                return FALSE;
        }
        if (l->deadline <= now) {
                *timeout = 0;
                return TRUE;
        }
        *timeout = (gint) MIN((l->deadline - now + 999) / 1000, (uint64_t) G_MAXINT);
        return FALSE;
}

static gboolean timer_check(GSource *source) {
        const n2p_link *l = ((link_timer *) source)->l;
        return l->deadline != UINT64_MAX && l->deadline <= (uint64_t) g_source_get_time(source);
}

static gboolean timer_dispatch(GSource *source, GSourceFunc callback, gpointer userdata) {
        n2p_link *l = ((link_timer *) source)->l;
        uint64_t now = now_us();

        /* What follows re-arms it if anything is still due (a failed link sends
         * nothing, so it does not spin). */
        l->deadline = UINT64_MAX;

        if (l->unacked_eliciting > 0 && l->ack_deadline > 0 && now >= l->ack_deadline)
                l->ack_now = true;
        if (l->loss_time > 0 && now >= l->loss_time)
                detect_lost(l, now);
        else if (l->loss_time == 0 && l->bytes_in_flight > 0 && now >= l->last_eliciting_us + pto_interval(l))
                on_pto(l);
        if (l->path_blocked)
                l->path_blocked = false;   /* try again */
        link_send(l);
        maybe_writable(l);
        return G_SOURCE_CONTINUE;
}

static GSourceFuncs timer_funcs = {
        .prepare = timer_prepare,
        .check = timer_check,
        .dispatch = timer_dispatch,
};

/* --- the object --- */

n2p_link *n2p_link_new(const n2p_cipher *send, const n2p_cipher *recv, n2p_link_send_fn send_fn,
                       const n2p_link_callbacks *cb, void *userdata) {
        static const char ctx[crypto_kdf_CONTEXTBYTES] = "n2plink";
        n2p_link *l;

        if (!send || !recv || !send_fn)
                return NULL;

        l = g_new0(n2p_link, 1);
        if (crypto_kdf_derive_from_key(l->tx_key, sizeof l->tx_key, 1, ctx, send->k) != 0 ||
            crypto_kdf_derive_from_key(l->rx_key, sizeof l->rx_key, 1, ctx, recv->k) != 0)
                return n2p_link_free(l);
        /* N2P_NO_AES=1: ChaCha20-Poly1305 only (to compare the two). */
        if (crypto_aead_aes256gcm_is_available() && !getenv("N2P_NO_AES")) {
                uint8_t k[crypto_aead_aes256gcm_KEYBYTES];
                bool ok = crypto_kdf_derive_from_key(k, sizeof k, 2, ctx, send->k) == 0 &&
                          crypto_aead_aes256gcm_beforenm(&l->tx_aes, k) == 0 &&
                          crypto_kdf_derive_from_key(k, sizeof k, 2, ctx, recv->k) == 0 &&
                          crypto_aead_aes256gcm_beforenm(&l->rx_aes, k) == 0;
                sodium_memzero(k, sizeof k);
                l->aes_local = ok;
        }
        l->send_fn = send_fn;
        if (cb)
                l->cb = *cb;
        l->userdata = userdata;
        l->sent = g_new0(sent_pkt, SENT_RING);
        l->cwnd = INITIAL_CWND;
        l->mode = MODE_STARTUP;
        l->pacing_gain = STARTUP_GAIN;
        l->cwnd_gain = STARTUP_GAIN;
        l->tokens = INITIAL_CWND;
        l->tokens_us = now_us();

        l->deadline = UINT64_MAX;
        l->timer = g_source_new(&timer_funcs, sizeof(link_timer));
        ((link_timer *) l->timer)->l = l;
        g_source_set_priority(l->timer, G_PRIORITY_DEFAULT);
        g_source_attach(l->timer, NULL);
        return l;
}

void n2p_link_disable_aes(n2p_link *l) {
        if (!l)
                return;
        l->aes_local = false;
        sodium_memzero(&l->tx_aes, sizeof l->tx_aes);
        sodium_memzero(&l->rx_aes, sizeof l->rx_aes);
}

ssize_t n2p_link_write(n2p_link *l, const uint8_t *buf, size_t len) {
        size_t room, n;

        if (!l || (!buf && len > 0))
                return -EINVAL;
        if (l->error != 0)
                return l->error;
        room = N2P_LINK_BUFFER - (size_t) (l->snd_end - l->snd_una);
        n = MIN(room, len);
        if (n > 0) {
                if (!l->sbuf)
                        l->sbuf = g_malloc(N2P_LINK_BUFFER);
                ring_copy_in(l->sbuf, l->snd_end, buf, n);
                l->snd_end += n;
                link_send(l);
        }
        if (n < len)
                l->want_writable = true;
        return (ssize_t) n;
}

void n2p_link_path_writable(n2p_link *l) {
        if (!l)
                return;
        l->path_blocked = false;
        link_send(l);
        maybe_writable(l);
}

const char *n2p_link_cipher(const n2p_link *l) {
        if (!l)
                return "none";
        return l->aes_local && l->aes_peer ? "aes-256-gcm" : "chacha20-poly1305";
}

size_t n2p_link_unacked(const n2p_link *l) {
        return l ? (size_t) (l->snd_end - l->snd_una) : 0;
}

void n2p_link_get_stats(const n2p_link *l, n2p_link_stats *ret) {
        if (!l || !ret)
                return;
        *ret = l->stats;
        ret->srtt_us = (uint32_t) MIN(l->srtt, (uint64_t) UINT32_MAX);
        ret->min_rtt_us = (uint32_t) MIN(l->min_rtt, (uint64_t) UINT32_MAX);
        ret->cwnd = l->cwnd;
        ret->bw_bytes_per_s = l->bw;
}

n2p_link *n2p_link_free(n2p_link *l) {
        if (!l)
                return NULL;
        if (l->timer) {
                g_source_destroy(l->timer);
                g_source_unref(l->timer);
        }
        sodium_memzero(l->tx_key, sizeof l->tx_key);
        sodium_memzero(l->rx_key, sizeof l->rx_key);
        sodium_memzero(&l->tx_aes, sizeof l->tx_aes);
        sodium_memzero(&l->rx_aes, sizeof l->rx_aes);
        if (l->sbuf)
                sodium_memzero(l->sbuf, N2P_LINK_BUFFER);
        if (l->rbuf)
                sodium_memzero(l->rbuf, N2P_LINK_BUFFER);
        sodium_memzero(l->plain, sizeof l->plain);
        sodium_memzero(l->out, sizeof l->out);
        g_free(l->sbuf);
        g_free(l->rbuf);
        g_free(l->sent);
        g_free(l->retx);
        g_free(l);
        return NULL;
}
