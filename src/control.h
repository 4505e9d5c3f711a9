/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The control socket of a running node or client, read by `n2pctl status`: a unix
 * stream socket (mode 0600, so only its owner and root can read it); whoever
 * connects gets the status text and EOF. Nothing is read from the connection.
 */

#include <glib.h>

typedef struct n2p_control n2p_control;

/* Fills the status text for one reader. */
typedef void (*n2p_control_fn)(GString *out, void *userdata);

/* Binds PATH (a stale socket there is replaced; a live one is an error). */
int n2p_control_open(const char *path, n2p_control_fn fn, void *userdata, n2p_control **ret);

/* Unlinks the socket; accepts NULL. */
n2p_control *n2p_control_free(n2p_control *c);

/* $XDG_RUNTIME_DIR/n2p (or /tmp/n2p-UID), created 0700: where control sockets
 * live unless systemd gives a RuntimeDirectory. g_malloc'd. */
char *n2p_control_dir(void);

/* `n2pctl status [CONTROL-SOCKET...]` */
int n2p_status_main(int argc, char **argv);
