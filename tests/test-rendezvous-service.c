/* SPDX-License-Identifier: MIT */
/*
 * The real n2p-rendezvous, started on 127.0.0.1 with a free port, driven over UDP
 * by a fake node and fake clients. Distinct sources are distinct loopback
 * addresses (127.0.0.x), since the service limits rates per source address.
 * Every receive has a timeout; the daemon is stopped by its PID after each test.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <glib.h>
#include <glib/gstdio.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "addr.h"
#include "key.h"
#include "rendezvous.h"

static const char secret[] = "north-secret";
static const uint8_t init_pkt[] = { N2P_PKT_INIT, 0, 0, 0, 0xaa, 0xbb, 0xcc, 0xdd, 1, 2, 3, 4, 5, 6, 7, 8 };
static const uint8_t resp_pkt[] = { N2P_PKT_RESP, 0, 0, 0, 1, 2, 3, 4, 0xaa, 0xbb, 0xcc, 0xdd, 9 };

typedef struct Daemon {
        GPid pid;
        int notify_fd;
        struct sockaddr_in addr;
        char *secret_file;
} Daemon;

static int udp_socket(const char *ip) {
        struct sockaddr_in sa = { .sin_family = AF_INET };
        int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);

        g_assert_cmpint(fd, >=, 0);
        g_assert_cmpint(inet_pton(AF_INET, ip, &sa.sin_addr), ==, 1);
        g_assert_cmpint(bind(fd, (struct sockaddr *) &sa, sizeof sa), ==, 0);
        return fd;
}

static struct sockaddr_storage local_endpoint(int fd) {
        struct sockaddr_storage ss = {};
        socklen_t len = sizeof ss;
        g_assert_cmpint(getsockname(fd, (struct sockaddr *) &ss, &len), ==, 0);
        return ss;
}

static char *endpoint_text(const struct sockaddr_storage *ss) {
        char t[80];
        return g_strdup(n2p_endpoint_format(ss, t, sizeof t));
}

/* A datagram within timeout_ms, or -1. */
static ssize_t recv_timeout(int fd, uint8_t *buf, size_t cap, int timeout_ms) {
        struct pollfd p = { .fd = fd, .events = POLLIN };
        if (poll(&p, 1, timeout_ms) <= 0)
                return -1;
        return recv(fd, buf, cap, MSG_DONTWAIT);
}

static void send_to(int fd, const Daemon *d, const uint8_t *buf, int len) {
        g_assert_cmpint(len, >, 0);
        g_assert_cmpint(sendto(fd, buf, (size_t) len, 0, (const struct sockaddr *) &d->addr, sizeof d->addr), ==, len);
}

static bool wait_ready(Daemon *d) {
        char buf[512];
        gint64 deadline = g_get_monotonic_time() + 3 * G_USEC_PER_SEC;

        while (g_get_monotonic_time() < deadline) {
                ssize_t n = recv_timeout(d->notify_fd, (uint8_t *) buf, sizeof buf - 1, 200);
                if (n > 0) {
                        buf[n] = 0;
                        if (strstr(buf, "READY=1"))
                                return true;
                }
                if (waitpid(d->pid, NULL, WNOHANG) == d->pid) {
                        d->pid = 0;
                        return false;
                }
        }
        return false;
}

