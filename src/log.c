/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <systemd/sd-journal.h>
#include <unistd.h>

#include "log.h"

static const char *program = "n2p";
static bool debug_on;
static int to_journal = -1;     /* -1: not yet decided */

void n2p_log_init(const char *name) {
        program = name;
        if (getenv("N2P_DEBUG"))
                debug_on = true;
}

void n2p_log_set_debug(int on) {
        debug_on = on;
}

/* Under systemd, stderr is a journal stream: then log natively, so the priority
 * and our own fields survive (the same test systemd's own log code makes). */
static bool use_journal(void) {
        if (to_journal >= 0)
                return to_journal;
        to_journal = 0;
        const char *e = getenv("JOURNAL_STREAM");
        unsigned long long dev, ino;
        struct stat st;
        if (e && sscanf(e, "%llu:%llu", &dev, &ino) == 2 && fstat(STDERR_FILENO, &st) == 0 &&
            st.st_dev == dev && st.st_ino == ino)
                to_journal = 1;
        return to_journal;
}

static void emit(int priority, const char *msg, const char *const *fields) {
        if (use_journal()) {
                struct iovec iov[16];
                char *mbuf = NULL, pbuf[32], ibuf[128];
                size_t n = 0;
                if (asprintf(&mbuf, "MESSAGE=%s", msg) < 0)
                        return;
                snprintf(pbuf, sizeof pbuf, "PRIORITY=%d", priority);
                snprintf(ibuf, sizeof ibuf, "SYSLOG_IDENTIFIER=%s", program);
                iov[n++] = (struct iovec) { mbuf, strlen(mbuf) };
                iov[n++] = (struct iovec) { pbuf, strlen(pbuf) };
                iov[n++] = (struct iovec) { ibuf, strlen(ibuf) };
                for (size_t i = 0; fields && fields[i] && n < 16; i++)
                        iov[n++] = (struct iovec) { (void *) fields[i], strlen(fields[i]) };
                sd_journal_sendv(iov, (int) n);
                free(mbuf);
                return;
        }
        const char *tag = priority <= LOG_ERR ? "error: " : priority == LOG_WARNING ? "warning: " : "";
        fprintf(stderr, "%s: %s%s\n", program, tag, msg);
}

__attribute__((format(printf, 4, 0)))
static void vlog(int priority, int error, const char *const *fields, const char *format, va_list ap) {
        if (priority >= LOG_DEBUG && !debug_on)
                return;
        int saved = errno;
        char buf[1024];
        if (error)
                errno = error < 0 ? -error : error;   /* for %m */
        vsnprintf(buf, sizeof buf, format, ap);
        emit(priority, buf, fields);
        errno = saved;
}

int n2p_log_full(int priority, int error, const char *format, ...) {
        va_list ap;
        va_start(ap, format);
        vlog(priority, error, NULL, format, ap);
        va_end(ap);
        return error < 0 ? error : error > 0 ? -error : -EINVAL;
}

void n2p_log_fields(const char *const *fields, const char *format, ...) {
        va_list ap;
        va_start(ap, format);
        vlog(LOG_INFO, 0, fields, format, ap);
        va_end(ap);
}
