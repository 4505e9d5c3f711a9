/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <sodium.h>
#include <string.h>

#include "signalling.h"
#include "util.h"
#include "wire.h"

enum {
        INIT_PAYLOAD_FIXED = N2P_TAI64N_SIZE + 32,
        PAYLOAD_MAX = N2P_PKT_MAX,
};

int n2p_signal_type(const uint8_t *pkt, size_t len) {
        if (len < 1)
                return -EINVAL;
        switch (pkt[0]) {
        case N2P_PKT_INIT:
        case N2P_PKT_RESP:
        case N2P_PKT_REJECT:
        case N2P_PKT_DISCOVER:
                return pkt[0];
        default:
                return -EINVAL;
        }
}

int n2p_signal_make_init(const n2p_key *me, const uint8_t server_ed[32], uint32_t sender,
                         const n2p_ice_desc *offer, n2p_handshake *hs,
                         uint8_t *out, size_t cap, size_t *ret_len) {
        uint8_t payload[PAYLOAD_MAX], server_x[32];
        size_t desc_len, msg_len;
        int r;

        r = n2p_key_ed_to_x(server_ed, server_x);
        if (r < 0)
                return r;
        n2p_tai64n_now(payload);
        memcpy(payload + N2P_TAI64N_SIZE, me->ed_public, 32);
        r = n2p_ice_desc_encode(offer, payload + INIT_PAYLOAD_FIXED,
                                sizeof payload - INIT_PAYLOAD_FIXED, &desc_len);
        if (r < 0)
                return r;
        if (cap > N2P_PKT_MAX)
                cap = N2P_PKT_MAX;
        if (cap < N2P_PKT_INIT_HEADER + N2P_NOISE_MSG1_OVERHEAD + INIT_PAYLOAD_FIXED + desc_len)
                return -ENOBUFS;

        r = n2p_noise_init(hs, N2P_NOISE_INITIATOR, me->x_secret, me->x_public, server_x,
                           (const uint8_t *) N2P_NOISE_PROLOGUE, strlen(N2P_NOISE_PROLOGUE));
        if (r < 0)
                return r;
        r = n2p_noise_write_message(hs, payload, INIT_PAYLOAD_FIXED + desc_len,
                                    out + N2P_PKT_INIT_HEADER, cap - N2P_PKT_INIT_HEADER, &msg_len);
        if (r < 0)
                return r;
        out[0] = N2P_PKT_INIT;
        out[1] = out[2] = out[3] = 0;
        n2p_put_be32(out + 4, sender);
        *ret_len = N2P_PKT_INIT_HEADER + msg_len;
        return 0;
}

int n2p_signal_read_init(const n2p_key *me, const uint8_t *pkt, size_t len,
                         n2p_handshake *hs, n2p_init_info *ret) {
        uint8_t payload[PAYLOAD_MAX];
        n2p_init_info info;
        size_t plen;
        int r;

        if (len < N2P_PKT_INIT_HEADER + N2P_NOISE_MSG1_OVERHEAD + INIT_PAYLOAD_FIXED ||
            len > N2P_PKT_MAX || pkt[0] != N2P_PKT_INIT || pkt[1] || pkt[2] || pkt[3])
                return -EINVAL;

        r = n2p_noise_init(hs, N2P_NOISE_RESPONDER, me->x_secret, me->x_public, NULL,
                           (const uint8_t *) N2P_NOISE_PROLOGUE, strlen(N2P_NOISE_PROLOGUE));
        if (r < 0)
                return r;
        r = n2p_noise_read_message(hs, pkt + N2P_PKT_INIT_HEADER, len - N2P_PKT_INIT_HEADER,
                                   payload, sizeof payload, &plen);
        if (r < 0)
                goto fail;
        if (plen < INIT_PAYLOAD_FIXED) {
                r = -EINVAL;
                goto fail;
        }

        memset(&info, 0, sizeof info);
        info.sender = n2p_get_be32(pkt + 4);
        memcpy(info.tai64n, payload, N2P_TAI64N_SIZE);
        memcpy(info.client_ed, payload + N2P_TAI64N_SIZE, 32);
        memcpy(info.client_x, hs->rs, 32);

        /* The Ed25519 identity is what users see and list; Noise authenticated only
         * the X25519 key, so the two must belong together. */
        uint8_t x[32];
        if (n2p_key_ed_to_x(info.client_ed, x) < 0 || sodium_memcmp(x, info.client_x, 32) != 0) {
                r = -EPERM;
                goto fail;
        }
        r = n2p_ice_desc_decode(payload + INIT_PAYLOAD_FIXED, plen - INIT_PAYLOAD_FIXED, &info.offer);
        if (r < 0)
                goto fail;

        *ret = info;
        return 0;
fail:
        n2p_noise_wipe(hs);
        return r;
}

