/* SPDX-License-Identifier: MIT */
#include <arpa/inet.h>
#include <errno.h>
#include <glib.h>
#include <ifaddrs.h>
#include <limits.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <sodium.h>
#include <string.h>
#include <sys/stat.h>
/* Optional: only to let valgrind follow the exec of a worker (n2p_self_exe). */
#if defined(__has_include)
#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#define N2P_HAVE_VALGRIND_H 1
#endif
#endif

#include "addr.h"
#include "common.h"
#include "log.h"
#include "util.h"

const char *n2p_program = "n2pctl";

int n2p_identity(const char *path, bool one_time, n2p_key *ret) {
        g_autofree char *def = NULL;
        bool created = false;
        int r;

        if (one_time) {
                n2p_key_generate(ret);
                return 0;
        }
        if (!path) {
                path = def = n2p_key_default_path();
                if (!path)
                        return n2p_log_error("cannot find a place for the secret key: "
                                             "set $HOME or use --secret-key-file or --one-time-key");
        }
        r = n2p_key_load_or_create(path, ret, &created);
        switch (r) {
        case 0:
                if (created)
                        n2p_log_info("created a new secret key in %s", path);
                return 0;
        case -EPERM:
                return n2p_log_full(LOG_ERR, r, "secret key file %s is accessible by group or others "
                                    "(run: chmod 600 %s)", path, path);
        case -EBADMSG:
                return n2p_log_full(LOG_ERR, r, "secret key file %s has the wrong size "
                                    "(an n2p key file holds exactly 32 bytes)", path);
        default:
                return n2p_log_error_errno(r, "cannot read secret key file %s: %m", path);
        }
}

static bool usable_local(const struct sockaddr *sa) {
        if (sa->sa_family == AF_INET) {
                const struct sockaddr_in *in = (const struct sockaddr_in *) sa;
                uint32_t a = ntohl(in->sin_addr.s_addr);
                return (a >> 24) != 127 && (a >> 16) != 0xa9fe;   /* loopback, link-local */
        }
        if (sa->sa_family == AF_INET6) {
                const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *) sa;
                return !IN6_IS_ADDR_LOOPBACK(&in6->sin6_addr) && !IN6_IS_ADDR_LINKLOCAL(&in6->sin6_addr) &&
                       !IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr);
        }
        return false;
}

int n2p_local_endpoints(const struct sockaddr_storage *bound, struct sockaddr_storage *out,
                        size_t max, size_t *ret_n) {
        struct ifaddrs *ifa = NULL;
        uint16_t port;
        bool any, v6;
        size_t n = 0;

        if (bound->ss_family == AF_INET) {
                const struct sockaddr_in *in = (const struct sockaddr_in *) bound;
                port = in->sin_port;
                any = in->sin_addr.s_addr == htonl(INADDR_ANY);
                v6 = false;
        } else if (bound->ss_family == AF_INET6) {
                const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *) bound;
                port = in6->sin6_port;
                any = IN6_IS_ADDR_UNSPECIFIED(&in6->sin6_addr);
                v6 = true;
        } else
                return -EAFNOSUPPORT;

        if (!any) {
                if (max < 1)
                        return -ENOBUFS;
                out[0] = *bound;
                *ret_n = 1;
                return 0;
        }
        if (getifaddrs(&ifa) < 0)
                return -errno;
        /* IPv4 first: it is what most LANs route; a v6 wildcard socket is dual-stack. */
        for (int pass = 0; pass < 2; pass++) {
                int fam = pass == 0 ? AF_INET : AF_INET6;
                if (fam == AF_INET6 && !v6)
                        break;
                for (struct ifaddrs *i = ifa; i && n < max; i = i->ifa_next) {
                        if (!i->ifa_addr || i->ifa_addr->sa_family != fam || !(i->ifa_flags & IFF_UP) ||
                            (i->ifa_flags & IFF_LOOPBACK) || !usable_local(i->ifa_addr))
                                continue;
                        memset(&out[n], 0, sizeof out[n]);
                        if (fam == AF_INET) {
                                memcpy(&out[n], i->ifa_addr, sizeof(struct sockaddr_in));
                                ((struct sockaddr_in *) &out[n])->sin_port = port;
                        } else {
                                memcpy(&out[n], i->ifa_addr, sizeof(struct sockaddr_in6));
                                ((struct sockaddr_in6 *) &out[n])->sin6_port = port;
                                ((struct sockaddr_in6 *) &out[n])->sin6_scope_id = 0;
                        }
                        n++;
                }
        }
        freeifaddrs(ifa);
        *ret_n = n;
        return 0;
}

int n2p_parse_seconds(const char *s, unsigned *ret) {
        char *end;
        errno = 0;
        unsigned long v = strtoul(s, &end, 10);
        if (errno || end == s || *end || s[0] == '-' || v > 365UL * 24 * 3600)
                return -EINVAL;
        *ret = (unsigned) v;
        return 0;
}

