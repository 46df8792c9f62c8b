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

/* A queued sum (rn_dist_sum_start) and where its ring stands. */
typedef struct {
    float *buf;
    size_t n;
} queued_sum;

struct rn_dist {
    int rank, size;
    int mpi; /* MPI_Init was called: MPI_Finalize at free */
    double comm_s;
    void *scratch; /* a ring step's incoming chunk */
    size_t scratch_bytes;
    /* the sums that go on while the caller computes: queue[head, tail), the head's ring at
     * step `step` (0 .. 2 (size - 1)), its messages in flight when `posted` */
    queued_sum queue[RN_DIST_MAX_QUEUED];
    int head, tail, step, posted;
    float *incoming;
    size_t incoming_floats;
#ifdef RN_WITH_MPI
    MPI_Comm async_comm;
    MPI_Request req[2];
#endif
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
        MPI_Comm_dup(MPI_COMM_WORLD, &d->async_comm);
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
    if (d->mpi) {
        MPI_Comm_free(&d->async_comm);
        MPI_Finalize();
    }
#endif
    free(d->incoming);
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

/* Small sums cost latency, not bandwidth: recursive doubling takes log2 p message times where
 * the ring takes 2 (p - 1). With p = 2^k + e, the e processes above 2^k first hand their values
 * to the ones e below them (which add them) and get the result back at the end. In each round
 * partners add each other's partial sums, a + b on one side and b + a on the other: the same
 * bits, float addition being commutative; the rounds' order is fixed by p alone. */
static int doubling_sum(rn_dist *d, void *buf, size_t n, size_t elem, MPI_Datatype type,
                        void (*add)(void *dst, const void *src, size_t count))
{
    const int p = d->size, r = d->rank;
    int pow2 = 1;
    while (pow2 * 2 <= p) pow2 *= 2;
    int st = grow_scratch(d, n * elem);
    if (st) return st;
    if (r >= pow2) { /* an extra one: hand over, wait for the result */
        MPI_Send(buf, (int)n, type, r - pow2, 4, MPI_COMM_WORLD);
        MPI_Recv(buf, (int)n, type, r - pow2, 5, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
        return RN_OK;
    }
    if (r + pow2 < p) {
        MPI_Recv(d->scratch, (int)n, type, r + pow2, 4, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
        add(buf, d->scratch, n);
    }
    for (int mask = 1; mask < pow2; mask *= 2) {
        const int partner = r ^ mask;
        MPI_Sendrecv(buf, (int)n, type, partner, 6, d->scratch, (int)n, type, partner, 6,
                     MPI_COMM_WORLD, MPI_STATUS_IGNORE);
        add(buf, d->scratch, n);
    }
    if (r + pow2 < p) MPI_Send(buf, (int)n, type, r + pow2, 5, MPI_COMM_WORLD);
    return RN_OK;
}

/* Below this many bytes a sum goes by recursive doubling, from it round the ring (the choice
 * depends on the size alone). */
#define SMALL_SUM_BYTES 65536

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
    int st = n * sizeof *buf < SMALL_SUM_BYTES
                 ? doubling_sum(d, buf, n, sizeof *buf, MPI_FLOAT, add_float)
                 : ring_sum(d, buf, n, sizeof *buf, MPI_FLOAT, add_float);
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
    int st = n * sizeof *buf < SMALL_SUM_BYTES
                 ? doubling_sum(d, buf, n, sizeof *buf, MPI_DOUBLE, add_double)
                 : ring_sum(d, buf, n, sizeof *buf, MPI_DOUBLE, add_double);
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

/* ---- sums while the caller computes --------------------------------------------------------- */
#ifdef RN_WITH_MPI
/* Posts the messages of the head sum's ring step (the steps of ring_sum, one at a time). */
static void post_step(rn_dist *d)
{
    const queued_sum *q = &d->queue[d->head];
    const int p = d->size, r = d->rank, next = (r + 1) % p, prev = (r + p - 1) % p;
    const int s = d->step < p - 1 ? d->step : d->step - (p - 1);
    const int gather = d->step >= p - 1;
    const int send = gather ? ((r + 1 - s) % p + p) % p : ((r - s) % p + p) % p;
    const int recv = gather ? ((r - s) % p + p) % p : ((r - s - 1) % p + p) % p;
    const size_t slo = chunk_lo(q->n, p, send), shi = chunk_lo(q->n, p, send + 1);
    const size_t rlo = chunk_lo(q->n, p, recv), rhi = chunk_lo(q->n, p, recv + 1);
    MPI_Irecv(gather ? q->buf + rlo : d->incoming, (int)(rhi - rlo), MPI_FLOAT, prev, 3,
              d->async_comm, &d->req[0]);
    MPI_Isend(q->buf + slo, (int)(shi - slo), MPI_FLOAT, next, 3, d->async_comm, &d->req[1]);
    d->posted = 1;
}

/* The head's step is done: add what came in (reduce-scatter), go to the next step or sum. */
static void finish_step(rn_dist *d)
{
    const queued_sum *q = &d->queue[d->head];
    const int p = d->size, r = d->rank;
    if (d->step < p - 1) {
        const int recv = ((r - d->step - 1) % p + p) % p;
        const size_t rlo = chunk_lo(q->n, p, recv), rhi = chunk_lo(q->n, p, recv + 1);
        add_float(q->buf + rlo, d->incoming, rhi - rlo);
    }
    d->posted = 0;
    if (++d->step == 2 * (p - 1)) {
        d->step = 0;
        d->head = (d->head + 1) % RN_DIST_MAX_QUEUED;
    }
}

/* Moves the queue on; block: until it is empty. */
static void advance(rn_dist *d, int block)
{
    while (d->head != d->tail) {
        if (!d->posted) post_step(d);
        if (block) {
            MPI_Waitall(2, d->req, MPI_STATUSES_IGNORE);
        } else {
            int done = 0;
            MPI_Testall(2, d->req, &done, MPI_STATUSES_IGNORE);
            if (!done) return;
        }
        finish_step(d);
    }
}
#endif

int rn_dist_sum_reserve(rn_dist *d, size_t n)
{
    if (!d || d->size == 1) return RN_OK;
    const size_t most = n / (size_t)d->size + 1;
    if (most > (size_t)INT_MAX) return rn_fail(RN_ERR_ARG, "a sum of %zu elements is too long", n);
    if (most <= d->incoming_floats) return RN_OK;
    if (d->head != d->tail) /* the head's message may be arriving in the old one */
        return rn_fail(RN_ERR_ARG, "sums queued: reserve before starting them");
    float *p = realloc(d->incoming, most * sizeof *p);
    if (!p) return rn_fail(RN_ERR_NOMEM, "out of memory for a %zu-float message", most);
    d->incoming = p;
    d->incoming_floats = most;
    return RN_OK;
}

int rn_dist_sum_start(rn_dist *d, float *buf, size_t n)
{
    if (!d || d->size == 1 || n == 0) return RN_OK;
#ifdef RN_WITH_MPI
    if ((d->tail + 1) % RN_DIST_MAX_QUEUED == d->head)
        return rn_fail(RN_ERR_ARG, "more than %d sums queued", RN_DIST_MAX_QUEUED - 1);
    int st = rn_dist_sum_reserve(d, n);
    if (st) return st;
    d->queue[d->tail] = (queued_sum){buf, n};
    d->tail = (d->tail + 1) % RN_DIST_MAX_QUEUED;
    return rn_dist_sum_progress(d);
#else
    (void)buf;
    return RN_OK;
#endif
}

int rn_dist_sum_progress(rn_dist *d)
{
#ifdef RN_WITH_MPI
    if (!d || d->size == 1 || d->head == d->tail) return RN_OK;
    const double t0 = rn_clock_s();
    advance(d, 0);
    d->comm_s += rn_clock_s() - t0;
#else
    (void)d;
#endif
    return RN_OK;
}

int rn_dist_sum_wait(rn_dist *d)
{
#ifdef RN_WITH_MPI
    if (!d || d->size == 1 || d->head == d->tail) return RN_OK;
    const double t0 = rn_clock_s();
    advance(d, 1);
    d->comm_s += rn_clock_s() - t0;
#else
    (void)d;
#endif
    return RN_OK;
}
