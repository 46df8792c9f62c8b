/* Allocations for the arrays the vector kernels stream through: activations and their
 * gradients, the convolutions' workspace, packed weights. 64-byte aligned, so that a 16-float
 * vector at a multiple of 16 floats from the start (a channel block, a packed weight row) lies
 * in one cache line: malloc's large blocks start 16 bytes past one, and every such vector then
 * straddled two lines. Released with free(). Not for arrays that may never be touched (a
 * network's gradients in inference): calloc leaves fresh pages unmapped until written, a
 * zeroed rn_alloc_lines_zero writes them all. */
#ifndef RN_CORE_ALLOC_H
#define RN_CORE_ALLOC_H

#include <stddef.h>

/* count x size bytes (at least one cache line), uninitialised; NULL when out of memory or when
 * the size overflows. */
void *rn_alloc_lines(size_t count, size_t size);
/* The same, zeroed. */
void *rn_alloc_lines_zero(size_t count, size_t size);

#endif