static void daemon_start(Daemon *d, bool with_secret) {
        const char *build = g_getenv("N2P_BUILD");
        g_autofree char *exe = NULL;
        GError *error = NULL;

        g_assert_nonnull(build);
        exe = g_build_filename(build, "src", "n2p-rendezvous", NULL);
        memset(d, 0, sizeof *d);
        if (with_secret) {
                int fd = g_file_open_tmp("n2p-rv-secret-XXXXXX", &d->secret_file, &error);
                g_assert_no_error(error);
                g_assert_cmpint(write(fd, secret, strlen(secret)), ==, (ssize_t) strlen(secret));
                g_assert_cmpint(write(fd, "\n", 1), ==, 1);
                g_assert_cmpint(fchmod(fd, 0600), ==, 0);
                close(fd);
        }

        /* The port is free when we look and may be taken by the time the daemon
         * binds it: retry with another. */
        for (unsigned attempt = 0; attempt < 5; attempt++) {
                struct sockaddr_un un = { .sun_family = AF_UNIX };
                char name[64], listen[64];
                int probe = udp_socket("127.0.0.1");
                struct sockaddr_storage ss = local_endpoint(probe);
                close(probe);
                d->addr = *(struct sockaddr_in *) &ss;

                snprintf(name, sizeof name, "n2p-test-rv-%d-%u-%u", (int) getpid(), attempt, randombytes_random());
                memcpy(un.sun_path + 1, name, strlen(name));
                d->notify_fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
                g_assert_cmpint(d->notify_fd, >=, 0);
                g_assert_cmpint(bind(d->notify_fd, (struct sockaddr *) &un,
                                     (socklen_t) (offsetof(struct sockaddr_un, sun_path) + 1 + strlen(name))), ==, 0);

                snprintf(listen, sizeof listen, "127.0.0.1:%u", ntohs(d->addr.sin_port));
                g_autofree char *notify = g_strdup_printf("@%s", name);
                gchar **env = g_environ_setenv(g_get_environ(), "NOTIFY_SOCKET", notify, true);
                env = g_environ_unsetenv(env, "LISTEN_FDS");
                env = g_environ_unsetenv(env, "LISTEN_PID");
                const char *argv[] = { exe, "--listen", listen, "-v",
                                       with_secret ? "--turn-secret-file" : NULL, d->secret_file, NULL };
                g_assert_true(g_spawn_async(NULL, (char **) argv, env, G_SPAWN_DO_NOT_REAP_CHILD, NULL, NULL,
                                            &d->pid, &error));
                g_assert_no_error(error);
                g_strfreev(env);
                if (wait_ready(d))
                        return;
                if (d->pid > 0) {
                        kill(d->pid, SIGKILL);
                        waitpid(d->pid, NULL, 0);
                }
                close(d->notify_fd);
        }
        g_error("n2p-rendezvous did not become ready");
}

/* SIGTERM must end it cleanly, within two seconds. */
static void daemon_stop(Daemon *d) {
        int status = 0;
        pid_t r = 0;

        g_assert_cmpint(kill(d->pid, SIGTERM), ==, 0);
        for (unsigned i = 0; i < 200 && r == 0; i++) {
                r = waitpid(d->pid, &status, WNOHANG);
                if (r == 0)
                        g_usleep(10000);
        }
        if (r == 0) {
                kill(d->pid, SIGKILL);
                waitpid(d->pid, NULL, 0);
        }
        g_assert_cmpint(r, ==, d->pid);
        g_assert_true(WIFEXITED(status));
        g_assert_cmpint(WEXITSTATUS(status), ==, 0);
        close(d->notify_fd);
        if (d->secret_file) {
                g_unlink(d->secret_file);
                g_free(d->secret_file);
        }
}

static int make_register(const n2p_key *k, uint64_t time_ms, uint8_t *out, size_t cap) {
        return n2p_rv_make_register(k->ed_secret, k->ed_public, time_ms, out, cap);
}

static uint64_t now_ms(void) {
        return (uint64_t) (g_get_real_time() / 1000);
}

