/* The matrix-multiply core shared by the convolution and fully connected kernels.
 *
 * C[m, n] (+)= A[m, k] * B[k, n], row-major C and A, and B described by offsets so that a
 * convolution can multiply by its im2col matrix without building it:
 *   rows mode:    B[p][j] = src[row_off[p] + j]      (a row of B is contiguous)
 *   columns mode: B[p][j] = src[col_off[j] + p]      (a column of B is contiguous)
 * B is packed in blocks of GEMM_KC x GEMM_NC into strips of GEMM_NR columns, and A in panels of
 * GEMM_MR rows, for a register-blocked microkernel chosen once at run time
 * (AVX-512 or AVX2 + FMA where the CPU has it, portable C elsewhere).
 *
 * Every element of C is summed over k in the same order whatever the number of threads and
 * however the work is split, so results are bit-identical for any thread count. */
#ifndef RN_KERNELS_GEMM_H
#define RN_KERNELS_GEMM_H

#include <stddef.h>

#define GEMM_MR 6
#define GEMM_NR 16
#define GEMM_KC 256
#define GEMM_NC 256
/* Floats of packing buffer one thread needs. */
#define GEMM_PACK_FLOATS ((size_t)GEMM_KC * (GEMM_NC + GEMM_MR))

typedef struct {
    const float *src;
    const int *row_off; /* k entries, or NULL */
    const int *col_off; /* n entries, or NULL */
} rn_gemm_b;

/* C (+)= A * B over the whole matrix. accumulate == 0 overwrites C. pack holds
 * threads * GEMM_PACK_FLOATS floats. threads > 1 opens a parallel region (call it from
 * outside one); threads == 1 runs in the calling thread. */
void rn_gemm(int m, int n, int k, const float *a, int lda, const rn_gemm_b *b, float *c,
             int ldc, int accumulate, float *pack, int threads);

/* The same with A packed beforehand by rn_gemm_pack_a (worth it when one A meets many B,
 * as a convolution's weights meet every image). threads > 1 splits the packing (call it from
 * outside a parallel region). */
size_t rn_gemm_packed_a_floats(int m, int k);
void rn_gemm_pack_a(float *dst, const float *a, int lda, int m, int k, int threads);
void rn_gemm_packed(int m, int n, int k, const float *ap, const rn_gemm_b *b, float *c, int ldc,
                    int accumulate, float *pack, int threads);

/* The same with A read in place, row i at a_src + a_off[i] (k contiguous floats), and B
 * always packed: for an A much larger than B that meets B once (a convolution's weight
 * gradient, transposed: A the shifted rows of the input, B the output gradient), where
 * packing A would cost as much as the multiply-adds it feeds. */
void rn_gemm_rows_a(int m, int n, int k, const float *a_src, const int *a_off, const rn_gemm_b *b,
                    float *c, int ldc, int accumulate, float *pack, int threads);
/* The same where the rows come in groups of nine, the taps of a 3x3 window on one plane of
 * width taps_ld: row 9g + 3ky + kx at a_off[9g] + ky * taps_ld + kx (m a multiple of 9). With
 * AVX-512 one microkernel call then covers a group's nine rows (nine accumulator chains and
 * three row pointers, where panels of six rows leave the FMA pipes waiting); the same bits as
 * rn_gemm_rows_a, which it falls back to elsewhere. */
void rn_gemm_taps_a(int m, int n, int k, const float *a_src, const int *a_off, int taps_ld,
                    const rn_gemm_b *b, float *c, int ldc, int accumulate, float *pack,
                    int threads);

/* Microkernel: C[mr, nr] (+)= A[mr, kc] * Bp, with A packed as kc groups of GEMM_MR floats
 * (column p of the rows side by side) and Bp a packed strip (kc rows of GEMM_NR floats).
 * mr <= GEMM_MR, nr <= GEMM_NR. */
typedef void (*rn_gemm_ukernel)(int kc, const float *ap, const float *bp, float *c,
                                int ldc, int mr, int nr, int accumulate);
void rn_gemm_ukernel_generic(int kc, const float *ap, const float *bp, float *c, int ldc,
                             int mr, int nr, int accumulate);
