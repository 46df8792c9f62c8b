/* Wall time spent in each OpenMP parallel region, by the function GCC outlined for it: an
 * LD_PRELOAD shim around libgomp's GOMP_parallel. Comparing a run at 1 thread with one at 2
 * shows which regions do not scale, and total minus the top-level regions is the time no
 * region covered (one thread working alone). Regions opened inside another one (or with a
 * false `if` clause, which still calls GOMP_parallel) are counted too, so sums can exceed
 * the total. docs/performance.md quotes it.
 *   cc -O2 -shared -fPIC bench/omp_regions.c -o build/omp_regions.so -ldl
 *   OMP_REGIONS_OUT=t2.txt LD_PRELOAD=build/omp_regions.so build/resnet bench --arch \
 *       resnet8-w32-s2 --input 1x28x28 --batch 64 --mode train --threads 2
 * Output: "total SECONDS", then "SECONDS CALLS OFFSET" per region, OFFSET being the outlined
 * function's address in its object (hex): `addr2line -f -e build/resnet 0xOFFSET` names it. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

typedef void (*region_fn)(void *);
typedef void (*gomp_parallel_fn)(region_fn, void *, unsigned, unsigned);

#define SLOTS 1024
static struct {
    void *fn;
    double seconds;
    long calls;
} slots[SLOTS];
static double started;

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

void GOMP_parallel(region_fn fn, void *data, unsigned threads, unsigned flags)
{
    static gomp_parallel_fn real;
    if (!real) real = (gomp_parallel_fn)dlsym(RTLD_NEXT, "GOMP_parallel");
    const double t0 = now();
    real(fn, data, threads, flags);
    const double t = now() - t0;
    unsigned h = (unsigned)(((uintptr_t)fn >> 4) % SLOTS);
    for (int probes = 0; probes < SLOTS && slots[h].fn && slots[h].fn != (void *)fn; probes++)
        h = (h + 1) % SLOTS;
    if (slots[h].fn && slots[h].fn != (void *)fn) return; /* table full: not counted */
    slots[h].fn = (void *)fn;
    slots[h].seconds += t;
    slots[h].calls++;
}

__attribute__((constructor)) static void start(void) { started = now(); }

__attribute__((destructor)) static void report(void)
{
    const char *path = getenv("OMP_REGIONS_OUT");
    FILE *f = path ? fopen(path, "w") : stderr;
    if (!f) return;
    fprintf(f, "total %.4f\n", now() - started);
    for (int i = 0; i < SLOTS; i++) {
        Dl_info info;
        if (!slots[i].fn || !dladdr(slots[i].fn, &info)) continue;
        fprintf(f, "%.4f %ld %lx\n", slots[i].seconds, slots[i].calls,
                (unsigned long)((char *)slots[i].fn - (char *)info.dli_fbase));
    }
    if (f != stderr) fclose(f);
}
