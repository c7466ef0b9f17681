/* The machine's limits for bench/core.mjs, compiled there at run time with `cc -O2 -pthread`.
 *
 *   limits fma THREADS    peak float32 FMA GFLOP/s: each thread runs 12 independent chains of
 *                         fused multiply-adds (enough to cover the FMA latency on both pipes) with
 *                         AVX-512, AVX2 or scalar code chosen by __builtin_cpu_supports.
 *   limits triad THREADS  STREAM's triad a[i] = b[i] + s * c[i] over three arrays of 2^26 doubles
 *                         (1.5 GiB in all, past the largest L3s), counted as STREAM counts it: 24
 *                         bytes per element (no write-allocate traffic).
 *
 * Each prints one JSON line; the best of several repetitions.
 */
#include <immintrin.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec + t.tv_nsec * 1e-9;
}

/* ---- FMA peak ---- */

#define CHAINS 12
static long fma_iters = 4 * 1000 * 1000; /* about 10 ms a repetition: short, so the best of many finds a quiet moment */

/* The chains are named variables, spelled out by REP, so that -O2 keeps each in a register (a
 * loop over an array of accumulators would go through memory). */
#define REP(X) X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7) X(8) X(9) X(10) X(11)

__attribute__((target("avx512f"))) static float fma_avx512(long iters) {
  const __m512 m = _mm512_set1_ps(0.999999f), c = _mm512_set1_ps(1e-7f);
#define INIT(j) __m512 a##j = _mm512_set1_ps((float)j);
#define STEP(j) a##j = _mm512_fmadd_ps(a##j, m, c);
#define SUM(j) s = _mm512_add_ps(s, a##j);
  REP(INIT)
  for (long i = 0; i < iters; i++) { REP(STEP) }
  __m512 s = _mm512_setzero_ps();
  REP(SUM)
  return _mm512_reduce_add_ps(s);
#undef INIT
#undef STEP
#undef SUM
}

__attribute__((target("avx2,fma"))) static float fma_avx2(long iters) {
  const __m256 m = _mm256_set1_ps(0.999999f), c = _mm256_set1_ps(1e-7f);
#define INIT(j) __m256 a##j = _mm256_set1_ps((float)j);
#define STEP(j) a##j = _mm256_fmadd_ps(a##j, m, c);
#define SUM(j) s = _mm256_add_ps(s, a##j);
  REP(INIT)
  for (long i = 0; i < iters; i++) { REP(STEP) }
  __m256 s = _mm256_setzero_ps();
  REP(SUM)
  float out[8], r = 0;
  _mm256_storeu_ps(out, s);
  for (int j = 0; j < 8; j++) r += out[j];
  return r;
#undef INIT
#undef STEP
#undef SUM
}

static float fma_scalar(long iters) {
#define INIT(j) float a##j = (float)j;
#define STEP(j) a##j = a##j * 0.999999f + 1e-7f;
#define SUM(j) s += a##j;
  REP(INIT)
  for (long i = 0; i < iters; i++) { REP(STEP) }
  float s = 0;
  REP(SUM)
  return s;
#undef INIT
#undef STEP
#undef SUM
}

static int lanes;
static const char *isa;
static volatile float sink;

static void *fma_thread(void *arg) {
  (void)arg;
  float r = lanes == 16 ? fma_avx512(fma_iters) : lanes == 8 ? fma_avx2(fma_iters) : fma_scalar(fma_iters);
  sink += r; /* keeps the chains from being optimised away */
  return NULL;
}

/* ---- STREAM triad ---- */

#define TRIAD_N (1L << 26)
static double *a, *b, *c;
static int nthreads;

static void *triad_thread(void *arg) {
  long t = (long)arg, lo = TRIAD_N * t / nthreads, hi = TRIAD_N * (t + 1) / nthreads;
  const double s = 3.0;
  for (long i = lo; i < hi; i++) a[i] = b[i] + s * c[i];
  return NULL;
}

static void *init_thread(void *arg) {
  long t = (long)arg, lo = TRIAD_N * t / nthreads, hi = TRIAD_N * (t + 1) / nthreads;
  for (long i = lo; i < hi; i++) a[i] = 0, b[i] = 1, c[i] = 2; /* first touch by the thread that uses it */
  return NULL;
}

/* Seconds to run fn on nthreads threads, from the first start to the last join. */
static double run_threads(void *(*fn)(void *)) {
  pthread_t th[256];
  double t = now();
  for (long i = 0; i < nthreads; i++) pthread_create(&th[i], NULL, fn, (void *)i);
  for (int i = 0; i < nthreads; i++) pthread_join(th[i], NULL);
  return now() - t;
}

int main(int argc, char **argv) {
  if (argc != 3 || (strcmp(argv[1], "fma") && strcmp(argv[1], "triad"))) {
    fprintf(stderr, "usage: limits fma|triad THREADS\n");
    return 2;
  }
  nthreads = atoi(argv[2]);
  if (nthreads < 1 || nthreads > 256) {
    fprintf(stderr, "limits: THREADS must be 1..256; got %s\n", argv[2]);
    return 2;
  }
  double best = 1e30;
  if (!strcmp(argv[1], "fma")) {
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f")) lanes = 16, isa = "avx512";
    else if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) lanes = 8, isa = "avx2";
    else lanes = 1, isa = "scalar";
    if (lanes == 1) fma_iters /= 8;
    for (int r = 0; r < 30; r++) {
      double t = run_threads(fma_thread);
      if (t < best) best = t;
    }
    double flops = 2.0 * CHAINS * lanes * (double)fma_iters * nthreads;
    printf("{\"gflops\": %.1f, \"isa\": \"%s\", \"threads\": %d}\n", flops / best / 1e9, isa, nthreads);
  } else {
    a = malloc(TRIAD_N * sizeof(double)), b = malloc(TRIAD_N * sizeof(double)), c = malloc(TRIAD_N * sizeof(double));
    if (!a || !b || !c) {
      fprintf(stderr, "limits: out of memory for the triad's arrays\n");
      return 1;
    }
    run_threads(init_thread);
    for (int r = 0; r < 10; r++) {
      double t = run_threads(triad_thread);
      if (t < best) best = t;
    }
    printf("{\"gbs\": %.2f, \"threads\": %d, \"check\": %.1f}\n", 24.0 * TRIAD_N / best / 1e9, nthreads, a[TRIAD_N / 2]);
  }
  return 0;
}
