// @file Dense linear algebra on the last two axes, batched over the leading ones: cholesky (lower),
// inv and solve (LU with partial pivoting), qr (Householder, reduced), eigh (cyclic Jacobi) and
// svd (one-sided Jacobi, reduced). Each matrix is loaded into a row-major double buffer, so
// float32 inputs are computed in double and rounded once at the store. Batch entries run on the
// thread pool. Sign conventions (what makes the factors unique, and smooth for the derivative
// rules): R has a non-negative diagonal; each eigenvector and each column of U has its
// largest-magnitude entry positive (the first such entry on ties), with Vt's row following U.
#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <stdexcept>
#include <string>
#include <vector>

#include "kernels.h"
#include "threads.h"

namespace tessera::cpu {
namespace {

constexpr double kEps = std::numeric_limits<double>::epsilon();
using Mat = std::vector<double>;  // row-major

// The element offset of matrix `b` of x (x's leading axes, row-major).
int64_t batch_offset(const ArrayDesc& x, int lead, int64_t b) {
  int64_t off = x.offset;
  for (int d = lead - 1; d >= 0; --d) {
    off += (b % x.shape[d]) * x.strides[d];
    b /= x.shape[d];
  }
  return off;
}

int64_t batch_count(const ArrayDesc& x, int lead) {
  int64_t n = 1;
  for (int d = 0; d < lead; ++d) n *= x.shape[d];
  return n;
}

// Reads matrix b of x (its last `core` axes: 2 for a matrix, 1 for a vector) as doubles.
template <class T>
Mat load(const ArrayDesc& x, int core, int64_t b) {
  const int nd = x.ndim(), lead = nd - core;
  const int64_t rows = core == 2 ? x.shape[nd - 2] : 1, cols = x.shape[nd - 1];
  const int64_t rs = core == 2 ? x.strides[nd - 2] : 0, cs = x.strides[nd - 1];
  const T* p = static_cast<const T*>(x.storage->data) + batch_offset(x, lead, b);
  Mat m(static_cast<size_t>(rows * cols));
  for (int64_t i = 0; i < rows; ++i)
    for (int64_t j = 0; j < cols; ++j) m[i * cols + j] = static_cast<double>(p[i * rs + j * cs]);
  return m;
}

// Writes a row-major buffer into matrix (or vector) b of out, rounding once to T.
template <class T>
void store(const ArrayDesc& out, int core, int64_t b, const Mat& m) {
  const int nd = out.ndim(), lead = nd - core;
  const int64_t rows = core == 2 ? out.shape[nd - 2] : 1, cols = out.shape[nd - 1];
  const int64_t rs = core == 2 ? out.strides[nd - 2] : 0, cs = out.strides[nd - 1];
  T* p = static_cast<T*>(out.storage->data) + batch_offset(out, lead, b);
  for (int64_t i = 0; i < rows; ++i)
    for (int64_t j = 0; j < cols; ++j) p[i * rs + j * cs] = static_cast<T>(m[i * cols + j]);
}

std::string entry(int64_t b, int64_t count) {
  return count > 1 ? " (batch entry " + std::to_string(b) + ")" : "";
}

// ---- cholesky: A = L L^T from A's lower triangle ----
Mat cholesky_one(const Mat& a, int64_t n, int64_t b, int64_t count) {
  Mat l(static_cast<size_t>(n * n), 0.0);
  for (int64_t j = 0; j < n; ++j) {
    double d = a[j * n + j];
    for (int64_t k = 0; k < j; ++k) d -= l[j * n + k] * l[j * n + k];
    if (!(d > 0))
      throw std::runtime_error("the matrix is not positive definite (leading minor " + std::to_string(j + 1) + " is not positive)" + entry(b, count));
    const double ljj = std::sqrt(d);
    l[j * n + j] = ljj;
    for (int64_t i = j + 1; i < n; ++i) {
      double s = a[i * n + j];
      for (int64_t k = 0; k < j; ++k) s -= l[i * n + k] * l[j * n + k];
      l[i * n + j] = s / ljj;
    }
  }
  return l;
}

// ---- LU with partial pivoting: PA = LU in place; throws on an exactly zero pivot ----
void lu_factor(Mat& a, int64_t n, std::vector<int64_t>& piv, int64_t b, int64_t count) {
  piv.resize(static_cast<size_t>(n));
  for (int64_t j = 0; j < n; ++j) {
    int64_t p = j;
    for (int64_t i = j + 1; i < n; ++i)
      if (std::abs(a[i * n + j]) > std::abs(a[p * n + j])) p = i;
    piv[j] = p;
    if (!(a[p * n + j] != 0))  // also NaN
      throw std::runtime_error("the matrix is singular (pivot " + std::to_string(j + 1) + " is zero)" + entry(b, count));
    if (p != j)
      for (int64_t k = 0; k < n; ++k) std::swap(a[j * n + k], a[p * n + k]);
    const double inv = 1.0 / a[j * n + j];
    for (int64_t i = j + 1; i < n; ++i) {
      const double f = a[i * n + j] *= inv;
      if (f == 0) continue;
      for (int64_t k = j + 1; k < n; ++k) a[i * n + k] -= f * a[j * n + k];
    }
  }
}

// Solves A X = B (B n x k, row-major, overwritten) given lu_factor's output.
void lu_solve(const Mat& lu, int64_t n, const std::vector<int64_t>& piv, Mat& x, int64_t k) {
  for (int64_t j = 0; j < n; ++j)
    if (piv[j] != j)
      for (int64_t c = 0; c < k; ++c) std::swap(x[j * k + c], x[piv[j] * k + c]);
  for (int64_t i = 0; i < n; ++i)  // L y = P b (unit diagonal)
    for (int64_t j = 0; j < i; ++j) {
      const double f = lu[i * n + j];
      if (f != 0)
        for (int64_t c = 0; c < k; ++c) x[i * k + c] -= f * x[j * k + c];
    }
  for (int64_t i = n - 1; i >= 0; --i) {  // U x = y
    for (int64_t j = i + 1; j < n; ++j) {
      const double f = lu[i * n + j];
      if (f != 0)
        for (int64_t c = 0; c < k; ++c) x[i * k + c] -= f * x[j * k + c];
    }
    const double inv = 1.0 / lu[i * n + i];
    for (int64_t c = 0; c < k; ++c) x[i * k + c] *= inv;
  }
}

// ---- Householder QR, reduced: Q m x kk, R kk x n (kk = min(m, n)), diag(R) >= 0 ----
void qr_one(Mat r, int64_t m, int64_t n, Mat& q_out, Mat& r_out) {
  const int64_t kk = std::min(m, n);
  std::vector<Mat> vs(static_cast<size_t>(kk));
  for (int64_t j = 0; j < kk; ++j) {
    double norm2 = 0;
    for (int64_t i = j; i < m; ++i) norm2 += r[i * n + j] * r[i * n + j];
    const double norm = std::sqrt(norm2);
    Mat& v = vs[j];
    if (norm == 0) continue;  // the column is already zero below the diagonal: H = I
    const double x0 = r[j * n + j];
    const double alpha = x0 >= 0 ? -norm : norm;
    v.assign(static_cast<size_t>(m - j), 0.0);
    for (int64_t i = j; i < m; ++i) v[i - j] = r[i * n + j];
    v[0] -= alpha;
    double vn = 0;
    for (double e : v) vn += e * e;
    vn = std::sqrt(vn);
    for (double& e : v) e /= vn;
    for (int64_t c = j; c < n; ++c) {  // R <- (I - 2 v v^T) R
      double s = 0;
      for (int64_t i = j; i < m; ++i) s += v[i - j] * r[i * n + c];
      s *= 2;
      for (int64_t i = j; i < m; ++i) r[i * n + c] -= s * v[i - j];
    }
  }
  q_out.assign(static_cast<size_t>(m * kk), 0.0);
  for (int64_t i = 0; i < kk; ++i) q_out[i * kk + i] = 1;
  for (int64_t j = kk - 1; j >= 0; --j) {  // Q = H_0 ... H_{kk-1} I[:, :kk]
    const Mat& v = vs[j];
    if (v.empty()) continue;
    for (int64_t c = 0; c < kk; ++c) {
      double s = 0;
      for (int64_t i = j; i < m; ++i) s += v[i - j] * q_out[i * kk + c];
      s *= 2;
      for (int64_t i = j; i < m; ++i) q_out[i * kk + c] -= s * v[i - j];
    }
  }
  r_out.assign(static_cast<size_t>(kk * n), 0.0);
  for (int64_t i = 0; i < kk; ++i) {
    const double sign = r[i * n + i] < 0 ? -1.0 : 1.0;
    for (int64_t c = i; c < n; ++c) r_out[i * n + c] = sign * r[i * n + c];
    if (sign < 0)
      for (int64_t row = 0; row < m; ++row) q_out[row * kk + i] = -q_out[row * kk + i];
  }
}

// Flips column j of x (rows x cols) so its largest-magnitude entry is positive; returns the sign used.
double canonical_sign(Mat& x, int64_t rows, int64_t cols, int64_t j) {
  int64_t best = 0;
  for (int64_t i = 1; i < rows; ++i)
    if (std::abs(x[i * cols + j]) > std::abs(x[best * cols + j])) best = i;
  if (x[best * cols + j] >= 0) return 1.0;
  for (int64_t i = 0; i < rows; ++i) x[i * cols + j] = -x[i * cols + j];
  return -1.0;
}

// ---- eigh: cyclic Jacobi on the symmetric matrix of A's lower triangle ----
void eigh_one(const Mat& in, int64_t n, Mat& w_out, Mat& v_out) {
  Mat a(static_cast<size_t>(n * n));
  double fro = 0;
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j <= i; ++j) {
      a[i * n + j] = a[j * n + i] = in[i * n + j];
      fro += (i == j ? 1 : 2) * in[i * n + j] * in[i * n + j];
    }
  fro = std::sqrt(fro);
  Mat v(static_cast<size_t>(n * n), 0.0);
  for (int64_t i = 0; i < n; ++i) v[i * n + i] = 1;
  const double floor = fro * kEps * 1e-3;
  for (int sweep = 0; sweep < 100; ++sweep) {
    bool rotated = false;
    for (int64_t p = 0; p < n; ++p)
      for (int64_t q = p + 1; q < n; ++q) {
        const double apq = a[p * n + q], app = a[p * n + p], aqq = a[q * n + q];
        if (std::abs(apq) <= floor || std::abs(apq) <= kEps * 0.5 * std::sqrt(std::abs(app) * std::abs(aqq))) {
          if (std::abs(apq) <= floor) a[p * n + q] = a[q * n + p] = 0;
          continue;
        }
        rotated = true;
        // The rotation zeroing a_pq: t = tan(phi), the smaller root of t^2 + 2 theta t - 1 = 0.
        const double theta = (aqq - app) / (2 * apq);
        const double t = (theta >= 0 ? 1.0 : -1.0) / (std::abs(theta) + std::sqrt(theta * theta + 1));
        const double c = 1 / std::sqrt(t * t + 1), s = t * c;
        for (int64_t k = 0; k < n; ++k) {  // A <- A J (columns p, q)
          const double akp = a[k * n + p], akq = a[k * n + q];
          a[k * n + p] = c * akp - s * akq;
          a[k * n + q] = s * akp + c * akq;
        }
        for (int64_t k = 0; k < n; ++k) {  // A <- J^T A (rows p, q)
          const double apk = a[p * n + k], aqk = a[q * n + k];
          a[p * n + k] = c * apk - s * aqk;
          a[q * n + k] = s * apk + c * aqk;
        }
        a[p * n + q] = a[q * n + p] = 0;
        for (int64_t k = 0; k < n; ++k) {  // V <- V J
          const double vkp = v[k * n + p], vkq = v[k * n + q];
          v[k * n + p] = c * vkp - s * vkq;
          v[k * n + q] = s * vkp + c * vkq;
        }
      }
    if (!rotated) break;
  }
  std::vector<int64_t> order(static_cast<size_t>(n));
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](int64_t x, int64_t y) { return a[x * n + x] < a[y * n + y]; });
  w_out.assign(static_cast<size_t>(n), 0.0);
  v_out.assign(static_cast<size_t>(n * n), 0.0);
  for (int64_t j = 0; j < n; ++j) {
    w_out[j] = a[order[j] * n + order[j]];
    for (int64_t i = 0; i < n; ++i) v_out[i * n + j] = v[i * n + order[j]];
    canonical_sign(v_out, n, n, j);
  }
}

