#define _GNU_SOURCE /* mkdtemp, lstat */
#include "tmpdir.h"

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