/* Registers k from fd; returns the status. */
static uint8_t do_register(const Daemon *d, int fd, const n2p_key *k, uint64_t time_ms,
                           struct sockaddr_storage *ret_observed, n2p_rv_creds *ret_creds) {
        uint8_t pkt[N2P_RV_MAX_PACKET], status = 0xff;
        struct sockaddr_storage obs;
        n2p_rv_creds creds;
        uint32_t life;
        ssize_t n;

        send_to(fd, d, pkt, make_register(k, time_ms, pkt, sizeof pkt));
        n = recv_timeout(fd, pkt, sizeof pkt, 2000);
        g_assert_cmpint(n, >, 0);
        g_assert_cmpint(n2p_rv_parse_registered(pkt, (size_t) n, &status, &life, &obs, &creds), ==, 0);
        if (status == N2P_RV_OK)
                g_assert_cmpuint(life, ==, N2P_RV_LIFETIME_S);
        if (ret_observed)
                *ret_observed = obs;
        if (ret_creds)
                *ret_creds = creds;
        return status;
}

static void assert_turn_creds(const n2p_rv_creds *c, const char *label) {
        uint8_t digest[20];
        gsize dlen = sizeof digest;
        uint64_t expiry = 0;
        char *colon;

        colon = strchr(c->user, ':');
        g_assert_nonnull(colon);
        g_assert_cmpstr(colon + 1, ==, label);
        expiry = g_ascii_strtoull(c->user, NULL, 10);
        g_assert_cmpuint(expiry, >=, now_ms() / 1000 + N2P_RV_TURN_LIFETIME_S - 10);
        g_assert_cmpuint(expiry, <=, now_ms() / 1000 + N2P_RV_TURN_LIFETIME_S + 10);

        GHmac *h = g_hmac_new(G_CHECKSUM_SHA1, (const guchar *) secret, strlen(secret));
        g_hmac_update(h, (const guchar *) c->user, (gssize) strlen(c->user));
        g_hmac_get_digest(h, digest, &dlen);
        g_hmac_unref(h);
        g_autofree char *want = g_base64_encode(digest, dlen);
        g_assert_cmpstr(c->pass, ==, want);
}

static void test_register(void) {
        struct sockaddr_storage obs, mine;
        n2p_rv_creds creds;
        Daemon d;
        n2p_key k;
        int node = udp_socket("127.0.0.1");

        daemon_start(&d, true);
        n2p_key_generate(&k);
        g_assert_cmpuint(do_register(&d, node, &k, now_ms(), &obs, &creds), ==, N2P_RV_OK);
        mine = local_endpoint(node);
        g_autofree char *want = endpoint_text(&mine), *got = endpoint_text(&obs);
        g_assert_cmpstr(got, ==, want);
        g_autofree char *label = n2p_addr_format_short(k.ed_public);
        assert_turn_creds(&creds, label);
        /* a refresh with a newer time is accepted */
        g_assert_cmpuint(do_register(&d, node, &k, now_ms() + 1, NULL, NULL), ==, N2P_RV_OK);
        daemon_stop(&d);
        n2p_key_wipe(&k);
        close(node);
}

static uint32_t expect_forward(int node, const struct sockaddr_storage *client) {
        uint8_t pkt[N2P_RV_MAX_PACKET];
        struct sockaddr_storage ep;
        const uint8_t *init;
        size_t init_len;
        uint32_t cookie;
        ssize_t n = recv_timeout(node, pkt, sizeof pkt, 2000);

        g_assert_cmpint(n, >, 0);
        g_assert_cmpint(n2p_rv_parse_forward(pkt, (size_t) n, &cookie, &ep, &init, &init_len), ==, 0);
        g_assert_cmpmem(init, init_len, init_pkt, sizeof init_pkt);
        g_autofree char *got = endpoint_text(&ep), *want = endpoint_text(client);
        g_assert_cmpstr(got, ==, want);
        return cookie;
}

static void send_offer(const Daemon *d, int fd, const uint8_t key[32]) {
        uint8_t pkt[N2P_RV_MAX_PACKET];
        send_to(fd, d, pkt, n2p_rv_make_offer(key, init_pkt, sizeof init_pkt, pkt, sizeof pkt));
}

static void send_answer(const Daemon *d, int fd, uint32_t cookie) {
        uint8_t pkt[N2P_RV_MAX_PACKET];
        send_to(fd, d, pkt, n2p_rv_make_answer(cookie, resp_pkt, sizeof resp_pkt, pkt, sizeof pkt));
}

