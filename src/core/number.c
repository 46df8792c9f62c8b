#include "core/number.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>

int rn_parse_number(const char *text, int integer, double lo, double hi, double *out)
{
    if (!text || !*text) return -1;
    char *end;
    errno = 0;
    double v;
    if (integer) {
        long long n = strtoll(text, &end, 10);
        /* exact up to 2^53, which every integer field here is far below */
        v = (double)n;
    } else {
        v = strtod(text, &end);
    }
    if (errno || end == text || *end || !isfinite(v) || v < lo || v > hi) return -1;
    *out = v;
    return 0;
}
