/* SPDX-License-Identifier: MIT */
/* Runs a fuzz target over every file of its corpus directory (no libFuzzer). */
#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int run_file(const char *path) {
        FILE *f = fopen(path, "rb");
        if (!f)
                return -errno;
        uint8_t *buf = malloc(1 << 20);
        if (!buf) {
                fclose(f);
                return -ENOMEM;
        }
        size_t n = fread(buf, 1, 1 << 20, f);
        fclose(f);
        LLVMFuzzerTestOneInput(buf, n);
        free(buf);
        return 0;
}

int main(int argc, char **argv) {
        unsigned n = 0;
        for (int i = 1; i < argc; i++) {
                DIR *d = opendir(argv[i]);
                if (!d) {
                        if (run_file(argv[i]) < 0) {
                                fprintf(stderr, "%s: %s\n", argv[i], strerror(errno));
                                return 1;
                        }
                        n++;
                        continue;
                }
                struct dirent *de;
                while ((de = readdir(d))) {
                        if (de->d_name[0] == '.')
                                continue;
                        char path[4096];
                        snprintf(path, sizeof path, "%s/%s", argv[i], de->d_name);
                        if (run_file(path) < 0) {
                                fprintf(stderr, "%s: %s\n", path, strerror(errno));
                                closedir(d);
                                return 1;
                        }
                        n++;
                }
                closedir(d);
        }
        if (n == 0) {
                fprintf(stderr, "no corpus inputs\n");
                return 1;
        }
        printf("%u inputs replayed\n", n);
        return 0;
}