static bool receive_deliver(int client, int timeout_ms) {
        uint8_t pkt[N2P_RV_MAX_PACKET];
        const uint8_t *resp;
        size_t resp_len;
        ssize_t n = recv_timeout(client, pkt, sizeof pkt, timeout_ms);

        if (n < 0)
                return false;
        g_assert_cmpint(n2p_rv_parse_deliver(pkt, (size_t) n, &resp, &resp_len), ==, 0);
        g_assert_cmpmem(resp, resp_len, resp_pkt, sizeof resp_pkt);
        return true;
}

static void test_offer_answer(void) {
        int node = udp_socket("127.0.0.1"), client = udp_socket("127.0.0.2");
        struct sockaddr_storage cep = local_endpoint(client);
        uint32_t cookie;
        Daemon d;
        n2p_key k;

        daemon_start(&d, true);
        n2p_key_generate(&k);
        g_assert_cmpuint(do_register(&d, node, &k, now_ms(), NULL, NULL), ==, N2P_RV_OK);
        send_offer(&d, client, k.ed_public);
        cookie = expect_forward(node, &cep);
        send_answer(&d, node, cookie);
        g_assert_true(receive_deliver(client, 2000));
        /* one answer per offer */
        send_answer(&d, node, cookie);
        g_assert_false(receive_deliver(client, 500));
        daemon_stop(&d);
        n2p_key_wipe(&k);
        close(node);
        close(client);
}

static void expect_error(int fd, uint8_t code, const uint8_t key[32]) {
        uint8_t pkt[N2P_RV_MAX_PACKET], got = 0, t[32];
        ssize_t n = recv_timeout(fd, pkt, sizeof pkt, 2000);

        g_assert_cmpint(n, >, 0);
        g_assert_cmpint(n2p_rv_parse_error(pkt, (size_t) n, &got, t), ==, 0);
        g_assert_cmpuint(got, ==, code);
        g_assert_cmpmem(t, 32, key, 32);
}

static void test_unknown_key(void) {
        int client = udp_socket("127.0.0.2");
        uint8_t key[32];
        Daemon d;

        daemon_start(&d, false);
        randombytes_buf(key, sizeof key);
        send_offer(&d, client, key);
        expect_error(client, N2P_RV_ERR_UNKNOWN_KEY, key);
        daemon_stop(&d);
        close(client);
}

static void test_bad_signature(void) {
        int node = udp_socket("127.0.0.1"), client = udp_socket("127.0.0.2");
        uint8_t pkt[N2P_RV_MAX_PACKET], status = 0;
        struct sockaddr_storage obs;
        n2p_rv_creds creds;
        uint32_t life;
        ssize_t n;
        Daemon d;
        n2p_key k;

        daemon_start(&d, true);
        n2p_key_generate(&k);
        g_assert_cmpint(make_register(&k, now_ms(), pkt, sizeof pkt), ==, N2P_RV_REGISTER_SIZE);
        pkt[N2P_RV_REGISTER_SIZE - 1] ^= 1;
        send_to(node, &d, pkt, N2P_RV_REGISTER_SIZE);
        n = recv_timeout(node, pkt, sizeof pkt, 2000);
        g_assert_cmpint(n, >, 0);
        g_assert_cmpint(n, <=, N2P_RV_REGISTER_SIZE);
        g_assert_cmpint(n2p_rv_parse_registered(pkt, (size_t) n, &status, &life, &obs, &creds), ==, 0);
        g_assert_cmpuint(status, ==, N2P_RV_ERR_BAD_SIGNATURE);
        g_assert_cmpstr(creds.user, ==, "");
        send_offer(&d, client, k.ed_public);
        expect_error(client, N2P_RV_ERR_UNKNOWN_KEY, k.ed_public);
        daemon_stop(&d);
        n2p_key_wipe(&k);
        close(node);
        close(client);
}