int n2p_signal_make_resp(n2p_handshake *hs, uint32_t sender, uint32_t receiver, uint8_t status,
                         const n2p_ice_desc *answer, uint8_t *out, size_t cap, size_t *ret_len) {
        uint8_t payload[PAYLOAD_MAX];
        size_t plen = 1, msg_len;
        int r;

        payload[0] = status;
        if (status == N2P_REFUSE_OK) {
                size_t dlen;
                if (!answer)
                        return -EINVAL;
                r = n2p_ice_desc_encode(answer, payload + 1, sizeof payload - 1, &dlen);
                if (r < 0)
                        return r;
                plen += dlen;
        }
        if (cap > N2P_PKT_MAX)
                cap = N2P_PKT_MAX;
        if (cap < N2P_PKT_RESP_HEADER + N2P_NOISE_MSG2_OVERHEAD + plen)
                return -ENOBUFS;
        r = n2p_noise_write_message(hs, payload, plen, out + N2P_PKT_RESP_HEADER,
                                    cap - N2P_PKT_RESP_HEADER, &msg_len);
        if (r < 0)
                return r;
        out[0] = N2P_PKT_RESP;
        out[1] = out[2] = out[3] = 0;
        n2p_put_be32(out + 4, sender);
        n2p_put_be32(out + 8, receiver);
        *ret_len = N2P_PKT_RESP_HEADER + msg_len;
        return 0;
}

int n2p_signal_read_resp(n2p_handshake *hs, uint32_t receiver, const uint8_t *pkt, size_t len,
                         uint8_t *ret_status, n2p_ice_desc *ret_answer) {
        uint8_t payload[PAYLOAD_MAX];
        n2p_handshake attempt;
        n2p_ice_desc answer;
        size_t plen;
        int r;

        if (len < N2P_PKT_RESP_HEADER + N2P_NOISE_MSG2_OVERHEAD + 1 || len > N2P_PKT_MAX ||
            pkt[0] != N2P_PKT_RESP || pkt[1] || pkt[2] || pkt[3])
                return -EINVAL;
        if (n2p_get_be32(pkt + 8) != receiver)
                return -ESRCH;

        /* Work on a copy: a forged answer must not spoil the real one still to come. */
        attempt = *hs;
        r = n2p_noise_read_message(&attempt, pkt + N2P_PKT_RESP_HEADER, len - N2P_PKT_RESP_HEADER,
                                   payload, sizeof payload, &plen);
        if (r < 0)
                goto out;
        if (plen < 1) {
                r = -EINVAL;
                goto out;
        }
        if (payload[0] == N2P_REFUSE_OK) {
                r = n2p_ice_desc_decode(payload + 1, plen - 1, &answer);
                if (r < 0)
                        goto out;
                *ret_answer = answer;
        }
        *ret_status = payload[0];
        *hs = attempt;
        r = 0;
out:
        n2p_noise_wipe(&attempt);
        return r;
}

void n2p_signal_make_reject(uint32_t receiver, uint8_t reason, uint8_t out[N2P_PKT_REJECT_SIZE]) {
        out[0] = N2P_PKT_REJECT;
        out[1] = reason;
        out[2] = out[3] = 0;
        n2p_put_be32(out + 4, receiver);
}

int n2p_signal_parse_reject(const uint8_t *pkt, size_t len, uint32_t *ret_receiver, uint8_t *ret_reason) {
        if (len != N2P_PKT_REJECT_SIZE || pkt[0] != N2P_PKT_REJECT || pkt[2] || pkt[3])
                return -EINVAL;
        *ret_reason = pkt[1];
        *ret_receiver = n2p_get_be32(pkt + 4);
        return 0;
}

int n2p_signal_make_discover(const uint8_t node_ed[32], const uint8_t *init, size_t init_len,
                             uint8_t *out, size_t cap, size_t *ret_len) {
        if (init_len < N2P_PKT_INIT_HEADER || init[0] != N2P_PKT_INIT)
                return -EINVAL;
        if (cap > N2P_PKT_MAX)
                cap = N2P_PKT_MAX;
        if (cap < N2P_PKT_DISCOVER_HEADER || init_len > cap - N2P_PKT_DISCOVER_HEADER)
                return -ENOBUFS;
        out[0] = N2P_PKT_DISCOVER;
        out[1] = out[2] = out[3] = 0;
        memcpy(out + 4, node_ed, 32);
        memcpy(out + N2P_PKT_DISCOVER_HEADER, init, init_len);
        *ret_len = N2P_PKT_DISCOVER_HEADER + init_len;
        return 0;
}

int n2p_signal_parse_discover(const uint8_t *pkt, size_t len, uint8_t ret_node_ed[32],
                              const uint8_t **ret_init, size_t *ret_init_len) {
        if (len < N2P_PKT_DISCOVER_HEADER + N2P_PKT_INIT_HEADER || len > N2P_PKT_MAX ||
            pkt[0] != N2P_PKT_DISCOVER || pkt[1] || pkt[2] || pkt[3] ||
            pkt[N2P_PKT_DISCOVER_HEADER] != N2P_PKT_INIT)
                return -EINVAL;
        memcpy(ret_node_ed, pkt + 4, 32);
        *ret_init = pkt + N2P_PKT_DISCOVER_HEADER;
        *ret_init_len = len - N2P_PKT_DISCOVER_HEADER;
        return 0;
}

const char *n2p_refuse_reason(uint8_t status) {
        switch (status) {
        case N2P_REFUSE_OK:
                return "accepted";
        case N2P_REFUSE_UNDECRYPTABLE:
                return "the handshake was not for this node's key";
        case N2P_REFUSE_BUSY:
                return "the server has reached its session limit";
        case N2P_REFUSE_UNAUTHORIZED:
                return "this client's key is not authorized";
        case N2P_REFUSE_INTERNAL:
                return "the server could not start a session";
        default:
                return "unknown reason";
        }
}