/* Microkernel on a full strip of B read in place in rows mode: row p of the strip at
 * src + off[p] (GEMM_NR floats). */
typedef void (*rn_gemm_ukernel_rows)(int kc, const float *ap, const float *src, const int *off,
                                     float *c, int ldc, int mr, int accumulate);
void rn_gemm_ukernel_rows_generic(int kc, const float *ap, const float *src, const int *off,
                                  float *c, int ldc, int mr, int accumulate);
void rn_gemm_ukernel_rows_avx2(int kc, const float *ap, const float *src, const int *off, float *c,
                               int ldc, int mr, int accumulate);
/* Microkernel with row i of A read in place from arow[i] (kc floats); Bp as above. */
typedef void (*rn_gemm_ukernel_arows)(int kc, const float *const *arow, const float *bp, float *c,
                                      int ldc, int mr, int nr, int accumulate);
void rn_gemm_ukernel_arows_generic(int kc, const float *const *arow, const float *bp, float *c,
                                   int ldc, int mr, int nr, int accumulate);
void rn_gemm_ukernel_arows_avx2(int kc, const float *const *arow, const float *bp, float *c,
                                int ldc, int mr, int nr, int accumulate);
/* Packs one full strip in columns mode (off: its GEMM_NR column offsets). */
void rn_gemm_pack_cols_avx2(float *dst, const float *src, const int *off, int k0, int kc);
void rn_gemm_ukernel_avx2(int kc, const float *ap, const float *bp, float *c, int ldc,
                          int mr, int nr, int accumulate);
/* Two full strips of B side by side (C[mr, 2 * GEMM_NR]): packed, the second strip right after
 * the first (bp + kc * GEMM_NR); rows mode, the second GEMM_NR floats after the first in each
 * row; A packed or in place. The bits of two calls of the one-strip kernels. AVX-512 only
 * (NULL in the driver's table elsewhere). */
typedef void (*rn_gemm_ukernel2)(int kc, const float *ap, const float *bp, float *c, int ldc,
                                 int mr, int accumulate);
typedef void (*rn_gemm_ukernel2_rows)(int kc, const float *ap, const float *src, const int *off,
                                      float *c, int ldc, int mr, int accumulate);
typedef void (*rn_gemm_ukernel2_arows)(int kc, const float *const *arow, const float *bp,
                                       float *c, int ldc, int mr, int accumulate);
void rn_gemm_ukernel2_avx512(int kc, const float *ap, const float *bp, float *c, int ldc, int mr,
                             int accumulate);
void rn_gemm_ukernel2_rows_avx512(int kc, const float *ap, const float *src, const int *off,
                                  float *c, int ldc, int mr, int accumulate);
void rn_gemm_ukernel2_arows_avx512(int kc, const float *const *arow, const float *bp, float *c,
                                   int ldc, int mr, int accumulate);
/* Nine rows of A in place, the taps of a 3x3 window: row 3ky + kx at a + ky * ld + kx (kc
 * floats), on one or two full strips of B (packed; the second at bp + kc * GEMM_NR): C[9,
 * 16 * strips]. The bits of the one-strip kernels on the same rows. AVX-512 only. */
typedef void (*rn_gemm_ukernel_taps)(int kc, const float *a, int ld, const float *bp, float *c,
                                     int ldc, int strips, int accumulate);
void rn_gemm_ukernel_taps_avx512(int kc, const float *a, int ld, const float *bp, float *c,
                                 int ldc, int strips, int accumulate);
/* The same three microkernels with AVX-512F, bit-identical to the AVX2 ones. */
void rn_gemm_ukernel_avx512(int kc, const float *ap, const float *bp, float *c, int ldc,
                            int mr, int nr, int accumulate);
void rn_gemm_ukernel_rows_avx512(int kc, const float *ap, const float *src, const int *off,
                                 float *c, int ldc, int mr, int accumulate);
void rn_gemm_ukernel_arows_avx512(int kc, const float *const *arow, const float *bp, float *c,
                                  int ldc, int mr, int nr, int accumulate);

#endif
