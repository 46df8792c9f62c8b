/* Processes that train one network together (data parallelism): their number, this one's rank,
 * and the few collective operations the trainer needs. Built over MPI with `make MPI=1`
 * (-DRN_WITH_MPI); otherwise, and whenever the program was not started by mpirun, there is one
 * process and every operation is a no-op, so the library never needs MPI.
 *
 * Sums are deterministic: a ring (reduce-scatter, then all-gather) over MPI point-to-point
 * messages, in which each chunk of the buffer is added up in the same rank order on every run,
 * whatever the timing; every process ends with the same bits. (MPI_Allreduce would do, but its
 * algorithm, and so the order of the additions, is the library's choice.)
 *
 * A communication failure is not returned: MPI's default error handler ends the whole job, and
 * a process that dies ends it too (mpirun kills the others), so no process waits for ever. */
#ifndef RN_DIST_DIST_H
#define RN_DIST_DIST_H

#include <stddef.h>
#include <stdint.h>

typedef struct rn_dist rn_dist;

/* Joins the job when this process was started by mpirun (MPI_Init), else makes a one-process
 * context. RN_ERR_ARG when started by mpirun but built without MPI. */
int rn_dist_create(rn_dist **out);
/* Leaves the job (MPI_Finalize) after the others are done too. */
void rn_dist_free(rn_dist *d);
/* Ends every process of the job at once with this exit status (MPI_Abort); a one-process
 * context returns and the caller exits itself. */
void rn_dist_abort(rn_dist *d, int status);

int rn_dist_rank(const rn_dist *d); /* 0 .. size - 1; 0 for NULL */
int rn_dist_size(const rn_dist *d); /* 1 for NULL */
/* Whether this build can run over MPI ("MPI" or "no MPI"). */
const char *rn_dist_backend(void);

/* In place: buf becomes the element-wise sum over all processes (the same bits on each). */
int rn_dist_sum_float(rn_dist *d, float *buf, size_t n);
int rn_dist_sum_double(rn_dist *d, double *buf, size_t n);
/* *value becomes the largest of the processes' values. */
int rn_dist_max_int(rn_dist *d, int *value);
/* rank 0's bytes into every process's buf. */
int rn_dist_broadcast(rn_dist *d, void *buf, size_t bytes);
/* Whether every process holds the same 64-bit value: *same 1 or 0 on all of them. */
int rn_dist_same_u64(rn_dist *d, uint64_t value, int *same);
/* Waits for every process. */
int rn_dist_barrier(rn_dist *d);

/* Sums that go on while the caller computes (the gradients of the layers a backward pass has
 * finished, as DistributedDataParallel's buckets): rn_dist_sum_start queues buf[0, n) for the
 * same ring sum as rn_dist_sum_float, started at once if nothing is ahead of it; each
 * rn_dist_sum_progress moves the queued sums on as far as their messages have arrived, without
 * waiting; rn_dist_sum_wait finishes them all. The ring's order of additions is that of
 * rn_dist_sum_float on the same range, whenever the messages arrive. The buffers must stay
 * untouched until the wait. Their messages travel on a communicator of their own, so the
 * blocking operations above may run in between. At most RN_DIST_MAX_QUEUED ranges at a time. */
#define RN_DIST_MAX_QUEUED 1024
/* Memory for queued sums of up to n floats: reserved before the first start, so that no start
 * has to wait for the sums ahead of it (a process waiting there while another waits for it in a
 * blocking sum would wait for ever); a start beyond it with sums queued is refused. */
int rn_dist_sum_reserve(rn_dist *d, size_t n);
int rn_dist_sum_start(rn_dist *d, float *buf, size_t n);
int rn_dist_sum_progress(rn_dist *d);
int rn_dist_sum_wait(rn_dist *d);

/* Seconds spent inside the operations above since create (the communication time). */
double rn_dist_comm_seconds(const rn_dist *d);

/* FNV-1a over bytes, continuing from h (start with RN_DIST_HASH_INIT). */
#define RN_DIST_HASH_INIT 0xcbf29ce484222325ULL
uint64_t rn_dist_hash(uint64_t h, const void *data, size_t bytes);

#endif