// ---- svd: one-sided Jacobi on the columns of A (m >= n); A^T when m < n ----
void svd_tall(const Mat& a, int64_t m, int64_t n, Mat& u_out, Mat& s_out, Mat& vt_out) {
  Mat w = a, v(static_cast<size_t>(n * n), 0.0);  // w m x n, v n x n, row-major
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
        if (gamma == 0 || std::abs(gamma) <= kEps * std::sqrt(alpha) * std::sqrt(beta)) continue;
        rotated = true;
        const double zeta = (beta - alpha) / (2 * gamma);
        const double t = (zeta >= 0 ? 1.0 : -1.0) / (std::abs(zeta) + std::sqrt(1 + zeta * zeta));
        const double c = 1 / std::sqrt(1 + t * t), s = c * t;
        for (int64_t i = 0; i < m; ++i) {
          const double wp = w[i * n + p], wq = w[i * n + q];
          w[i * n + p] = c * wp - s * wq;
          w[i * n + q] = s * wp + c * wq;
        }
        for (int64_t i = 0; i < n; ++i) {
          const double vp = v[i * n + p], vq = v[i * n + q];
          v[i * n + p] = c * vp - s * vq;
          v[i * n + q] = s * vp + c * vq;
        }
      }
    if (!rotated) break;
  }
  Mat sig(static_cast<size_t>(n));
  for (int64_t j = 0; j < n; ++j) {
    double s2 = 0;
    for (int64_t i = 0; i < m; ++i) s2 += w[i * n + j] * w[i * n + j];
    sig[j] = std::sqrt(s2);
  }
  std::vector<int64_t> order(static_cast<size_t>(n));
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](int64_t x, int64_t y) { return sig[x] > sig[y]; });
  s_out.assign(static_cast<size_t>(n), 0.0);
  u_out.assign(static_cast<size_t>(m * n), 0.0);
  vt_out.assign(static_cast<size_t>(n * n), 0.0);
  const double tiny = (n > 0 ? sig[order[0]] : 0) * kEps * static_cast<double>(std::max(m, n));
  int64_t next_basis = 0;
  for (int64_t j = 0; j < n; ++j) {
    const int64_t src = order[j];
    s_out[j] = sig[src];
    for (int64_t i = 0; i < n; ++i) vt_out[j * n + i] = v[i * n + src];
    if (sig[src] > 0)
      for (int64_t i = 0; i < m; ++i) u_out[i * n + j] = w[i * n + src] / sig[src];
    if (sig[src] <= tiny) {
      // A (numerically) null direction: make u_j orthonormal to the columns before it (Gram-Schmidt
      // twice), starting from its own direction, else from the next unit vector that survives.
      for (int attempt = 0;; ++attempt) {
        if (attempt > 0 || sig[src] == 0) {
          if (next_basis >= m) break;  // cannot happen: m >= n columns always fit
          for (int64_t i = 0; i < m; ++i) u_out[i * n + j] = i == next_basis ? 1.0 : 0.0;
          ++next_basis;
        }
        for (int pass = 0; pass < 2; ++pass)
          for (int64_t c = 0; c < j; ++c) {
            double d = 0;
            for (int64_t i = 0; i < m; ++i) d += u_out[i * n + c] * u_out[i * n + j];
            for (int64_t i = 0; i < m; ++i) u_out[i * n + j] -= d * u_out[i * n + c];
          }
        double nn = 0;
        for (int64_t i = 0; i < m; ++i) nn += u_out[i * n + j] * u_out[i * n + j];
        nn = std::sqrt(nn);
        if (nn > 0.5) {
          for (int64_t i = 0; i < m; ++i) u_out[i * n + j] /= nn;
          break;
        }
      }
    }
    if (canonical_sign(u_out, m, n, j) < 0)
      for (int64_t i = 0; i < n; ++i) vt_out[j * n + i] = -vt_out[j * n + i];
  }
}

