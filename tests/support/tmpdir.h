/* A temporary folder per test program, for the files the tests write, and whole-file writes
 * and reads that fail the running cmocka test on any error. */
#ifndef RN_TESTS_SUPPORT_TMPDIR_H
#define RN_TESTS_SUPPORT_TMPDIR_H

#include <stddef.h>

/* Makes /tmp/<prefix>.XXXXXX and writes its path into dir (cap bytes). 0 or -1. */
int rn_test_tmpdir_create(char *dir, size_t cap, const char *prefix);
/* Removes path and everything below it (a file or a folder). */
void rn_test_rm_rf(const char *path);
/* Removes the folder unless RN_TEST_KEEP is set (to inspect the files). */
void rn_test_tmpdir_remove(const char *dir);

/* The test program's own temporary folder, made and removed as a cmocka group's setup and
 * teardown (cmocka_run_group_tests(tests, rn_test_group_setup, rn_test_group_teardown)). */
int rn_test_group_setup(void **state);
int rn_test_group_teardown(void **state);
const char *rn_test_dir(void);
/* rn_test_dir()/name, in one of 4 rotating buffers, so that a call can take a few at once. */
const char *rn_test_path(const char *name);

/* Writes the n bytes at p as the whole of path (n may be 0: an empty file). */
void rn_test_write_file(const char *path, const void *p, size_t n);
/* The whole of path in a malloc'd buffer with a NUL after its *n bytes; the caller frees it. */
unsigned char *rn_test_read_file(const char *path, size_t *n);

#endif
