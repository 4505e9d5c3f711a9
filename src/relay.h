/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The byte pump between one session stream and one local stream socket (the
 * nix-daemon's on the server, an accepted client connection on the client):
 * bounded buffers, backpressure both ways, half-close per direction
 * (systemd's socket-proxyd is the model for the state machine).
 */

#include <glib.h>

#include "transport.h"

enum {
        N2P_RELAY_BUFFER = 256 * 1024,   /* socket -> stream bytes read ahead */
};

typedef struct n2p_relay n2p_relay;

/* error: 0 when both directions finished cleanly, else a negative errno. The relay
 * has already released the stream and closed the fd; free it with n2p_relay_free
 * (it is safe to do so from inside the callback). */
typedef void (*n2p_relay_done_fn)(n2p_relay *r, int error, void *userdata);

/* Takes ownership of fd (made non-blocking) and of the stream's handler. */
n2p_relay *n2p_relay_new(n2p_stream *st, int fd, n2p_relay_done_fn done, void *userdata);

uint64_t n2p_relay_bytes_to_stream(const n2p_relay *r);
uint64_t n2p_relay_bytes_to_socket(const n2p_relay *r);

n2p_relay *n2p_relay_free(n2p_relay *r);
