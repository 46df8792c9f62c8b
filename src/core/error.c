#include "core/error.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static _Thread_local char last_error[1024];

const char *rn_last_error(void) { return last_error[0] ? last_error : "no error"; }

void rn_clear_error(void) { last_error[0] = '\0'; }

int rn_fail(int status, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(last_error, sizeof last_error, fmt, ap);
    va_end(ap);
    return status;
}

int rn_fail_context(int status, const char *fmt, ...)
{
    char prefix[512], old[sizeof last_error];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    memcpy(old, last_error, sizeof old);
    /* "prefix: old", cut to fit */
    size_t lp = strlen(prefix), lo = strlen(old), room = sizeof last_error - 1;
    if (lp > room - 2) lp = room - 2;
    if (lo > room - 2 - lp) lo = room - 2 - lp;
    memcpy(last_error, prefix, lp);
    memcpy(last_error + lp, ": ", 2);
    memcpy(last_error + lp + 2, old, lo);
    last_error[lp + 2 + lo] = '\0';
    return status;
}
