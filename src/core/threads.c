/* The thread count of the library's parallel loops: OpenMP's, for the calling thread. */
#include <omp.h>

#include "core/error.h"
#include "resnet.h"

int rn_set_threads(int n)
{
    if (n < 1) return rn_fail(RN_ERR_ARG, "thread count must be at least 1, not %d", n);
    omp_set_num_threads(n);
    return RN_OK;
}

int rn_threads(void) { return omp_get_max_threads(); }
