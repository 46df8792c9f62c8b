/* Files replaced whole or not at all: written to PATH.tmp.PID, flushed, fsynced and closed,
 * renamed over PATH, then the folder fsynced so that the rename survives a power cut. A failure
 * at any step removes the temporary and leaves PATH as it was, with an error that names PATH,
 * the step and the cause. (A temporary left by a killed process keeps its PID, so that the next
 * run can tell it is stale.) */
#ifndef RN_CORE_ATOMIC_FILE_H
#define RN_CORE_ATOMIC_FILE_H

#include <stddef.h>
#include <stdio.h>

typedef struct {
    FILE *f; /* write here (fprintf, fwrite ...); rn_atomic_commit checks every write */
    char path[4096], tmp[4128];
} rn_atomic_file;

/* Opens path's temporary for writing. */
int rn_atomic_open(rn_atomic_file *a, const char *path);
/* Flushes, fsyncs, closes and renames into place, then syncs the folder. */
int rn_atomic_commit(rn_atomic_file *a);
/* Gives up: closes and removes the temporary (after an error of the caller's own). */
void rn_atomic_discard(rn_atomic_file *a);
/* The whole file in one call. */
int rn_atomic_write(const char *path, const void *data, size_t size);
/* For a temporary that another library wrote and closed (PLplot's drivers): renames it over
 * path and syncs the folder; removes it on failure. */
int rn_atomic_rename(const char *tmp, const char *path);
/* fsync of the folder holding path. File systems that cannot sync a folder (EINVAL, EROFS) are
 * let be; so is a folder that cannot be opened (the file is in place, only its durability is
 * unconfirmed). */
int rn_sync_dir(const char *path);

#endif
