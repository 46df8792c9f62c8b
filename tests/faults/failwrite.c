/* failwrite: an LD_PRELOAD shim that makes one chosen call on a file fail, as a full disk, a
 * failing device or a read-only folder would, so that tests can check what a program does then.
 *
 *   cc -shared -fPIC -o failwrite.so tests/faults/failwrite.c -ldl
 *   FAILWRITE_CALL=fsync FAILWRITE_NTH=3 FAILWRITE_ERRNO=ENOSPC FAILWRITE_PATH=/tmp/run \
 *       LD_PRELOAD=./failwrite.so resnet train ...
 *
 * FAILWRITE_CALL   one or more classes, comma-separated:
 *                  open   open/openat/creat/fopen for writing (O_WRONLY, O_RDWR, O_CREAT; "w", "a", "+")
 *                  write  write, writev, pwrite, fwrite, fputs, fputc, putc, fprintf, vfprintf
 *                  flush  fflush
 *                  fsync  fsync, fdatasync (files and folders)
 *                  close  close and fclose of a file open for writing (the file is closed all the
 *                         same, as the kernel does when close reports an error)
 *                  rename rename, renameat, renameat2
 *                  mkdir  mkdir, mkdirat
 * FAILWRITE_NTH    the Nth matching call (1-based, counted over all classes given) fails;
 *                  0 (the default) fails none: with FAILWRITE_LOG, a run that counts the calls
 * FAILWRITE_TIMES  how many matching calls fail from the Nth on (default 1; 0: all, a full disk)
 * FAILWRITE_ERRNO  ENOSPC, EIO (the default), EACCES, EROFS, EDQUOT, EPERM, or a number
 * FAILWRITE_PATH   only calls on this path, the paths under it and those that continue it with
 *                  a dot count (default: every path but the standard streams): /run counts
 *                  every file in /run, /run/model.safetensors also model.safetensors.tmp.123;
 *                  relative paths are taken from the current folder
 * FAILWRITE_KILL   1: at the Nth call raise SIGKILL instead of failing (a crash at that instant)
 * FAILWRITE_LOG    a file that gets one line per injected fault ("fail CLASS FUNC #N PATH ERRNO")
 *                  and, at exit, "count N" (the matching calls seen)
 * FAILWRITE_TRACE  1: FAILWRITE_LOG also gets "call CLASS FUNC #N PATH" for every matching call
 *                  (to choose N: the 2nd rename of checkpoint.safetensors, ...)
 *
 * Writes of zero bytes are not counted (they cannot fail). The count is atomic: the calls may come from several threads. glibc's stdio calls its own
 * write and close inside, not these, so each call of the program is counted once. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

enum { C_OPEN = 1, C_WRITE = 2, C_FLUSH = 4, C_FSYNC = 8, C_CLOSE = 16, C_RENAME = 32, C_MKDIR = 64 };
static const char *const class_names[] = {"open", "write", "flush", "fsync", "close", "rename", "mkdir"};

static int cfg_classes, cfg_errno = EIO, cfg_kill, cfg_trace;
static long cfg_nth, cfg_times = 1;
static char cfg_path[4096], cfg_log[4096];
static long counter;

#define REAL(ret, name, args)                                                                       \
    static ret(*real_##name) args;                                                                  \
    static void load_##name(void)                                                                   \
    {                                                                                               \
        if (!real_##name) *(void **)&real_##name = dlsym(RTLD_NEXT, #name);                       \
    }

REAL(int, open, (const char *, int, ...))
REAL(int, open64, (const char *, int, ...))
REAL(int, openat, (int, const char *, int, ...))
REAL(int, openat64, (int, const char *, int, ...))
REAL(int, creat, (const char *, mode_t))
REAL(FILE *, fopen, (const char *, const char *))
REAL(FILE *, fopen64, (const char *, const char *))
REAL(ssize_t, write, (int, const void *, size_t))
REAL(ssize_t, writev, (int, const struct iovec *, int))
REAL(ssize_t, pwrite, (int, const void *, size_t, off_t))
REAL(ssize_t, pwrite64, (int, const void *, size_t, off_t))
REAL(size_t, fwrite, (const void *, size_t, size_t, FILE *))
REAL(int, fputs, (const char *, FILE *))
REAL(int, fputc, (int, FILE *))
REAL(int, putc, (int, FILE *))
REAL(int, vfprintf, (FILE *, const char *, va_list))
REAL(int, fflush, (FILE *))
REAL(int, fsync, (int))
REAL(int, fdatasync, (int))
REAL(int, close, (int))
REAL(int, fclose, (FILE *))
REAL(int, rename, (const char *, const char *))
REAL(int, renameat, (int, const char *, int, const char *))
REAL(int, renameat2, (int, const char *, int, const char *, unsigned))
REAL(int, mkdir, (const char *, mode_t))
REAL(int, mkdirat, (int, const char *, mode_t))

static int parse_errno(const char *s)
{
    static const struct { const char *name; int value; } names[] = {
        {"ENOSPC", ENOSPC}, {"EIO", EIO},       {"EACCES", EACCES}, {"EROFS", EROFS},
        {"EDQUOT", EDQUOT}, {"EPERM", EPERM},   {"ENOENT", ENOENT}, {"EFBIG", EFBIG}};
    for (size_t i = 0; i < sizeof names / sizeof *names; i++)
        if (!strcmp(s, names[i].name)) return names[i].value;
    int v = atoi(s);
    return v > 0 ? v : EIO;
}

__attribute__((constructor)) static void failwrite_init(void)
{
    const char *v = getenv("FAILWRITE_CALL");
    for (const char *p = v; p && *p;) {
        size_t len = strcspn(p, ",");
        for (int i = 0; i < 7; i++)
            if (strlen(class_names[i]) == len && !strncmp(p, class_names[i], len)) cfg_classes |= 1 << i;
        p += len + (p[len] == ',');
    }
    if ((v = getenv("FAILWRITE_NTH"))) cfg_nth = atol(v);
    if ((v = getenv("FAILWRITE_TIMES"))) cfg_times = atol(v);
    if ((v = getenv("FAILWRITE_ERRNO"))) cfg_errno = parse_errno(v);
    if ((v = getenv("FAILWRITE_KILL"))) cfg_kill = atoi(v) != 0;
    if ((v = getenv("FAILWRITE_TRACE"))) cfg_trace = atoi(v) != 0;
    if ((v = getenv("FAILWRITE_PATH"))) snprintf(cfg_path, sizeof cfg_path, "%s", v);
    if ((v = getenv("FAILWRITE_LOG"))) snprintf(cfg_log, sizeof cfg_log, "%s", v);
    size_t n = strlen(cfg_path);
    while (n > 1 && cfg_path[n - 1] == '/') cfg_path[--n] = 0;
}

static void log_line(const char *text)
{
    if (!cfg_log[0]) return;
    load_open(), load_write(), load_close();
    int fd = real_open(cfg_log, O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (fd < 0) return;
    if (real_write(fd, text, strlen(text)) < 0) { /* nothing to do about it */ }
    real_close(fd);
}

