/* Deterministic random numbers: the same seed gives the same sequence on every platform. */
#ifndef RN_CORE_RNG_H
#define RN_CORE_RNG_H

#include <stdint.h>

typedef struct {
    uint64_t s[4]; /* xoshiro256** state */
} rn_rng;

void rn_rng_seed(rn_rng *r, uint64_t seed);
uint64_t rn_rng_u64(rn_rng *r);
/* Uniform in [0, 1) with 24 random bits, exactly representable as a float. */
float rn_rng_uniform(rn_rng *r);
/* Standard normal (Box-Muller in double, rounded to float). */
float rn_rng_normal(rn_rng *r);
/* Uniform integer in [0, n). */
uint32_t rn_rng_below(rn_rng *r, uint32_t n);

#endif
