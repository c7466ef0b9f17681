// @file Dense linear algebra on the gpu: cholesky, inv, solve, qr, eigh and svd with cpu/linalg.cc's
// algorithms and conventions (LU with partial pivoting, Householder QR with R's diagonal
// non-negative, cyclic Jacobi eigh, one-sided Jacobi svd, the same sign rules and orderings), one
// thread per matrix of the batch working in double in its own slice of a scratch buffer. Matrices
// of 32 rows or more take a block of threads each for cholesky, inv, solve and qr (a Team): the
// loops over independent elements are split among its threads, and each element is still computed
// by one thread in the one-thread order, so both give the same bits; the Jacobi sweeps of eigh and
// svd stay on one thread (each rotation depends on the one before). A singular or indefinite matrix
// is reported after the kernel (the op waits for the gpu) with the cpu's message, naming the first
// such batch entry.
#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "device.cuh"

namespace tessera::cuda {
namespace {

constexpr double kEps = 2.220446049250313e-16;  // DBL_EPSILON

// A matrix (core 2) or vector (core 1) operand: its batch axes' strides and its own.
struct MatRef {
  int nb = 0;
  int64_t shape[kMaxDims] = {}, st[kMaxDims] = {};
  int64_t rows = 1, cols = 0, rs = 0, cs = 0;
};

MatRef ref_of(const ArrayDesc& x, int core) {
  MatRef r;
  const int nd = x.ndim();
  r.nb = nd - core;
  if (r.nb > kMaxDims) throw std::runtime_error("linalg on device gpu: more than 8 batch axes (not ported yet)");
  for (int d = 0; d < r.nb; ++d) r.shape[d] = x.shape[d], r.st[d] = x.strides[d];
  r.rows = core == 2 ? x.shape[nd - 2] : 1;
  r.cols = x.shape[nd - 1];
  r.rs = core == 2 ? x.strides[nd - 2] : 0;
  r.cs = x.strides[nd - 1];
  return r;
}

// The threads working on one matrix: one thread, or a block. Loops over independent elements run
// `for (i = lo + t.rank; i < hi; i += t.size)`; a decision every thread needs (a pivot, a norm) is
// computed by each thread alike, so branches stay uniform across the block.
struct Team {
  int rank, size;
  __device__ void sync() const {
    if (size > 1) __syncthreads();
  }
};

__device__ int64_t batch_offset(const MatRef& r, int64_t b) {
  int64_t off = 0;
  for (int d = r.nb - 1; d >= 0; --d) off += (b % r.shape[d]) * r.st[d], b /= r.shape[d];
  return off;
}

// Loads and stores end with t.sync(), so the whole team sees the matrix.
template <class T>
__device__ void load(const T* p, const MatRef& r, int64_t b, double* m, const Team& t) {
  p += batch_offset(r, b);
  for (int64_t e = t.rank; e < r.rows * r.cols; e += t.size) m[e] = static_cast<double>(p[(e / r.cols) * r.rs + (e % r.cols) * r.cs]);
  t.sync();
}

template <class T>
__device__ void store(T* p, const MatRef& r, int64_t b, const double* m, const Team& t) {
  p += batch_offset(r, b);
  for (int64_t e = t.rank; e < r.rows * r.cols; e += t.size) p[(e / r.cols) * r.rs + (e % r.cols) * r.cs] = static_cast<T>(m[e]);
  t.sync();
}

// cholesky: L L^T = A from A's lower triangle; 0, or the failing leading minor (1-based).
__device__ int64_t cholesky_one(const double* a, int64_t n, double* l, const Team& t) {
  for (int64_t i = t.rank; i < n * n; i += t.size) l[i] = 0;
  t.sync();
  for (int64_t j = 0; j < n; ++j) {
    double d = a[j * n + j];  // (every thread alike: row j of l is final)
    for (int64_t k = 0; k < j; ++k) d -= l[j * n + k] * l[j * n + k];
    if (!(d > 0)) return j + 1;
    const double ljj = sqrt(d);
    if (t.rank == 0) l[j * n + j] = ljj;
    for (int64_t i = j + 1 + t.rank; i < n; i += t.size) {
      double s = a[i * n + j];
      for (int64_t k = 0; k < j; ++k) s -= l[i * n + k] * l[j * n + k];
      l[i * n + j] = s / ljj;
    }
    t.sync();
  }
  return 0;
}

// PA = LU in place; 0, or the zero pivot (1-based).
__device__ int64_t lu_factor(double* a, int64_t n, int64_t* piv, const Team& t) {
  for (int64_t j = 0; j < n; ++j) {
    int64_t p = j;  // (every thread alike: the first largest magnitude, as one thread finds it)
    for (int64_t i = j + 1; i < n; ++i)
      if (fabs(a[i * n + j]) > fabs(a[p * n + j])) p = i;
    if (t.rank == 0) piv[j] = p;
    if (!(a[p * n + j] != 0)) return j + 1;
    t.sync();  // column j read by all before rows move
    if (p != j)
      for (int64_t k = t.rank; k < n; k += t.size) {
        const double x = a[j * n + k];
        a[j * n + k] = a[p * n + k], a[p * n + k] = x;
      }
    t.sync();
    const double inv = 1.0 / a[j * n + j];
    for (int64_t i = j + 1 + t.rank; i < n; i += t.size) a[i * n + j] *= inv;
    t.sync();
    const int64_t w = n - j - 1;  // the trailing block, element by element
    for (int64_t e = t.rank; e < w * w; e += t.size) {
      const int64_t i = j + 1 + e / w, k = j + 1 + e % w;
      const double f = a[i * n + j];
      if (f != 0) a[i * n + k] -= f * a[j * n + k];
    }
    t.sync();
  }
  return 0;
}

// x (n x k) <- A^-1 x from PA = LU; each thread takes whole columns of x.
__device__ void lu_solve(const double* lu, int64_t n, const int64_t* piv, double* x, int64_t k, const Team& t) {
  for (int64_t c = t.rank; c < k; c += t.size) {
    for (int64_t j = 0; j < n; ++j)
      if (piv[j] != j) {
        const double y = x[j * k + c];
        x[j * k + c] = x[piv[j] * k + c], x[piv[j] * k + c] = y;
      }
    for (int64_t i = 0; i < n; ++i)
      for (int64_t j = 0; j < i; ++j) {
        const double f = lu[i * n + j];
        if (f != 0) x[i * k + c] -= f * x[j * k + c];
      }
    for (int64_t i = n - 1; i >= 0; --i) {
      for (int64_t j = i + 1; j < n; ++j) {
        const double f = lu[i * n + j];
        if (f != 0) x[i * k + c] -= f * x[j * k + c];
      }
      x[i * k + c] *= 1.0 / lu[i * n + i];
    }
  }
  t.sync();
}

// Householder QR, reduced: r (m x n) is overwritten; vs holds kk vectors of m (used[j] says
// whether H_j is a reflection); q m x kk, ro kk x n. Reflections are applied a column per thread.
__device__ void qr_one(double* r, int64_t m, int64_t n, double* vs, int64_t* used, double* q, double* ro, const Team& t) {
  const int64_t kk = m < n ? m : n;
  for (int64_t j = 0; j < kk; ++j) {
    double norm2 = 0;  // (every thread alike)
    for (int64_t i = j; i < m; ++i) norm2 += r[i * n + j] * r[i * n + j];
    const double norm = sqrt(norm2);
    double* v = vs + j * m;
    if (t.rank == 0) used[j] = norm != 0;
    if (norm == 0) continue;
    const double x0 = r[j * n + j];
    const double alpha = x0 >= 0 ? -norm : norm;
    for (int64_t i = j + t.rank; i < m; i += t.size) v[i - j] = i == j ? r[i * n + j] - alpha : r[i * n + j];
    t.sync();
    double vn = 0;  // (every thread alike)
    for (int64_t i = 0; i < m - j; ++i) vn += v[i] * v[i];
    vn = sqrt(vn);
    t.sync();  // v read by all before it is scaled
    for (int64_t i = t.rank; i < m - j; i += t.size) v[i] /= vn;
    t.sync();
    for (int64_t c = j + t.rank; c < n; c += t.size) {
      double s = 0;
      for (int64_t i = j; i < m; ++i) s += v[i - j] * r[i * n + c];
      s *= 2;
      for (int64_t i = j; i < m; ++i) r[i * n + c] -= s * v[i - j];
    }
    t.sync();
  }
  for (int64_t e = t.rank; e < m * kk; e += t.size) q[e] = e / kk == e % kk ? 1 : 0;
  t.sync();
  for (int64_t j = kk - 1; j >= 0; --j) {
    if (!used[j]) continue;
    const double* v = vs + j * m;
    for (int64_t c = t.rank; c < kk; c += t.size) {
      double s = 0;
      for (int64_t i = j; i < m; ++i) s += v[i - j] * q[i * kk + c];
      s *= 2;
      for (int64_t i = j; i < m; ++i) q[i * kk + c] -= s * v[i - j];
    }
    t.sync();
  }
  for (int64_t e = t.rank; e < kk * n; e += t.size) ro[e] = 0;
  t.sync();
  for (int64_t i = t.rank; i < kk; i += t.size) {
    const double sign = r[i * n + i] < 0 ? -1.0 : 1.0;
    for (int64_t c = i; c < n; ++c) ro[i * n + c] = sign * r[i * n + c];
    if (sign < 0)
      for (int64_t row = 0; row < m; ++row) q[row * kk + i] = -q[row * kk + i];
  }
  t.sync();
}

// Flips column j of x (rows x cols) so its largest-magnitude entry is positive; returns the sign.
__device__ double canonical_sign(double* x, int64_t rows, int64_t cols, int64_t j) {
  int64_t best = 0;
  for (int64_t i = 1; i < rows; ++i)
    if (fabs(x[i * cols + j]) > fabs(x[best * cols + j])) best = i;
  if (x[best * cols + j] >= 0) return 1.0;
  for (int64_t i = 0; i < rows; ++i) x[i * cols + j] = -x[i * cols + j];
  return -1.0;
}

// order[0, n) sorted stably by key (ascending, or descending when desc).
__device__ void stable_order(const double* key, int64_t stride, int64_t n, bool desc, int64_t* order) {
  for (int64_t i = 0; i < n; ++i) {
    int64_t j = i;
    while (j > 0 && (desc ? key[i * stride] > key[order[j - 1] * stride] : key[i * stride] < key[order[j - 1] * stride])) {
      order[j] = order[j - 1];
      --j;
    }
    order[j] = i;
  }
}

// eigh: cyclic Jacobi on the symmetric matrix of in's lower triangle; a, v scratch (n x n).
__device__ void eigh_one(const double* in, int64_t n, double* a, double* v, int64_t* order, double* w_out, double* v_out) {
  double fro = 0;
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j <= i; ++j) {
      a[i * n + j] = a[j * n + i] = in[i * n + j];
      fro += (i == j ? 1 : 2) * in[i * n + j] * in[i * n + j];
    }
  fro = sqrt(fro);
  for (int64_t i = 0; i < n * n; ++i) v[i] = 0;
  for (int64_t i = 0; i < n; ++i) v[i * n + i] = 1;
  const double floor = fro * kEps * 1e-3;
  for (int sweep = 0; sweep < 100; ++sweep) {
    bool rotated = false;
    for (int64_t p = 0; p < n; ++p)
      for (int64_t q = p + 1; q < n; ++q) {
        const double apq = a[p * n + q], app = a[p * n + p], aqq = a[q * n + q];
        if (fabs(apq) <= floor || fabs(apq) <= kEps * 0.5 * sqrt(fabs(app) * fabs(aqq))) {
          if (fabs(apq) <= floor) a[p * n + q] = a[q * n + p] = 0;
          continue;
        }
        rotated = true;
        const double theta = (aqq - app) / (2 * apq);
        const double t = (theta >= 0 ? 1.0 : -1.0) / (fabs(theta) + sqrt(theta * theta + 1));
        const double c = 1 / sqrt(t * t + 1), s = t * c;
        for (int64_t k = 0; k < n; ++k) {
          const double akp = a[k * n + p], akq = a[k * n + q];
          a[k * n + p] = c * akp - s * akq;
          a[k * n + q] = s * akp + c * akq;
        }
        for (int64_t k = 0; k < n; ++k) {
          const double apk = a[p * n + k], aqk = a[q * n + k];
          a[p * n + k] = c * apk - s * aqk;
          a[q * n + k] = s * apk + c * aqk;
        }
        a[p * n + q] = a[q * n + p] = 0;
        for (int64_t k = 0; k < n; ++k) {
          const double vkp = v[k * n + p], vkq = v[k * n + q];
          v[k * n + p] = c * vkp - s * vkq;
          v[k * n + q] = s * vkp + c * vkq;
        }
      }
    if (!rotated) break;
  }
  stable_order(a, n + 1, n, false, order);
  for (int64_t j = 0; j < n; ++j) {
    w_out[j] = a[order[j] * n + order[j]];
    for (int64_t i = 0; i < n; ++i) v_out[i * n + j] = v[i * n + order[j]];
    canonical_sign(v_out, n, n, j);
  }
}

// svd of a tall a (m >= n) by one-sided Jacobi: w (m x n), v (n x n), sig (n) scratch; u m x n,
// s n, vt n x n.
__device__ void svd_tall(const double* a, int64_t m, int64_t n, double* w, double* v, double* sig, int64_t* order, double* u,
                         double* s, double* vt) {
  for (int64_t i = 0; i < m * n; ++i) w[i] = a[i];
  for (int64_t i = 0; i < n * n; ++i) v[i] = 0;
  for (int64_t i = 0; i < n; ++i) v[i * n + i] = 1;
  for (int sweep = 0; sweep < 100; ++sweep) {
    bool rotated = false;
    for (int64_t p = 0; p < n; ++p)
      for (int64_t q = p + 1; q < n; ++q) {
        double alpha = 0, beta = 0, gamma = 0;
        for (int64_t i = 0; i < m; ++i) {
          const double wp = w[i * n + p], wq = w[i * n + q];
          alpha += wp * wp, beta += wq * wq, gamma += wp * wq;
        }
        if (gamma == 0 || fabs(gamma) <= kEps * sqrt(alpha) * sqrt(beta)) continue;
        rotated = true;
        const double zeta = (beta - alpha) / (2 * gamma);
        const double t = (zeta >= 0 ? 1.0 : -1.0) / (fabs(zeta) + sqrt(1 + zeta * zeta));
        const double c = 1 / sqrt(1 + t * t), sn = c * t;
        for (int64_t i = 0; i < m; ++i) {
          const double wp = w[i * n + p], wq = w[i * n + q];
          w[i * n + p] = c * wp - sn * wq;
          w[i * n + q] = sn * wp + c * wq;
        }
        for (int64_t i = 0; i < n; ++i) {
          const double vp = v[i * n + p], vq = v[i * n + q];
          v[i * n + p] = c * vp - sn * vq;
          v[i * n + q] = sn * vp + c * vq;
        }
      }
    if (!rotated) break;
  }
  for (int64_t j = 0; j < n; ++j) {
    double s2 = 0;
    for (int64_t i = 0; i < m; ++i) s2 += w[i * n + j] * w[i * n + j];
    sig[j] = sqrt(s2);
  }
  stable_order(sig, 1, n, true, order);
  for (int64_t i = 0; i < m * n; ++i) u[i] = 0;
  const double tiny = (n > 0 ? sig[order[0]] : 0) * kEps * static_cast<double>(m > n ? m : n);
  int64_t next_basis = 0;
  for (int64_t j = 0; j < n; ++j) {
    const int64_t src = order[j];
    s[j] = sig[src];
    for (int64_t i = 0; i < n; ++i) vt[j * n + i] = v[i * n + src];
    if (sig[src] > 0)
      for (int64_t i = 0; i < m; ++i) u[i * n + j] = w[i * n + src] / sig[src];
    if (sig[src] <= tiny) {
      // A null direction: orthonormal to the columns before it (Gram-Schmidt twice), from its own
      // direction, else from the next unit vector that survives.
      for (int attempt = 0;; ++attempt) {
        if (attempt > 0 || sig[src] == 0) {
          if (next_basis >= m) break;
          for (int64_t i = 0; i < m; ++i) u[i * n + j] = i == next_basis ? 1.0 : 0.0;
          ++next_basis;
        }
        for (int pass = 0; pass < 2; ++pass)
          for (int64_t c = 0; c < j; ++c) {
            double d = 0;
            for (int64_t i = 0; i < m; ++i) d += u[i * n + c] * u[i * n + j];
            for (int64_t i = 0; i < m; ++i) u[i * n + j] -= d * u[i * n + c];
          }
        double nn = 0;
        for (int64_t i = 0; i < m; ++i) nn += u[i * n + j] * u[i * n + j];
        nn = sqrt(nn);
        if (nn > 0.5) {
          for (int64_t i = 0; i < m; ++i) u[i * n + j] /= nn;
          break;
        }
      }
    }
    if (canonical_sign(u, m, n, j) < 0)
      for (int64_t i = 0; i < n; ++i) vt[j * n + i] = -vt[j * n + i];
  }
}

__device__ void transpose_into(const double* x, int64_t rows, int64_t cols, double* t) {
  for (int64_t i = 0; i < rows; ++i)
    for (int64_t j = 0; j < cols; ++j) t[j * rows + i] = x[i * cols + j];
}

struct Job {
  Op op;
  int64_t count = 0, m = 0, n = 0, k = 0, dstride = 0, istride = 0;
  MatRef in0, in1, out0, out1, out2;
};

// Batch entry b of the job, by team t (one thread, or a block for cholesky, inv, solve and qr).
template <class T>
__device__ void one_matrix(const Job& job, const Team& t, int64_t b, const T* x, const T* rhs, T* o0, T* o1, T* o2, double* dwork,
                           int64_t* iwork, int64_t* errors) {
  const int64_t m = job.m, n = job.n, P = m > n ? m : n;
  double* d = dwork + b * job.dstride;
  int64_t* iw = iwork + b * job.istride;
  double* a = d;  // m x n
  double* s1 = a + P * P;
  double* s2 = s1 + P * P;
  double* s3 = s2 + P * P;
  double* s4 = s3 + P * P;
  double* s5 = s4 + P * P;
  double* s6 = s5 + P * P;
  double* vec = s6 + P * P;  // 4 P
  load(x, job.in0, b, a, t);
  int64_t err = 0;
  switch (job.op) {
    case Op::Cholesky:
      err = cholesky_one(a, n, s1, t);
      if (!err) store(o0, job.out0, b, s1, t);
      break;
    case Op::Inv:
      err = lu_factor(a, n, iw, t);
      if (err) break;
      for (int64_t e = t.rank; e < n * n; e += t.size) s1[e] = e / n == e % n ? 1 : 0;
      t.sync();
      lu_solve(a, n, iw, s1, n, t);
      store(o0, job.out0, b, s1, t);
      break;
    case Op::Solve: {
      double* y = vec + 4 * P;  // n x k
      load(rhs, job.in1, b, y, t);
      err = lu_factor(a, n, iw, t);
      if (err) break;
      lu_solve(a, n, iw, y, job.k, t);
      store(o0, job.out0, b, y, t);
      break;
    }
    case Op::Qr:
      qr_one(a, m, n, s1, iw, s2, s3, t);
      store(o0, job.out0, b, s2, t), store(o1, job.out1, b, s3, t);
      break;
    case Op::Eigh:  // (one thread only: see the file's comment)
      eigh_one(a, n, s1, s2, iw, vec, s3);
      store(o0, job.out0, b, vec, t), store(o1, job.out1, b, s3, t);
      break;
    case Op::Svd:
      if (m >= n) {
        svd_tall(a, m, n, s1, s2, vec, iw, s3, vec + P, s4);
        store(o0, job.out0, b, s3, t), store(o1, job.out1, b, vec + P, t), store(o2, job.out2, b, s4, t);
      } else {
        // A^T = U' S V'^T, so A = V' S U'^T: U = V', Vt = U'^T; U's columns take the sign rule.
        transpose_into(a, m, n, s5);
        svd_tall(s5, n, m, s1, s2, vec, iw, s3, vec + P, s4);  // u2 n x m (s3), vt2 m x m (s4)
        transpose_into(s4, m, m, s6);                          // u m x m
        transpose_into(s3, n, m, s5);                          // vt m x n
        for (int64_t j = 0; j < m; ++j)
          if (canonical_sign(s6, m, m, j) < 0)
            for (int64_t i = 0; i < n; ++i) s5[j * n + i] = -s5[j * n + i];
        store(o0, job.out0, b, s6, t), store(o1, job.out1, b, vec + P, t), store(o2, job.out2, b, s5, t);
      }
      break;
    default:
      break;
  }
  if (t.rank == 0) errors[b] = err;
}

// A thread per batch entry.
template <class T>
__global__ void __launch_bounds__(64) linalg_kernel(Job job, const T* x, const T* rhs, T* o0, T* o1, T* o2, double* dwork,
                                                    int64_t* iwork, int64_t* errors) {
  const int64_t tid = blockIdx.x * int64_t(blockDim.x) + threadIdx.x, step = int64_t(gridDim.x) * blockDim.x;
  const Team one{0, 1};
  for (int64_t b = tid; b < job.count; b += step) one_matrix(job, one, b, x, rhs, o0, o1, o2, dwork, iwork, errors);
}

// A block per batch entry (cholesky, inv, solve, qr of matrices of kTeamRows rows or more).
constexpr int kTeamThreads = 256;
constexpr int64_t kTeamRows = 32;
template <class T>
__global__ void __launch_bounds__(kTeamThreads) linalg_team_kernel(Job job, const T* x, const T* rhs, T* o0, T* o1, T* o2,
                                                                   double* dwork, int64_t* iwork, int64_t* errors) {
  const Team t{static_cast<int>(threadIdx.x), static_cast<int>(blockDim.x)};
  for (int64_t b = blockIdx.x; b < job.count; b += gridDim.x) one_matrix(job, t, b, x, rhs, o0, o1, o2, dwork, iwork, errors);
}

template <class T>
void run_typed(const Context& c, const Instr& instr, const Inputs& in, const Outputs& outs) {
  const ArrayDesc& a = *in.at(0);
  const int nd = a.ndim();
  Job job;
  job.op = instr.op;
  job.m = a.shape[nd - 2], job.n = a.shape[nd - 1];
  job.count = 1;
  for (int d = 0; d < nd - 2; ++d) job.count *= a.shape[d];
  if (job.count == 0) return;
  const int64_t P = std::max(job.m, job.n);
  job.in0 = ref_of(a, 2);
  const T* rhs = nullptr;
  if (instr.op == Op::Solve) {
    job.in1 = ref_of(*in.at(1), 2);
    job.k = in[1]->shape[in[1]->ndim() - 1];
    rhs = in[1]->data<T>();
  }
  const bool vec1 = instr.op == Op::Eigh || instr.op == Op::Svd;  // output 0 (eigh) or 1 (svd) is a vector
  job.out0 = ref_of(*outs[0], instr.op == Op::Eigh ? 1 : 2);
  if (outs.size() > 1) job.out1 = ref_of(*outs[1], vec1 && instr.op == Op::Svd ? 1 : 2);
  if (outs.size() > 2) job.out2 = ref_of(*outs[2], 2);
  job.dstride = 7 * P * P + 4 * P + P * std::max<int64_t>(job.k, 1);
  job.istride = std::max<int64_t>(P, 1);
  auto dwork = c.allocator->allocate(std::max<int64_t>(1, job.count * job.dstride) * sizeof(double));
  auto iwork = c.allocator->allocate(std::max<int64_t>(1, job.count * job.istride) * sizeof(int64_t));
  auto errors = c.allocator->allocate(job.count * sizeof(int64_t));
  T* o[3] = {nullptr, nullptr, nullptr};
  for (size_t i = 0; i < outs.size() && i < 3; ++i) o[i] = outs[i]->data<T>();
  auto* dw = static_cast<double*>(dwork->data);
  auto* iw = static_cast<int64_t*>(iwork->data);
  auto* errs = static_cast<int64_t*>(errors->data);
  const bool team = P >= kTeamRows && instr.op != Op::Eigh && instr.op != Op::Svd;
  if (team) {
    const int blocks = static_cast<int>(std::min<int64_t>(job.count, int64_t(c.num_sms) * 8));
    linalg_team_kernel<T><<<blocks, kTeamThreads, 0, c.stream>>>(job, a.data<T>(), rhs, o[0], o[1], o[2], dw, iw, errs);
  } else {
    const int blocks = static_cast<int>(std::min<int64_t>((job.count + 63) / 64, int64_t(c.num_sms) * 32));
    linalg_kernel<T><<<blocks, 64, 0, c.stream>>>(job, a.data<T>(), rhs, o[0], o[1], o[2], dw, iw, errs);
  }
  const char* name = op_name(static_cast<int32_t>(instr.op));
  check_launch(name);
  if (instr.op != Op::Cholesky && instr.op != Op::Inv && instr.op != Op::Solve) return;
  // The cpu's errors: wait for the kernel and name the first failing batch entry.
  std::vector<int64_t> err(static_cast<size_t>(job.count));
  check(cudaMemcpyAsync(err.data(), errors->data, job.count * sizeof(int64_t), cudaMemcpyDeviceToHost, c.stream), name);
  check(cudaStreamSynchronize(c.stream), name);
  for (int64_t b = 0; b < job.count; ++b) {
    if (!err[b]) continue;
    const std::string entry = job.count > 1 ? " (batch entry " + std::to_string(b) + ")" : "";
    if (instr.op == Op::Cholesky)
      throw std::runtime_error("the matrix is not positive definite (leading minor " + std::to_string(err[b]) + " is not positive)" + entry);
    throw std::runtime_error("the matrix is singular (pivot " + std::to_string(err[b]) + " is zero)" + entry);
  }
}

}  // namespace

void linalg(const Context& c, const Instr& instr, const Inputs& in, const Outputs& outs) {
  switch (in.at(0)->dtype) {
    case DType::F32: return run_typed<float>(c, instr, in, outs);
    case DType::F64: return run_typed<double>(c, instr, in, outs);
    default: not_ported(op_name(static_cast<int32_t>(instr.op)), in.at(0)->dtype);
  }
}

}  // namespace tessera::cuda
