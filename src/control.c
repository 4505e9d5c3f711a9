/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <getopt.h>
#include <glib-unix.h>
#include <glib/gstdio.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "common.h"
#include "control.h"
#include "log.h"
#include "util.h"

struct n2p_control {
        int fd;
        guint watch;
        char *path;
        n2p_control_fn fn;
        void *userdata;
};

static gboolean on_accept(int fd, GIOCondition cond, gpointer userdata) {
        n2p_control *c = userdata;
        for (unsigned i = 0; i < 8; i++) {
                _cleanup_close_ int conn = accept4(fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
                if (conn < 0)
                        break;
                g_autoptr(GString) out = g_string_new(NULL);
                c->fn(out, c->userdata);
                /* Never block the main loop on a reader: what does not fit the socket
                 * buffer at once is cut (status texts are a few KiB). */
                (void) send(conn, out->str, out->len, MSG_DONTWAIT | MSG_NOSIGNAL);
        }
        return G_SOURCE_CONTINUE;
}

static int bind_unix(const char *path, int *ret_fd) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        if (strlen(path) >= sizeof sa.sun_path)
                return -ENAMETOOLONG;
        strcpy(sa.sun_path, path);
        _cleanup_close_ int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0)
                return -errno;
        _cleanup_close_ int probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (probe >= 0 && connect(probe, (struct sockaddr *) &sa, sizeof sa) == 0)
                return -EADDRINUSE;
        (void) unlink(path);
        mode_t old = umask(0077);
        int r = bind(fd, (struct sockaddr *) &sa, sizeof sa);
        umask(old);
        if (r < 0 || listen(fd, 16) < 0)
                return -errno;
        *ret_fd = n2p_take_fd(&fd);
        return 0;
}

int n2p_control_open(const char *path, n2p_control_fn fn, void *userdata, n2p_control **ret) {
        int fd = -1, r;
        r = bind_unix(path, &fd);
        if (r < 0)
                return r;
        n2p_control *c = g_new0(n2p_control, 1);
        c->fd = fd;
        c->path = g_strdup(path);
        c->fn = fn;
        c->userdata = userdata;
        c->watch = g_unix_fd_add(fd, G_IO_IN, on_accept, c);
        *ret = c;
        return 0;
}

n2p_control *n2p_control_free(n2p_control *c) {
        if (!c)
                return NULL;
        if (c->watch)
                g_source_remove(c->watch);
        (void) unlink(c->path);
        close(c->fd);
        g_free(c->path);
        g_free(c);
        return NULL;
}

char *n2p_control_dir(void) {
        const char *rt = g_getenv("XDG_RUNTIME_DIR");
        char *dir = rt && *rt ? g_build_filename(rt, "n2p", NULL) : g_strdup_printf("/tmp/n2p-%u", (unsigned) getuid());
        (void) g_mkdir_with_parents(dir, 0700);
        return dir;
}

static int read_one(const char *path) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        char buf[65536];
        ssize_t n;

        if (strlen(path) >= sizeof sa.sun_path)
                return -ENAMETOOLONG;
        strcpy(sa.sun_path, path);
        _cleanup_close_ int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return -errno;
        struct timeval tv = { .tv_sec = 5 };
        (void) setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        if (connect(fd, (struct sockaddr *) &sa, sizeof sa) < 0)
                return -errno;
        while ((n = read(fd, buf, sizeof buf)) > 0)
                fwrite(buf, 1, (size_t) n, stdout);
        return n < 0 ? -errno : 0;
}

int n2p_status_main(int argc, char **argv) {
        static const struct option options[] = {
                { "help", no_argument, NULL, 'h' },
                {}
        };
        g_autoptr(GPtrArray) paths = g_ptr_array_new_with_free_func(g_free);
        int c, r, failed = 0;

        optind = 0;
        while ((c = getopt_long(argc, argv, "h", options, NULL)) >= 0)
                switch (c) {
                case 'h':
                        printf("Usage: n2pctl status [CONTROL-SOCKET...]\n\n"
                               "Show the sessions of the running n2p server and clients: peer key,\n"
                               "selected candidate pair, round-trip time, bytes each way, open streams.\n"
                               "Without arguments, every control socket in $XDG_RUNTIME_DIR/n2p and\n"
                               "/run/n2p is read.\n\n"
                               "  -h --help  show this help\n");
                        return 0;
                default:
                        return -EINVAL;
                }
        for (int i = optind; i < argc; i++)
                g_ptr_array_add(paths, g_strdup(argv[i]));
        if (paths->len == 0) {
                g_autofree char *dir = n2p_control_dir();
                const char *dirs[] = { dir, "/run/n2p", NULL };
                for (size_t d = 0; dirs[d]; d++) {
                        g_autoptr(GDir) gd = g_dir_open(dirs[d], 0, NULL);
                        const char *name;
                        while (gd && (name = g_dir_read_name(gd)))
                                if (g_str_has_suffix(name, ".ctl") || strcmp(name, "control") == 0)
                                        g_ptr_array_add(paths, g_build_filename(dirs[d], name, NULL));
                }
                if (paths->len == 0) {
                        printf("no running n2p server or client found (looked in %s and /run/n2p)\n", dir);
                        return 0;
                }
        }
        for (unsigned i = 0; i < paths->len; i++) {
                r = read_one(paths->pdata[i]);
                if (r < 0) {
                        n2p_log_warning("cannot read %s: %s", (char *) paths->pdata[i], strerror(-r));
                        failed++;
                }
        }
        return failed == (int) paths->len ? -EIO : 0;
}