Mat transposed(const Mat& x, int64_t rows, int64_t cols) {
  Mat t(x.size());
  for (int64_t i = 0; i < rows; ++i)
    for (int64_t j = 0; j < cols; ++j) t[j * rows + i] = x[i * cols + j];
  return t;
}

void svd_one(const Mat& a, int64_t m, int64_t n, Mat& u, Mat& s, Mat& vt) {
  if (m >= n) return svd_tall(a, m, n, u, s, vt);
  // A^T = U' S V'^T, so A = V' S U'^T: U = V', Vt = U'^T; then U's columns take the sign convention.
  Mat u2, vt2;
  svd_tall(transposed(a, m, n), n, m, u2, s, vt2);
  u = transposed(vt2, m, m);
  vt = transposed(u2, n, m);
  for (int64_t j = 0; j < m; ++j)
    if (canonical_sign(u, m, m, j) < 0)
      for (int64_t i = 0; i < n; ++i) vt[j * n + i] = -vt[j * n + i];
}

template <class T>
void run_typed(const Instr& instr, const Inputs& in, const Outputs& outs) {
  const ArrayDesc& a = *in.at(0);
  const int nd = a.ndim(), lead = nd - 2;
  const int64_t m = a.shape[nd - 2], n = a.shape[nd - 1];
  const int64_t count = batch_count(a, lead);
  if (count == 0) return;
  const int64_t work = std::max<int64_t>(1, m * n * std::max(m, n));
  const int64_t grain = std::max<int64_t>(1, 16384 / work);
  parallel_for(count, grain, [&](int64_t b0, int64_t b1) {
    std::vector<int64_t> piv;
    for (int64_t b = b0; b < b1; ++b) {
      Mat x = load<T>(a, 2, b);
      switch (instr.op) {
        case Op::Cholesky:
          store<T>(*outs[0], 2, b, cholesky_one(x, n, b, count));
          break;
        case Op::Inv: {
          lu_factor(x, n, piv, b, count);
          Mat id(static_cast<size_t>(n * n), 0.0);
          for (int64_t i = 0; i < n; ++i) id[i * n + i] = 1;
          lu_solve(x, n, piv, id, n);
          store<T>(*outs[0], 2, b, id);
          break;
        }
        case Op::Solve: {
          const ArrayDesc& rhs = *in.at(1);
          const int64_t k = rhs.shape[rhs.ndim() - 1];
          Mat y = load<T>(rhs, 2, b);
          lu_factor(x, n, piv, b, count);
          lu_solve(x, n, piv, y, k);
          store<T>(*outs[0], 2, b, y);
          break;
        }
        case Op::Qr: {
          Mat q, r;
          qr_one(std::move(x), m, n, q, r);
          store<T>(*outs[0], 2, b, q), store<T>(*outs[1], 2, b, r);
          break;
        }
        case Op::Eigh: {
          Mat w, v;
          eigh_one(x, n, w, v);
          store<T>(*outs[0], 1, b, w), store<T>(*outs[1], 2, b, v);
          break;
        }
        case Op::Svd: {
          Mat u, s, vt;
          svd_one(x, m, n, u, s, vt);
          store<T>(*outs[0], 2, b, u), store<T>(*outs[1], 1, b, s), store<T>(*outs[2], 2, b, vt);
          break;
        }
        default:
          throw std::runtime_error("not a linalg op (this is a bug)");
      }
    }
  });
}

}  // namespace

void linalg(const Instr& instr, const Inputs& in, const Outputs& outs) {
  switch (in.at(0)->dtype) {
    case DType::F32: return run_typed<float>(instr, in, outs);
    case DType::F64: return run_typed<double>(instr, in, outs);
    default: throw std::runtime_error("linalg kernels take float32 or float64 (this is a bug)");
  }
}

}  // namespace tessera::cpu
