#define _POSIX_C_SOURCE 200809L /* fsync, fileno */
#include "core/atomic_file.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "core/error.h"

int rn_sync_dir(const char *path)
{
    const char *slash = strrchr(path, '/');
    char dir[4096];
    if (!slash) snprintf(dir, sizeof dir, ".");
    else if (slash == path) snprintf(dir, sizeof dir, "/");
    else if ((size_t)(slash - path) < sizeof dir)
        snprintf(dir, sizeof dir, "%.*s", (int)(slash - path), path);
    else return RN_OK;
    int fd = open(dir, O_RDONLY);
    if (fd < 0) return RN_OK;
    int rc = RN_OK;
    if (fsync(fd) != 0 && errno != EINVAL && errno != EROFS)
        rc = rn_fail(RN_ERR_IO, "%s: cannot fsync the folder %s: %s", path, dir, strerror(errno));
    close(fd);
    return rc;
}

int rn_atomic_open(rn_atomic_file *a, const char *path)
{
    memset(a, 0, sizeof *a);
    if ((size_t)snprintf(a->path, sizeof a->path, "%s", path) >= sizeof a->path)
        return rn_fail(RN_ERR_ARG, "%s: path too long", path);
    snprintf(a->tmp, sizeof a->tmp, "%s.tmp.%ld", path, (long)getpid());
    a->f = fopen(a->tmp, "wb");
    if (!a->f)
        return rn_fail(RN_ERR_IO, "%s: cannot create temporary file %s: %s", path, a->tmp,
                       strerror(errno));
    return RN_OK;
}

void rn_atomic_discard(rn_atomic_file *a)
{
    if (a->f) fclose(a->f);
    a->f = NULL;
    if (a->tmp[0]) remove(a->tmp);
}

int rn_atomic_commit(rn_atomic_file *a)
{
    if (!a->f) return rn_fail(RN_ERR_ARG, "%s: not open", a->path);
    const char *step = NULL;
    int err = 0;
    if (ferror(a->f)) step = "write", err = errno ? errno : EIO; /* the failed write's, if kept */
    else if (fflush(a->f) != 0) step = "flush", err = errno;
    else if (fsync(fileno(a->f)) != 0) step = "fsync", err = errno;
    FILE *f = a->f;
    a->f = NULL;
    if (fclose(f) != 0 && !step) step = "close", err = errno;
    if (!step && rename(a->tmp, a->path) != 0) step = "rename", err = errno;
    if (step) {
        remove(a->tmp);
        return rn_fail(RN_ERR_IO, "%s: cannot %s %s: %s", a->path, step, a->tmp, strerror(err));
    }
    return rn_sync_dir(a->path);
}

int rn_atomic_write(const char *path, const void *data, size_t size)
{
    rn_atomic_file a;
    int st = rn_atomic_open(&a, path);
    if (st) return st;
    if (size && fwrite(data, 1, size, a.f) != size) {
        int err = errno ? errno : EIO;
        rn_atomic_discard(&a);
        return rn_fail(RN_ERR_IO, "%s: cannot write %s: %s", path, a.tmp, strerror(err));
    }
    return rn_atomic_commit(&a);
}

int rn_atomic_rename(const char *tmp, const char *path)
{
    if (rename(tmp, path) != 0) {
        int err = errno;
        remove(tmp);
        return rn_fail(RN_ERR_IO, "%s: cannot rename %s over it: %s", path, tmp, strerror(err));
    }
    return rn_sync_dir(path);
}
