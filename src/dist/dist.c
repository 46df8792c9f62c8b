/* Processes that train together (see dist.h): over MPI, or one process without it. */
#define _POSIX_C_SOURCE 200809L /* getenv */
#include "dist/dist.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "core/clock.h"
#include "core/error.h"

#ifdef RN_WITH_MPI
#include <mpi.h>
#endif

struct rn_dist {
    int rank, size;
    int mpi; /* MPI_Init was called: MPI_Finalize at free */
    double comm_s;
    void *scratch; /* a ring step's incoming chunk */
    size_t scratch_bytes;
};

/* The launchers' variables: Open MPI's mpirun, MPICH's Hydra, and PMIx's. */
static int launched_size(void)
{
    static const char *const vars[] = {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_SIZE"};
    for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++) {
        const char *v = getenv(vars[i]);
        if (v && *v) return atoi(v);
    }
    return 0;
}

const char *rn_dist_backend(void)
{
#ifdef RN_WITH_MPI
    return "MPI";
#else
    return "no MPI";
#endif
}

int rn_dist_create(rn_dist **out)
{
    *out = NULL;
    rn_dist *d = calloc(1, sizeof *d);
    if (!d) return rn_fail(RN_ERR_NOMEM, "out of memory");
    d->size = 1;
    const int launched = launched_size();
#ifdef RN_WITH_MPI
    if (launched > 0) {
        int provided;
        /* Only the main thread calls MPI (the loader's thread never does). */
        if (MPI_Init_thread(NULL, NULL, MPI_THREAD_FUNNELED, &provided) != MPI_SUCCESS) {
            free(d);
            return rn_fail(RN_ERR_IO, "MPI_Init failed");
        }
        d->mpi = 1;
        MPI_Comm_rank(MPI_COMM_WORLD, &d->rank);
        MPI_Comm_size(MPI_COMM_WORLD, &d->size);
    }
#else
    if (launched > 1) {
        free(d);
        return rn_fail(RN_ERR_ARG, "started by mpirun with %d processes, but this resnet was built "
                                   "without MPI: build it with make MPI=1",
                       launched);
    }
#endif
    *out = d;
    return RN_OK;
}

void rn_dist_free(rn_dist *d)
{
    if (!d) return;
#ifdef RN_WITH_MPI
    if (d->mpi) MPI_Finalize();
#endif
    free(d->scratch);
    free(d);
}

void rn_dist_abort(rn_dist *d, int status)
{
#ifdef RN_WITH_MPI
    if (d && d->mpi && d->size > 1) MPI_Abort(MPI_COMM_WORLD, status);
#else
    (void)status;
#endif
    (void)d;
}

int rn_dist_rank(const rn_dist *d) { return d ? d->rank : 0; }
int rn_dist_size(const rn_dist *d) { return d ? d->size : 1; }
double rn_dist_comm_seconds(const rn_dist *d) { return d ? d->comm_s : 0.0; }

uint64_t rn_dist_hash(uint64_t h, const void *data, size_t bytes)
{
    const unsigned char *p = data;
    for (size_t i = 0; i < bytes; i++) h = (h ^ p[i]) * 0x100000001b3ULL;
    return h;
}

#ifdef RN_WITH_MPI
static int grow_scratch(rn_dist *d, size_t bytes)
{
    if (bytes <= d->scratch_bytes) return RN_OK;
    void *p = realloc(d->scratch, bytes);
    if (!p) return rn_fail(RN_ERR_NOMEM, "out of memory for a %zu-byte message", bytes);
    d->scratch = p;
    d->scratch_bytes = bytes;
    return RN_OK;
}

/* Chunk c of n elements split over p processes: [lo, hi). */
static size_t chunk_lo(size_t n, int p, int c) { return n / (size_t)p * (size_t)c + (n % (size_t)p < (size_t)c ? n % (size_t)p : (size_t)c); }

/* The ring: p - 1 steps of reduce-scatter, after which process r holds the whole sum of chunk
 * (r + 1) mod p, added up in the order r + 1, r + 2, ... (mod p): fixed by p and n alone; then
 * p - 1 steps that pass the finished chunks around. */
