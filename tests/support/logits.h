/* Comparing a network's test-time output with one computed before an edit (a deleted block, a
 * swap, a file written and read back), so that a test reads as edit, then same or not. */
#ifndef RN_TESTS_SUPPORT_LOGITS_H
#define RN_TESTS_SUPPORT_LOGITS_H

#include <stddef.h>

#include "resnet.h"

/* Evaluates net (test mode) on the n images at x and says whether its k = n * classes logits
 * are want, bit for bit. A failing forward fails the running cmocka test. */
int rn_test_same_logits(rn_net *net, const float *x, int n, const float *want, size_t k);

#endif
