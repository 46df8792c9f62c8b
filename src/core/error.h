/* Status codes and the thread-local "last error" message of the library. */
#ifndef RN_CORE_ERROR_H
#define RN_CORE_ERROR_H

#include "resnet.h"

/* Records a formatted message for rn_last_error() and returns `status`, so a failing
 * function can end with `return rn_fail(RN_ERR_IO, "...: %s", path);`. */
int rn_fail(int status, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

/* Prefixes the current message with more context ("loading x.safetensors: " ...). */
int rn_fail_context(int status, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

void rn_clear_error(void);

#endif