static void test_replay_and_stale(void) {
        int node = udp_socket("127.0.0.1");
        uint8_t pkt[N2P_RV_MAX_PACKET], reply[N2P_RV_MAX_PACKET], status = 0;
        struct sockaddr_storage obs;
        n2p_rv_creds creds;
        uint32_t life;
        ssize_t n;
        Daemon d;
        n2p_key k;

        daemon_start(&d, true);
        n2p_key_generate(&k);
        g_assert_cmpint(make_register(&k, now_ms(), pkt, sizeof pkt), ==, N2P_RV_REGISTER_SIZE);
        for (unsigned i = 0; i < 2; i++) {
                send_to(node, &d, pkt, N2P_RV_REGISTER_SIZE);
                n = recv_timeout(node, reply, sizeof reply, 2000);
                g_assert_cmpint(n, >, 0);
                g_assert_cmpint(n2p_rv_parse_registered(reply, (size_t) n, &status, &life, &obs, &creds), ==, 0);
                g_assert_cmpuint(status, ==, i == 0 ? N2P_RV_OK : N2P_RV_ERR_STALE);
        }
        /* outside the clock skew, either way */
        g_assert_cmpuint(do_register(&d, node, &k, now_ms() + (N2P_RV_CLOCK_SKEW_S + 60) * 1000ULL, NULL, NULL),
                         ==, N2P_RV_ERR_STALE);
        n2p_key_generate(&k);
        g_assert_cmpuint(do_register(&d, node, &k, now_ms() - (N2P_RV_CLOCK_SKEW_S + 60) * 1000ULL, NULL, NULL),
                         ==, N2P_RV_ERR_STALE);
        daemon_stop(&d);
        n2p_key_wipe(&k);
        close(node);
}

static void test_answer_from_stranger(void) {
        int node = udp_socket("127.0.0.1"), client = udp_socket("127.0.0.2"), stranger = udp_socket("127.0.0.3");
        struct sockaddr_storage cep = local_endpoint(client);
        uint32_t cookie;
        Daemon d;
        n2p_key k;

        daemon_start(&d, false);
        n2p_key_generate(&k);
        g_assert_cmpuint(do_register(&d, node, &k, now_ms(), NULL, NULL), ==, N2P_RV_OK);
        send_offer(&d, client, k.ed_public);
        cookie = expect_forward(node, &cep);
        send_answer(&d, stranger, cookie);
        g_assert_false(receive_deliver(client, 500));
        /* the real node's answer still goes through */
        send_answer(&d, node, cookie);
        g_assert_true(receive_deliver(client, 2000));
        daemon_stop(&d);
        n2p_key_wipe(&k);
        close(node);
        close(client);
        close(stranger);
}

static void test_flood(void) {
        int node = udp_socket("127.0.0.1"), flooder = udp_socket("127.0.0.2"), client = udp_socket("127.0.0.3");
        struct sockaddr_storage cep = local_endpoint(client);
        uint8_t pkt[N2P_RV_MAX_PACKET];
        unsigned forwarded = 0, limited = 0;
        Daemon d;
        n2p_key k;

        daemon_start(&d, false);
        n2p_key_generate(&k);
        g_assert_cmpuint(do_register(&d, node, &k, now_ms(), NULL, NULL), ==, N2P_RV_OK);
        gint64 start = g_get_monotonic_time();
        for (unsigned i = 0; i < 500; i++)
                send_offer(&d, flooder, k.ed_public);
        /* Everything the service forwards arrives within a second of the last send. */
        for (unsigned i = 0; i < 1000 && recv_timeout(node, pkt, sizeof pkt, 1000) > 0; i++)
                forwarded++;
        double seconds = (double) (g_get_monotonic_time() - start) / G_USEC_PER_SEC;
        for (unsigned i = 0; i < 1000 && recv_timeout(flooder, pkt, sizeof pkt, 0) > 0; i++)
                if (pkt[0] == N2P_RV_ERROR && pkt[1] == N2P_RV_ERR_RATE_LIMITED)
                        limited++;
        g_test_message("%u of 500 offers forwarded in %.2f s, %u refused", forwarded, seconds, limited);
        g_assert_cmpuint(forwarded, >=, 1);
        g_assert_cmpuint(forwarded, <=, (unsigned) (N2P_RV_TARGET_RATE * seconds) + N2P_RV_TARGET_RATE + 2);
        g_assert_cmpuint(limited, >=, 1);

        /* the target's bucket refills: a legitimate client gets through */
        g_usleep(300 * 1000);
        send_offer(&d, client, k.ed_public);
        (void) expect_forward(node, &cep);
        daemon_stop(&d);
        n2p_key_wipe(&k);
        close(node);
        close(flooder);
        close(client);
}