__attribute__((destructor)) static void failwrite_fini(void)
{
    char buf[64];
    snprintf(buf, sizeof buf, "count %ld\n", __atomic_load_n(&counter, __ATOMIC_SEQ_CST));
    if (cfg_classes) log_line(buf);
}

/* The absolute form of path (dirfd: AT_FDCWD or a folder), without resolving links. */
static void absolute(int dirfd, const char *path, char *out, size_t size)
{
    char base[4096] = "";
    if (!path) path = "";
    if (path[0] != '/') {
        if (dirfd == AT_FDCWD) {
            if (!getcwd(base, sizeof base)) base[0] = 0;
        } else {
            char link[64];
            snprintf(link, sizeof link, "/proc/self/fd/%d", dirfd);
            ssize_t n = readlink(link, base, sizeof base - 1);
            base[n > 0 ? n : 0] = 0;
        }
    }
    snprintf(out, size, "%s%s%s", base, base[0] && path[0] != '/' ? "/" : "", path);
}

static void fd_path(int fd, char *out, size_t size)
{
    char link[64];
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    ssize_t n = fd >= 0 ? readlink(link, out, size - 1) : -1;
    out[n > 0 ? n : 0] = 0;
}

static int under(const char *path)
{
    if (!cfg_path[0]) return path[0] == '/';
    size_t n = strlen(cfg_path);
    /* "/run/model.safetensors" takes in its temporary "/run/model.safetensors.tmp.123" */
    return !strncmp(path, cfg_path, n) && strchr("/. ", path[n]);
}

