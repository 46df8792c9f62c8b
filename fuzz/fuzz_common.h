/* Helpers shared by the libFuzzer harnesses (fuzz/fuzz_*.c). The library reads files by path,
 * so each input is written to a file first: an anonymous memory file (memfd) reached through
 * /proc/self/fd/N for one-file formats, or files in a private folder under /dev/shm for formats
 * that read several files of fixed names from one folder (/tmp when there is no /dev/shm). */
#ifndef RN_FUZZ_COMMON_H
#define RN_FUZZ_COMMON_H

#define _GNU_SOURCE /* memfd_create */

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

/* Replaces the contents of the memory file `slot` (0..3) with data and returns its path. The
 * files live for the whole process; each execution rewrites them. */
static inline const char *fuzz_memfile(int slot, const void *data, size_t size)
{
    static int fd[4] = {-1, -1, -1, -1};
    static char path[4][64];
    if (fd[slot] < 0) {
        fd[slot] = memfd_create("rn_fuzz", 0);
        if (fd[slot] < 0) {
            perror("memfd_create");
            abort();
        }
        snprintf(path[slot], sizeof path[slot], "/proc/self/fd/%d", fd[slot]);
    }
    if (ftruncate(fd[slot], 0) != 0) abort();
    const unsigned char *p = data;
    size_t done = 0;
    while (done < size) {
        ssize_t n = pwrite(fd[slot], p + done, size - done, (off_t)done);
        if (n <= 0) abort();
        done += (size_t)n;
    }
    return path[slot];
}

/* A private folder for one process (removed at exit), and files written into it. */
static char fuzz_dir_path[64];

static inline void fuzz_dir_remove(void)
{
    char cmd[128];
    if (!fuzz_dir_path[0]) return;
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", fuzz_dir_path);
    if (system(cmd) != 0) fprintf(stderr, "fuzz: could not remove %s\n", fuzz_dir_path);
}

static inline const char *fuzz_dir(void)
{
    if (!fuzz_dir_path[0]) {
        /* named after the process, so that tools/fuzz.sh can remove it after a crash */
        snprintf(fuzz_dir_path, sizeof fuzz_dir_path, "/dev/shm/rn_fuzz.%ld.XXXXXX", (long)getpid());
        if (!mkdtemp(fuzz_dir_path)) {
            snprintf(fuzz_dir_path, sizeof fuzz_dir_path, "/tmp/rn_fuzz.%ld.XXXXXX", (long)getpid());
            if (!mkdtemp(fuzz_dir_path)) {
                perror("mkdtemp");
                abort();
            }
        }
        atexit(fuzz_dir_remove);
    }
    return fuzz_dir_path;
}

/* Writes data to DIR/name (size 0 still creates the file); data NULL removes the file. */
static inline void fuzz_dir_file(const char *name, const void *data, size_t size)
{
    char path[256];
    snprintf(path, sizeof path, "%s/%s", fuzz_dir(), name);
    if (!data) {
        unlink(path);
        return;
    }
    FILE *fp = fopen(path, "wb");
    if (!fp || (size && fwrite(data, 1, size, fp) != size) || fclose(fp) != 0) {
        perror(path);
        abort();
    }
}

#endif