static void test_creds(void) {
        int client = udp_socket("127.0.0.2");
        uint8_t pkt[N2P_RV_MAX_PACKET], status = 0xff;
        n2p_rv_creds creds;
        ssize_t n;
        Daemon d;

        daemon_start(&d, true);
        send_to(client, &d, pkt, n2p_rv_make_creds_req(pkt, sizeof pkt));
        n = recv_timeout(client, pkt, sizeof pkt, 2000);
        g_assert_cmpint(n, >, 0);
        g_assert_cmpint(n2p_rv_parse_creds(pkt, (size_t) n, &status, &creds), ==, 0);
        g_assert_cmpuint(status, ==, N2P_RV_OK);
        g_assert_cmpuint(creds.lifetime, ==, N2P_RV_TURN_LIFETIME_S);
        assert_turn_creds(&creds, "client");
        /* unpadded: the answer would be larger than the request, so there is none */
        memset(pkt, 0, 4);
        pkt[0] = N2P_RV_CREDS_REQ;
        send_to(client, &d, pkt, 4);
        g_assert_cmpint(recv_timeout(client, pkt, sizeof pkt, 500), <, 0);
        daemon_stop(&d);
        close(client);
}

static void test_no_turn(void) {
        int node = udp_socket("127.0.0.1"), client = udp_socket("127.0.0.2");
        uint8_t pkt[N2P_RV_MAX_PACKET], status = 0xff;
        n2p_rv_creds creds;
        ssize_t n;
        Daemon d;
        n2p_key k;

        daemon_start(&d, false);
        n2p_key_generate(&k);
        g_assert_cmpuint(do_register(&d, node, &k, now_ms(), NULL, &creds), ==, N2P_RV_OK);
        g_assert_cmpstr(creds.user, ==, "");
        g_assert_cmpstr(creds.pass, ==, "");
        send_to(client, &d, pkt, n2p_rv_make_creds_req(pkt, sizeof pkt));
        n = recv_timeout(client, pkt, sizeof pkt, 2000);
        g_assert_cmpint(n, >, 0);
        g_assert_cmpint(n2p_rv_parse_creds(pkt, (size_t) n, &status, &creds), ==, 0);
        g_assert_cmpuint(status, ==, N2P_RV_ERR_NO_TURN);
        daemon_stop(&d);
        n2p_key_wipe(&k);
        close(node);
        close(client);
}

