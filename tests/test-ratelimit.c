/* SPDX-License-Identifier: MIT */
/* Per-source token buckets: the burst, the refill, sources kept apart, and the
 * table bound. Time is passed in, so nothing here sleeps. */
#include <arpa/inet.h>
#include <glib.h>
#include <sodium.h>
#include <string.h>

#include "ratelimit.h"

static struct sockaddr_storage v4(const char *ip, int port) {
        struct sockaddr_storage sa = {};
        struct sockaddr_in *in = (struct sockaddr_in *) &sa;
        in->sin_family = AF_INET;
        in->sin_port = htons(port);
        inet_pton(AF_INET, ip, &in->sin_addr);
        return sa;
}

static struct sockaddr_storage v6(const char *ip) {
        struct sockaddr_storage sa = {};
        struct sockaddr_in6 *in6 = (struct sockaddr_in6 *) &sa;
        in6->sin6_family = AF_INET6;
        inet_pton(AF_INET6, ip, &in6->sin6_addr);
        return sa;
}

static unsigned allowed(n2p_ratelimit *rl, const struct sockaddr_storage *sa, unsigned n, gint64 now) {
        unsigned k = 0;
        for (unsigned i = 0; i < n; i++)
                k += n2p_ratelimit_allow(rl, sa, now);
        return k;
}

static void test_burst_then_rate(void) {
        n2p_ratelimit *rl = n2p_ratelimit_new(10, 20, 100);
        struct sockaddr_storage a = v4("10.0.0.1", 1);
        gint64 t = 1000000;

        g_assert_cmpuint(allowed(rl, &a, 100, t), ==, 20);
        /* Half a second refills five tokens. */
        g_assert_cmpuint(allowed(rl, &a, 100, t + G_USEC_PER_SEC / 2), ==, 5);
        /* Long idle: a full bucket again, never more. */
        g_assert_cmpuint(allowed(rl, &a, 100, t + 60 * G_USEC_PER_SEC), ==, 20);
        n2p_ratelimit_free(rl);
}

static void test_sources_apart(void) {
        n2p_ratelimit *rl = n2p_ratelimit_new(1, 3, 100);
        struct sockaddr_storage a = v4("10.0.0.1", 1), a2 = v4("10.0.0.1", 2), b = v4("10.0.0.2", 1);
        struct sockaddr_storage x = v6("2001:db8:0:1::1"), y = v6("2001:db8:0:1::2"), z = v6("2001:db8:0:2::1");

        g_assert_cmpuint(allowed(rl, &a, 10, 0), ==, 3);
        g_assert_cmpuint(allowed(rl, &a2, 10, 0), ==, 0);   /* same host, other port */
        g_assert_cmpuint(allowed(rl, &b, 10, 0), ==, 3);
        g_assert_cmpuint(allowed(rl, &x, 10, 0), ==, 3);
        g_assert_cmpuint(allowed(rl, &y, 10, 0), ==, 0);    /* same /64 */
        g_assert_cmpuint(allowed(rl, &z, 10, 0), ==, 3);
        n2p_ratelimit_free(rl);
}

static void test_bounded(void) {
        n2p_ratelimit *rl = n2p_ratelimit_new(1, 1, 8);
        for (int i = 0; i < 1000; i++) {
                char ip[32];
                snprintf(ip, sizeof ip, "10.1.%d.%d", i / 256, i % 256);
                struct sockaddr_storage sa = v4(ip, 1);
                g_assert_true(n2p_ratelimit_allow(rl, &sa, 0));
                g_assert_cmpuint(n2p_ratelimit_size(rl), <=, 8);
        }
        n2p_ratelimit_sweep(rl, 10 * G_USEC_PER_SEC);
        g_assert_cmpuint(n2p_ratelimit_size(rl), ==, 0);
        n2p_ratelimit_free(rl);
}

static void test_bucket(void) {
        n2p_bucket b = { 2, 0 };
        g_assert_true(n2p_bucket_take(&b, 1, 2, 0));
        g_assert_true(n2p_bucket_take(&b, 1, 2, 0));
        g_assert_false(n2p_bucket_take(&b, 1, 2, 0));
        g_assert_true(n2p_bucket_take(&b, 1, 2, G_USEC_PER_SEC));
}

int main(int argc, char **argv) {
        g_test_init(&argc, &argv, NULL);
        g_assert_cmpint(sodium_init(), >=, 0);
        g_test_add_func("/ratelimit/burst-then-rate", test_burst_then_rate);
        g_test_add_func("/ratelimit/sources-apart", test_sources_apart);
        g_test_add_func("/ratelimit/bounded", test_bounded);
        g_test_add_func("/ratelimit/bucket", test_bucket);
        return g_test_run();
}