/* 1 when this call is to fail (errno set), 0 when it goes ahead; counts the matching calls. */
static int inject(int cls, const char *func, const char *path)
{
    if (!(cfg_classes & cls) || !under(path)) return 0;
    long n = __atomic_add_fetch(&counter, 1, __ATOMIC_SEQ_CST);
    int cls_i = __builtin_ctz((unsigned)cls);
    char buf[4400];
    if (cfg_trace) {
        snprintf(buf, sizeof buf, "call %s %s #%ld %s\n", class_names[cls_i], func, n, path);
        log_line(buf);
    }
    if (cfg_nth <= 0 || n < cfg_nth || (cfg_times > 0 && n >= cfg_nth + cfg_times)) return 0;
    snprintf(buf, sizeof buf, "%s %s %s #%ld %s %s\n", cfg_kill ? "kill" : "fail",
             class_names[cls_i], func, n, path, cfg_kill ? "SIGKILL" : strerror(cfg_errno));
    log_line(buf);
    if (cfg_kill) raise(SIGKILL);
    errno = cfg_errno;
    return 1;
}

static int inject_fd(int cls, const char *func, int fd)
{
    if (!(cfg_classes & cls) || fd <= 2) return 0;
    char path[4096];
    fd_path(fd, path, sizeof path);
    if (cls == C_CLOSE || cls == C_WRITE) { /* only files open for writing */
        int fl = fcntl(fd, F_GETFL);
        if (fl < 0 || (fl & O_ACCMODE) == O_RDONLY) return 0;
    }
    return inject(cls, func, path);
}

/* A stream whose write fails keeps the error indicator set, as glibc's own failures leave it
 * (ferror then reports it). */
static int inject_file(int cls, const char *func, FILE *fp)
{
    if (!fp || !inject_fd(cls, func, fileno(fp))) return 0;
#ifdef _IO_ERR_SEEN
    if (cls & (C_WRITE | C_FLUSH)) fp->_flags |= _IO_ERR_SEEN;
#endif
    return 1;
}

static int inject_open(int dirfd, const char *func, const char *path, int writing)
{
    if (!(cfg_classes & C_OPEN) || !writing) return 0;
    char abs[4096];
    absolute(dirfd, path, abs, sizeof abs);
    return inject(C_OPEN, func, abs);
}

static int writes(int flags) { return (flags & O_ACCMODE) != O_RDONLY || (flags & O_CREAT); }
static int mode_writes(const char *mode) { return mode && strpbrk(mode, "wa+") != NULL; }

/* ---- open ---- */
#define OPEN_MODE(flags, mode)                                                                      \
    mode_t mode = 0;                                                                                \
    if ((flags) & (O_CREAT | O_TMPFILE)) {                                                          \
        va_list ap;                                                                                 \
        va_start(ap, flags);                                                                        \
        mode = (mode_t)va_arg(ap, int);                                                             \
        va_end(ap);                                                                                 \
    }

int open(const char *path, int flags, ...)
{
    OPEN_MODE(flags, mode);
    load_open();
    if (inject_open(AT_FDCWD, "open", path, writes(flags))) return -1;
    return real_open(path, flags, mode);
}

int open64(const char *path, int flags, ...)
{
    OPEN_MODE(flags, mode);
    load_open64();
    if (inject_open(AT_FDCWD, "open64", path, writes(flags))) return -1;
    return real_open64(path, flags, mode);
}

int openat(int dirfd, const char *path, int flags, ...)
{
    OPEN_MODE(flags, mode);
    load_openat();
    if (inject_open(dirfd, "openat", path, writes(flags))) return -1;
    return real_openat(dirfd, path, flags, mode);
}

int openat64(int dirfd, const char *path, int flags, ...)
{
    OPEN_MODE(flags, mode);
    load_openat64();
    if (inject_open(dirfd, "openat64", path, writes(flags))) return -1;
    return real_openat64(dirfd, path, flags, mode);
}

int creat(const char *path, mode_t mode)
{
    load_creat();
    if (inject_open(AT_FDCWD, "creat", path, 1)) return -1;
    return real_creat(path, mode);
}

FILE *fopen(const char *path, const char *mode)
{
    load_fopen();
    if (inject_open(AT_FDCWD, "fopen", path, mode_writes(mode))) return NULL;
    return real_fopen(path, mode);
}

FILE *fopen64(const char *path, const char *mode)
{
    load_fopen64();
    if (inject_open(AT_FDCWD, "fopen64", path, mode_writes(mode))) return NULL;
    return real_fopen64(path, mode);
}

/* ---- write ---- */
ssize_t write(int fd, const void *buf, size_t n)
{
    load_write();
    if (n && inject_fd(C_WRITE, "write", fd)) return -1;
    return real_write(fd, buf, n);
}

ssize_t writev(int fd, const struct iovec *iov, int cnt)
{
    load_writev();
    if (inject_fd(C_WRITE, "writev", fd)) return -1;
    return real_writev(fd, iov, cnt);
}

ssize_t pwrite(int fd, const void *buf, size_t n, off_t off)
{
    load_pwrite();
    if (n && inject_fd(C_WRITE, "pwrite", fd)) return -1;
    return real_pwrite(fd, buf, n, off);
}