int n2p_parse_stun(const char *s, char **ret_host, unsigned *ret_port) {
        struct sockaddr_storage sa;
        char err[128], host[INET6_ADDRSTRLEN];
        int r = n2p_endpoint_parse(s, 3478, &sa, err, sizeof err);
        if (r < 0)
                return n2p_log_error("invalid --stun '%s': %s", s, err);
        if (sa.ss_family == AF_INET) {
                inet_ntop(AF_INET, &((struct sockaddr_in *) &sa)->sin_addr, host, sizeof host);
                *ret_port = ntohs(((struct sockaddr_in *) &sa)->sin_port);
        } else {
                inet_ntop(AF_INET6, &((struct sockaddr_in6 *) &sa)->sin6_addr, host, sizeof host);
                *ret_port = ntohs(((struct sockaddr_in6 *) &sa)->sin6_port);
        }
        *ret_host = g_strdup(host);
        return 0;
}

void n2p_log_addresses(const char *short_addr, const char *long_addr) {
        g_autofree char *f1 = g_strdup_printf("N2P_SHORT_ADDRESS=%s", short_addr);
        g_autofree char *f2 = g_strdup_printf("N2P_LONG_ADDRESS=%s", long_addr);
        const char *fields[] = { f1, f2, NULL };
        n2p_log_fields(fields, "short address: %s", short_addr);
        n2p_log_fields(fields, "long address: %s", long_addr);
}

const char *n2p_self_exe(void) {
        /* The running binary's own inode, even after a package upgrade replaced the
         * file: server and workers must speak the same control protocol. */
#if N2P_HAVE_VALGRIND_H
        /* Under valgrind the link names valgrind itself, and --trace-children
         * cannot follow an exec of it; valgrind answers readlink() with our path. */
        static char path[PATH_MAX];
        static gsize done;
        if (RUNNING_ON_VALGRIND) {
                if (g_once_init_enter(&done)) {
                        ssize_t n = readlink("/proc/self/exe", path, sizeof path - 1);
                        path[n > 0 ? n : 0] = '\0';
                        g_once_init_leave(&done, 1);
                }
                if (path[0])
                        return path;
        }
#endif
        return "/proc/self/exe";
}

int n2p_parse_turn(const char *s, n2p_turn *ret) {
        g_autofree char *copy = NULL;
        struct sockaddr_storage sa;
        char err[128], host[INET6_ADDRSTRLEN];
        char *at, *colon;

        if (g_str_has_prefix(s, "turn:"))
                s += 5;
        copy = g_strdup(s);
        g_strstrip(copy);
        at = strrchr(copy, '@');
        if (!at)
                return n2p_log_error("invalid TURN server: expected turn:USER:PASS@HOST:PORT");
        *at = '\0';
        colon = strchr(copy, ':');
        if (!colon || colon == copy || colon[1] == '\0')
                return n2p_log_error("invalid TURN server: expected turn:USER:PASS@HOST:PORT "
                                     "(user name and password must not be empty)");
        *colon = '\0';
        if (n2p_endpoint_parse(at + 1, 3478, &sa, err, sizeof err) < 0)
                return n2p_log_error("invalid TURN server address '%s': %s", at + 1, err);
        if (sa.ss_family == AF_INET) {
                inet_ntop(AF_INET, &((struct sockaddr_in *) &sa)->sin_addr, host, sizeof host);
                ret->port = ntohs(((struct sockaddr_in *) &sa)->sin_port);
        } else {
                inet_ntop(AF_INET6, &((struct sockaddr_in6 *) &sa)->sin6_addr, host, sizeof host);
                ret->port = ntohs(((struct sockaddr_in6 *) &sa)->sin6_port);
        }
        ret->host = g_strdup(host);
        ret->user = g_strdup(copy);
        ret->pass = g_strdup(colon + 1);
        sodium_memzero(copy, strlen(at + 1) + (size_t) (at - copy));
        return 0;
}

int n2p_read_turn_file(const char *path, n2p_turn *ret) {
        g_autofree char *text = NULL;
        g_autoptr(GError) error = NULL;
        struct stat st;
        size_t len = 0;
        int r = -ENOENT;

        if (stat(path, &st) < 0)
                return n2p_log_error_errno(-errno, "TURN credentials file %s: %m", path);
        if (!n2p_secret_mode_ok(path, st.st_mode))
                return n2p_log_error("TURN credentials file %s is accessible by group or others "
                                     "(run: chmod 600 %s)", path, path);
        if (!g_file_get_contents(path, &text, &len, &error))
                return n2p_log_error("cannot read TURN credentials file %s: %s", path, error->message);
        for (char *save = NULL, *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
                g_strstrip(line);
                if (line[0] == '\0' || line[0] == '#')
                        continue;
                r = n2p_parse_turn(line, ret);
                break;
        }
        sodium_memzero(text, len);
        if (r == -ENOENT)
                return n2p_log_error("TURN credentials file %s holds no turn:USER:PASS@HOST:PORT line", path);
        return r;
}

void n2p_turn_clear(n2p_turn *t) {
        if (t->pass)
                sodium_memzero(t->pass, strlen(t->pass));
        g_clear_pointer(&t->host, g_free);
        g_clear_pointer(&t->user, g_free);
        g_clear_pointer(&t->pass, g_free);
}