static void test_malformed_ignored(void) {
        int node = udp_socket("127.0.0.1"), client = udp_socket("127.0.0.2");
        struct sockaddr_storage cep = local_endpoint(client);
        uint8_t junk[64];
        Daemon d;
        n2p_key k;

        daemon_start(&d, false);
        n2p_key_generate(&k);
        g_assert_cmpuint(do_register(&d, node, &k, now_ms(), NULL, NULL), ==, N2P_RV_OK);
        for (unsigned i = 0; i < 5; i++) {
                randombytes_buf(junk, sizeof junk);
                junk[0] = (uint8_t) (N2P_RV_REGISTER + i);
                junk[1] = 0x55;          /* never valid reserved bytes */
                send_to(client, &d, junk, sizeof junk);
        }
        g_assert_cmpint(recv_timeout(client, junk, sizeof junk, 300), <, 0);
        g_assert_cmpint(recv_timeout(node, junk, sizeof junk, 0), <, 0);
        /* and the service still serves */
        send_offer(&d, client, k.ed_public);
        (void) expect_forward(node, &cep);
        daemon_stop(&d);
        n2p_key_wipe(&k);
        close(node);
        close(client);
}

static void test_pending_expires(void) {
        int node = udp_socket("127.0.0.1"), client = udp_socket("127.0.0.2");
        struct sockaddr_storage cep = local_endpoint(client);
        uint32_t cookie;
        Daemon d;
        n2p_key k;

        daemon_start(&d, false);
        n2p_key_generate(&k);
        g_assert_cmpuint(do_register(&d, node, &k, now_ms(), NULL, NULL), ==, N2P_RV_OK);
        send_offer(&d, client, k.ed_public);
        cookie = expect_forward(node, &cep);
        g_usleep((N2P_RV_PENDING_TIMEOUT_S + 1) * G_USEC_PER_SEC);
        send_answer(&d, node, cookie);
        g_assert_false(receive_deliver(client, 500));
        daemon_stop(&d);
        n2p_key_wipe(&k);
        close(node);
        close(client);
}

static void test_bad_secret_file_refused(void) {
        const char *build = g_getenv("N2P_BUILD");
        g_autofree char *exe = NULL, *path = NULL;
        GError *error = NULL;
        int status = -1, fd;

        g_assert_nonnull(build);
        exe = g_build_filename(build, "src", "n2p-rendezvous", NULL);
        fd = g_file_open_tmp("n2p-rv-secret-XXXXXX", &path, &error);
        g_assert_no_error(error);
        g_assert_cmpint(write(fd, secret, strlen(secret)), ==, (ssize_t) strlen(secret));
        g_assert_cmpint(fchmod(fd, 0644), ==, 0);
        close(fd);
        /* it must refuse before it binds anything */
        const char *argv[] = { exe, "--listen", "127.0.0.1:1", "--turn-secret-file", path, NULL };
        g_assert_true(g_spawn_sync(NULL, (char **) argv, NULL, G_SPAWN_STDOUT_TO_DEV_NULL | G_SPAWN_STDERR_TO_DEV_NULL,
                                   NULL, NULL, NULL, NULL, &status, &error));
        g_assert_no_error(error);
        g_assert_true(WIFEXITED(status));
        g_assert_cmpint(WEXITSTATUS(status), ==, 1);
        g_unlink(path);
}

int main(int argc, char **argv) {
        g_test_init(&argc, &argv, NULL);
        if (sodium_init() < 0)
                return 1;
        g_test_add_func("/rendezvous-service/register", test_register);
        g_test_add_func("/rendezvous-service/offer-answer", test_offer_answer);
        g_test_add_func("/rendezvous-service/unknown-key", test_unknown_key);
        g_test_add_func("/rendezvous-service/bad-signature", test_bad_signature);
        g_test_add_func("/rendezvous-service/replay-and-stale", test_replay_and_stale);
        g_test_add_func("/rendezvous-service/answer-from-stranger", test_answer_from_stranger);
        g_test_add_func("/rendezvous-service/flood", test_flood);
        g_test_add_func("/rendezvous-service/creds", test_creds);
        g_test_add_func("/rendezvous-service/no-turn", test_no_turn);
        g_test_add_func("/rendezvous-service/malformed-ignored", test_malformed_ignored);
        g_test_add_func("/rendezvous-service/pending-expires", test_pending_expires);
        g_test_add_func("/rendezvous-service/secret-file-mode", test_bad_secret_file_refused);
        return g_test_run();
}