ssize_t pwrite64(int fd, const void *buf, size_t n, off_t off)
{
    load_pwrite64();
    if (n && inject_fd(C_WRITE, "pwrite64", fd)) return -1;
    return real_pwrite64(fd, buf, n, off);
}

size_t fwrite(const void *p, size_t size, size_t n, FILE *fp)
{
    load_fwrite();
    if (size && n && inject_file(C_WRITE, "fwrite", fp)) return 0;
    return real_fwrite(p, size, n, fp);
}

int fputs(const char *s, FILE *fp)
{
    load_fputs();
    if (*s && inject_file(C_WRITE, "fputs", fp)) return EOF;
    return real_fputs(s, fp);
}

int fputc(int c, FILE *fp)
{
    load_fputc();
    if (inject_file(C_WRITE, "fputc", fp)) return EOF;
    return real_fputc(c, fp);
}

int putc(int c, FILE *fp)
{
    load_putc();
    if (inject_file(C_WRITE, "putc", fp)) return EOF;
    return real_putc(c, fp);
}

int vfprintf(FILE *fp, const char *fmt, va_list ap)
{
    load_vfprintf();
    if (inject_file(C_WRITE, "vfprintf", fp)) return -1;
    return real_vfprintf(fp, fmt, ap);
}

int fprintf(FILE *fp, const char *fmt, ...)
{
    load_vfprintf();
    if (inject_file(C_WRITE, "fprintf", fp)) return -1;
    va_list ap;
    va_start(ap, fmt);
    int r = real_vfprintf(fp, fmt, ap);
    va_end(ap);
    return r;
}

/* ---- flush, fsync ---- */
int fflush(FILE *fp)
{
    load_fflush();
    if (inject_file(C_FLUSH, "fflush", fp)) return EOF;
    return real_fflush(fp);
}

int fsync(int fd)
{
    load_fsync();
    if (inject_fd(C_FSYNC, "fsync", fd)) return -1;
    return real_fsync(fd);
}

int fdatasync(int fd)
{
    load_fdatasync();
    if (inject_fd(C_FSYNC, "fdatasync", fd)) return -1;
    return real_fdatasync(fd);
}

/* ---- close: the file is closed all the same, then the error is reported ---- */
int close(int fd)
{
    load_close();
    int fail = inject_fd(C_CLOSE, "close", fd), e = errno;
    int r = real_close(fd);
    if (fail) errno = e;
    return fail ? -1 : r;
}

int fclose(FILE *fp)
{
    load_fclose();
    int fail = inject_file(C_CLOSE, "fclose", fp), e = errno;
    int r = real_fclose(fp);
    if (fail) errno = e;
    return fail ? EOF : r;
}

/* ---- rename, mkdir ---- */
static int inject_rename(int olddir, const char *from, int newdir, const char *to, const char *func)
{
    if (!(cfg_classes & C_RENAME)) return 0;
    char a[4096], b[4096];
    absolute(olddir, from, a, sizeof a);
    absolute(newdir, to, b, sizeof b);
    return inject(C_RENAME, func, under(b) ? b : a);
}

int rename(const char *from, const char *to)
{
    load_rename();
    if (inject_rename(AT_FDCWD, from, AT_FDCWD, to, "rename")) return -1;
    return real_rename(from, to);
}

int renameat(int olddir, const char *from, int newdir, const char *to)
{
    load_renameat();
    if (inject_rename(olddir, from, newdir, to, "renameat")) return -1;
    return real_renameat(olddir, from, newdir, to);
}

int renameat2(int olddir, const char *from, int newdir, const char *to, unsigned flags)
{
    load_renameat2();
    if (inject_rename(olddir, from, newdir, to, "renameat2")) return -1;
    return real_renameat2(olddir, from, newdir, to, flags);
}

int mkdir(const char *path, mode_t mode)
{
    load_mkdir();
    if (cfg_classes & C_MKDIR) {
        char abs[4096];
        absolute(AT_FDCWD, path, abs, sizeof abs);
        if (inject(C_MKDIR, "mkdir", abs)) return -1;
    }
    return real_mkdir(path, mode);
}

int mkdirat(int dirfd, const char *path, mode_t mode)
{
    load_mkdirat();
    if (cfg_classes & C_MKDIR) {
        char abs[4096];
        absolute(dirfd, path, abs, sizeof abs);
        if (inject(C_MKDIR, "mkdirat", abs)) return -1;
    }
    return real_mkdirat(dirfd, path, mode);
}