static int ring_sum(rn_dist *d, void *buf, size_t n, size_t elem, MPI_Datatype type,
                    void (*add)(void *dst, const void *src, size_t count))
{
    const int p = d->size, r = d->rank, next = (r + 1) % p, prev = (r + p - 1) % p;
    const size_t most = n / (size_t)p + 1;
    int st = grow_scratch(d, most * elem);
    if (st) return st;
    char *b = buf;
    if (most > (size_t)INT_MAX) return rn_fail(RN_ERR_ARG, "a sum of %zu elements is too long", n);
    for (int s = 0; s < p - 1; s++) {
        const int send = ((r - s) % p + p) % p, recv = ((r - s - 1) % p + p) % p;
        const size_t slo = chunk_lo(n, p, send), shi = chunk_lo(n, p, send + 1);
        const size_t rlo = chunk_lo(n, p, recv), rhi = chunk_lo(n, p, recv + 1);
        MPI_Sendrecv(b + slo * elem, (int)(shi - slo), type, next, 1, d->scratch, (int)(rhi - rlo),
                     type, prev, 1, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
        add(b + rlo * elem, d->scratch, rhi - rlo);
    }
    for (int s = 0; s < p - 1; s++) {
        const int send = ((r + 1 - s) % p + p) % p, recv = ((r - s) % p + p) % p;
        const size_t slo = chunk_lo(n, p, send), shi = chunk_lo(n, p, send + 1);
        const size_t rlo = chunk_lo(n, p, recv), rhi = chunk_lo(n, p, recv + 1);
        MPI_Sendrecv(b + slo * elem, (int)(shi - slo), type, next, 2, b + rlo * elem,
                     (int)(rhi - rlo), type, prev, 2, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
    }
    return RN_OK;
}

/* dst += src: the received partial sum is the left operand, so chunk c is
 * ((x_c + x_c+1) + x_c+2) + ... in ring order. */
static void add_float(void *dst, const void *src, size_t count)
{
    float *a = dst;
    const float *b = src;
    for (size_t i = 0; i < count; i++) a[i] = b[i] + a[i];
}

static void add_double(void *dst, const void *src, size_t count)
{
    double *a = dst;
    const double *b = src;
    for (size_t i = 0; i < count; i++) a[i] = b[i] + a[i];
}
#endif

int rn_dist_sum_float(rn_dist *d, float *buf, size_t n)
{
    if (!d || d->size == 1 || n == 0) return RN_OK;
#ifdef RN_WITH_MPI
    const double t0 = rn_clock_s();
    int st = ring_sum(d, buf, n, sizeof *buf, MPI_FLOAT, add_float);
    d->comm_s += rn_clock_s() - t0;
    return st;
#else
    (void)buf;
    return RN_OK;
#endif
}

int rn_dist_sum_double(rn_dist *d, double *buf, size_t n)
{
    if (!d || d->size == 1 || n == 0) return RN_OK;
#ifdef RN_WITH_MPI
    const double t0 = rn_clock_s();
    int st = ring_sum(d, buf, n, sizeof *buf, MPI_DOUBLE, add_double);
    d->comm_s += rn_clock_s() - t0;
    return st;
#else
    (void)buf;
    return RN_OK;
#endif
}

int rn_dist_max_int(rn_dist *d, int *value)
{
    if (!d || d->size == 1) return RN_OK;
#ifdef RN_WITH_MPI
    const double t0 = rn_clock_s();
    MPI_Allreduce(MPI_IN_PLACE, value, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
    d->comm_s += rn_clock_s() - t0;
#else
    (void)value;
#endif
    return RN_OK;
}

int rn_dist_broadcast(rn_dist *d, void *buf, size_t bytes)
{
    if (!d || d->size == 1 || bytes == 0) return RN_OK;
#ifdef RN_WITH_MPI
    const double t0 = rn_clock_s();
    for (size_t off = 0; off < bytes;) {
        const size_t part = bytes - off < (size_t)INT_MAX ? bytes - off : (size_t)INT_MAX;
        MPI_Bcast((char *)buf + off, (int)part, MPI_BYTE, 0, MPI_COMM_WORLD);
        off += part;
    }
    d->comm_s += rn_clock_s() - t0;
#else
    (void)buf;
#endif
    return RN_OK;
}

int rn_dist_same_u64(rn_dist *d, uint64_t value, int *same)
{
    *same = 1;
    if (!d || d->size == 1) return RN_OK;
    uint64_t first = value;
    int st = rn_dist_broadcast(d, &first, sizeof first);
    int differs = first != value;
    if (!st) st = rn_dist_max_int(d, &differs);
    *same = !differs;
    return st;
}

int rn_dist_barrier(rn_dist *d)
{
    if (!d || d->size == 1) return RN_OK;
#ifdef RN_WITH_MPI
    MPI_Barrier(MPI_COMM_WORLD);
#endif
    return RN_OK;
}
