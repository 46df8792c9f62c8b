#define _GNU_SOURCE /* mkdtemp, lstat */
#include "tmpdir.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int rn_test_tmpdir_create(char *dir, size_t cap, const char *prefix)
{
    if (snprintf(dir, cap, "/tmp/%s.XXXXXX", prefix) >= (int)cap) return -1;
    return mkdtemp(dir) ? 0 : -1;
}

void rn_test_rm_rf(const char *path)
{
    struct stat st;
    if (lstat(path, &st) != 0) return;
    if (!S_ISDIR(st.st_mode)) {
        unlink(path);
        return;
    }
    DIR *d = opendir(path);
    if (d) {
        struct dirent *de;
        while ((de = readdir(d)) != NULL) {
            if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0) continue;
            char sub[1024];
            snprintf(sub, sizeof sub, "%s/%s", path, de->d_name);
            rn_test_rm_rf(sub);
        }
        closedir(d);
    }
    rmdir(path);
}

void rn_test_tmpdir_remove(const char *dir)
{
    if (!getenv("RN_TEST_KEEP")) rn_test_rm_rf(dir);
}

static char group_dir[256];

int rn_test_group_setup(void **state)
{
    (void)state;
    return rn_test_tmpdir_create(group_dir, sizeof group_dir, "rn_test");
}

int rn_test_group_teardown(void **state)
{
    (void)state;
    rn_test_tmpdir_remove(group_dir);
    return 0;
}

const char *rn_test_dir(void) { return group_dir; }

const char *rn_test_path(const char *name)
{
    static char path[4][512];
    static int next;
    char *p = path[next++ % 4];
    snprintf(p, 512, "%s/%s", group_dir, name);
    return p;
}

void rn_test_write_file(const char *path, const void *p, size_t n)
{
    FILE *fp = fopen(path, "wb");
    assert_non_null(fp);
    if (n) assert_int_equal(fwrite(p, 1, n, fp), n);
    assert_int_equal(fclose(fp), 0);
}

unsigned char *rn_test_read_file(const char *path, size_t *n)
{
    FILE *fp = fopen(path, "rb");
    assert_non_null(fp);
    assert_int_equal(fseek(fp, 0, SEEK_END), 0);
    long len = ftell(fp);
    assert_true(len >= 0);
    assert_int_equal(fseek(fp, 0, SEEK_SET), 0);
    unsigned char *buf = malloc((size_t)len + 1);
    assert_non_null(buf);
    assert_int_equal(fread(buf, 1, (size_t)len, fp), (size_t)len);
    assert_int_equal(fclose(fp), 0);
    buf[len] = '\0';
    *n = (size_t)len;
    return buf;
}
