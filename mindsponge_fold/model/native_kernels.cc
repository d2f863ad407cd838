// Fused float32 CPU kernels for MindSpore's AOT custom operators (mindsponge_fold.model.native builds this file
// with the system C++ compiler on first use). Each entry point has MindSpore's AOT signature: params holds the
// inputs then the outputs, ndims/shapes describe each, the return value is 0 on success.
//
// LayerNorm over the last axis (eps 1e-5), AlphaFold's scale/offset:
//   msf_layer_norm(x[..., C], scale[C], offset[C]) -> y[..., C]
//   msf_layer_norm_grad(x[..., C], scale[C], dy[..., C]) -> dx[..., C], dscale[C], doffset[C]
// The row statistics are recomputed in the backward (nothing but x is kept between the two).
//
// Attention weights softmax(clip(logits + mask_bias [+ pair_bias], +-1e8)) over the last axis:
//   msf_softmax_bias(logits[B, ..., K], mask_bias[B or 1, ..., K]) -> w
//   msf_softmax_bias_pair(logits[B, M..., K], mask_bias[B or 1, ..., K], pair_bias[M..., K]) -> w
//   msf_softmax_bias[_pair]_grad(logits, mask_bias[, pair_bias], w, dw) -> dlogits
// (mask_bias holds one row of K per batch entry; pair_bias is shared by the batch entries.) The gradient is the
// softmax's, w * (dw - sum(dw * w)), and zero where the clip is active (as the reference's clip: a fully masked
// row has uniform weights and no gradient).
#include <sched.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <thread>
#include <vector>

namespace {

constexpr float kEps = 1e-5f;
constexpr float kLogitClip = 1e8f;
constexpr int64_t kMinElemsPerThread = 1 << 15;

int NumThreads() {
  static const int n = [] {
    const char *env = std::getenv("MSF_NATIVE_THREADS");
    if (env != nullptr && std::atoi(env) > 0) return std::atoi(env);
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof(set), &set) == 0) return std::max(1, CPU_COUNT(&set));
    return static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  }();
  return n;
}

// Runs fn(thread, begin, end) over [0, rows) split into contiguous parts, one per thread.
template <class Fn>
int ParallelRows(int64_t rows, int64_t row_elems, Fn fn) {
  int64_t threads = std::min<int64_t>(NumThreads(), std::max<int64_t>(1, rows * row_elems / kMinElemsPerThread));
  threads = std::max<int64_t>(1, std::min(threads, rows));
  if (threads == 1) {
    fn(0, 0, rows);
    return 1;
  }
  std::vector<std::thread> pool;
  pool.reserve(threads - 1);
  const int64_t per = (rows + threads - 1) / threads;
  for (int64_t t = 1; t < threads; ++t) {
    const int64_t lo = t * per, hi = std::min(rows, lo + per);
    pool.emplace_back([=] { if (lo < hi) fn(static_cast<int>(t), lo, hi); });
  }
  fn(0, 0, std::min(rows, per));
  for (auto &th : pool) th.join();
  return static_cast<int>(threads);
}

int64_t LeadingRows(int ndim, const int64_t *shape) {
  int64_t rows = 1;
  for (int i = 0; i + 1 < ndim; ++i) rows *= shape[i];
  return rows;
}

// exp(x) for x <= 0 (Cephes' expf: range reduction by ln 2 in two parts, degree-6 polynomial, about 1 ulp),
// branch-free so that the softmax loops vectorise; exp(x) = 0 below about -87.7 (where float32 has only subnormals).
inline float ExpNonPositive(float x) {
  x = std::max(x, -88.0f);
  const float n = std::floor(x * 1.44269504088896341f + 0.5f);
  float r = x - n * 0.693359375f;
  r = r - n * -2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * r * r + r + 1.0f;
  const int32_t e = (static_cast<int32_t>(n) + 127) << 23;
  float scale;
  std::memcpy(&scale, &e, sizeof(scale));
  return p * scale;
}

// mean and 1/sqrt(var + eps) of one row
inline void RowStats(const float *x, int64_t c, float *mean, float *rstd) {
  float s = 0.f;
#pragma omp simd reduction(+ : s)
  for (int64_t i = 0; i < c; ++i) s += x[i];
  const float m = s / static_cast<float>(c);
  float v = 0.f;
#pragma omp simd reduction(+ : v)
  for (int64_t i = 0; i < c; ++i) {
    const float d = x[i] - m;
    v += d * d;
  }
  *mean = m;
  *rstd = 1.0f / std::sqrt(v / static_cast<float>(c) + kEps);
}

}  // namespace

extern "C" int msf_layer_norm(int nparam, void **params, int *ndims, int64_t **shapes, const char **dtypes,
                              void *stream, void *extra) {
  if (nparam != 4) return 1;
  const float *x = static_cast<const float *>(params[0]);
  const float *g = static_cast<const float *>(params[1]);
  const float *b = static_cast<const float *>(params[2]);
  float *y = static_cast<float *>(params[3]);
  const int64_t c = shapes[0][ndims[0] - 1];
  const int64_t rows = LeadingRows(ndims[0], shapes[0]);
  ParallelRows(rows, c, [=](int, int64_t lo, int64_t hi) {
    for (int64_t r = lo; r < hi; ++r) {
      const float *xr = x + r * c;
      float *yr = y + r * c;
      float mean, rstd;
      RowStats(xr, c, &mean, &rstd);
      for (int64_t i = 0; i < c; ++i) yr[i] = (xr[i] - mean) * rstd * g[i] + b[i];
    }
  });
  return 0;
}

extern "C" int msf_layer_norm_grad(int nparam, void **params, int *ndims, int64_t **shapes, const char **dtypes,
                                   void *stream, void *extra) {
  if (nparam != 6) return 1;
  const float *x = static_cast<const float *>(params[0]);
  const float *g = static_cast<const float *>(params[1]);
  const float *dy = static_cast<const float *>(params[2]);
  float *dx = static_cast<float *>(params[3]);
  float *dg = static_cast<float *>(params[4]);
  float *db = static_cast<float *>(params[5]);
  const int64_t c = shapes[0][ndims[0] - 1];
  const int64_t rows = LeadingRows(ndims[0], shapes[0]);
  const int max_threads = NumThreads();
  std::vector<float> part_g(static_cast<size_t>(max_threads) * c, 0.f), part_b(static_cast<size_t>(max_threads) * c,
                                                                                0.f);
  const int used = ParallelRows(rows, c, [&](int t, int64_t lo, int64_t hi) {
    float *pg = part_g.data() + static_cast<size_t>(t) * c;
    float *pb = part_b.data() + static_cast<size_t>(t) * c;
    std::vector<float> xhat(c);
    for (int64_t r = lo; r < hi; ++r) {
      const float *xr = x + r * c;
      const float *dyr = dy + r * c;
      float *dxr = dx + r * c;
      float mean, rstd;
      RowStats(xr, c, &mean, &rstd);
      float sum_d = 0.f, sum_dx = 0.f;
#pragma omp simd reduction(+ : sum_d, sum_dx)
      for (int64_t i = 0; i < c; ++i) {
        const float xh = (xr[i] - mean) * rstd;
        const float d = dyr[i] * g[i];
        xhat[i] = xh;
        sum_d += d;
        sum_dx += d * xh;
        pg[i] += dyr[i] * xh;
        pb[i] += dyr[i];
      }
      const float inv_c = 1.0f / static_cast<float>(c);
      const float mean_d = sum_d * inv_c, mean_dx = sum_dx * inv_c;
      for (int64_t i = 0; i < c; ++i) dxr[i] = rstd * (dyr[i] * g[i] - mean_d - xhat[i] * mean_dx);
    }
  });
  for (int64_t i = 0; i < c; ++i) {
    float sg = 0.f, sb = 0.f;
    for (int t = 0; t < used; ++t) {
      sg += part_g[static_cast<size_t>(t) * c + i];
      sb += part_b[static_cast<size_t>(t) * c + i];
    }
    dg[i] = sg;
    db[i] = sb;
  }
  return 0;
}

namespace {

int SoftmaxBias(void **params, int *ndims, int64_t **shapes, bool with_pair) {
  const float *logits = static_cast<const float *>(params[0]);
  const float *mb = static_cast<const float *>(params[1]);
  const float *pb = with_pair ? static_cast<const float *>(params[2]) : nullptr;
  float *w = static_cast<float *>(params[with_pair ? 3 : 2]);
  const int nd = ndims[0];
  if (nd < 2) return 2;
  const int64_t k = shapes[0][nd - 1];
  const int64_t batch = shapes[0][0];
  int64_t middle = 1;  // rows per batch entry
  for (int i = 1; i + 1 < nd; ++i) middle *= shapes[0][i];
  int64_t mask_elems = 1;
  for (int i = 0; i < ndims[1]; ++i) mask_elems *= shapes[1][i];
  const int64_t mask_rows = mask_elems / k;
  if (mask_rows != 1 && mask_rows != batch) return 3;
  if (with_pair) {
    int64_t pair_elems = 1;
    for (int i = 0; i < ndims[2]; ++i) pair_elems *= shapes[2][i];
    if (pair_elems != middle * k) return 4;
  }
  ParallelRows(batch * middle, k, [=](int, int64_t lo, int64_t hi) {
    for (int64_t r = lo; r < hi; ++r) {
      const int64_t b = r / middle, m = r % middle;
      const float *lr = logits + r * k;
      const float *mr = mb + (mask_rows == 1 ? 0 : b) * k;
      const float *pr = with_pair ? pb + m * k : nullptr;
      float *wr = w + r * k;
      float mx = -kLogitClip;
      for (int64_t i = 0; i < k; ++i) {
        float v = lr[i] + mr[i];
        if (with_pair) v += pr[i];
        v = std::min(std::max(v, -kLogitClip), kLogitClip);
        wr[i] = v;
        mx = std::max(mx, v);
      }
      float sum = 0.f;
#pragma omp simd reduction(+ : sum)
      for (int64_t i = 0; i < k; ++i) {
        const float e = ExpNonPositive(wr[i] - mx);
        wr[i] = e;
        sum += e;
      }
      const float inv = 1.0f / sum;
#pragma omp simd
      for (int64_t i = 0; i < k; ++i) wr[i] *= inv;
    }
  });
  return 0;
}

}  // namespace

extern "C" int msf_softmax_bias(int nparam, void **params, int *ndims, int64_t **shapes, const char **dtypes,
                                void *stream, void *extra) {
  if (nparam != 3) return 1;
  return SoftmaxBias(params, ndims, shapes, false);
}

extern "C" int msf_softmax_bias_pair(int nparam, void **params, int *ndims, int64_t **shapes, const char **dtypes,
                                     void *stream, void *extra) {
  if (nparam != 4) return 1;
  return SoftmaxBias(params, ndims, shapes, true);
}

namespace {

// dlogits = w * (dw - sum(dw * w)) where the clip is inactive (|logits + biases| < 1e8), 0 where it is active
int SoftmaxBiasGrad(void **params, int *ndims, int64_t **shapes, bool with_pair) {
  const int n_in = with_pair ? 5 : 4;
  const float *logits = static_cast<const float *>(params[0]);
  const float *mb = static_cast<const float *>(params[1]);
  const float *pb = with_pair ? static_cast<const float *>(params[2]) : nullptr;
  const float *w = static_cast<const float *>(params[n_in - 2]);
  const float *dw = static_cast<const float *>(params[n_in - 1]);
  float *dl = static_cast<float *>(params[n_in]);
  const int nd = ndims[0];
  if (nd < 2) return 2;
  const int64_t k = shapes[0][nd - 1];
  const int64_t batch = shapes[0][0];
  int64_t middle = 1;
  for (int i = 1; i + 1 < nd; ++i) middle *= shapes[0][i];
  int64_t mask_elems = 1;
  for (int i = 0; i < ndims[1]; ++i) mask_elems *= shapes[1][i];
  const int64_t mask_rows = mask_elems / k;
  if (mask_rows != 1 && mask_rows != batch) return 3;
  ParallelRows(batch * middle, k, [=](int, int64_t lo, int64_t hi) {
    for (int64_t r = lo; r < hi; ++r) {
      const int64_t b = r / middle, m = r % middle;
      const float *lr = logits + r * k;
      const float *mr = mb + (mask_rows == 1 ? 0 : b) * k;
      const float *pr = with_pair ? pb + m * k : nullptr;
      const float *wr = w + r * k;
      const float *dr = dw + r * k;
      float *out = dl + r * k;
      float s = 0.f;
#pragma omp simd reduction(+ : s)
      for (int64_t i = 0; i < k; ++i) s += wr[i] * dr[i];
      for (int64_t i = 0; i < k; ++i) {
        float v = lr[i] + mr[i];
        if (with_pair) v += pr[i];
        const bool inside = v > -kLogitClip && v < kLogitClip;
        out[i] = inside ? wr[i] * (dr[i] - s) : 0.f;
      }
    }
  });
  return 0;
}

}  // namespace

extern "C" int msf_softmax_bias_grad(int nparam, void **params, int *ndims, int64_t **shapes, const char **dtypes,
                                     void *stream, void *extra) {
  if (nparam != 5) return 1;
  return SoftmaxBiasGrad(params, ndims, shapes, false);
}

extern "C" int msf_softmax_bias_pair_grad(int nparam, void **params, int *ndims, int64_t **shapes,
                                          const char **dtypes, void *stream, void *extra) {
  if (nparam != 6) return 1;
  return SoftmaxBiasGrad(params, ndims, shapes, true);
}

// Whole attention without materialising the logits (inference):
//   msf_attention(q[B, Q, H, d], k[B, K, H, d], v[B, K, H, dv], mask_bias[B or 1, ..., K]) -> out[B, Q, H, dv]
//   msf_attention_pair(q, k, v, mask_bias, pair_bias[H, Q, K]) -> out
// out[b, i, h] = sum_j softmax_j(clip(q[b, i, h] . k[b, j, h] + mask_bias[b, j] (+ pair_bias[h, i, j]))) v[b, j, h]
// (q already scaled), one (b, h) pair per task, its keys and values copied to contiguous buffers first.
namespace {

int Attention(void **params, int *ndims, int64_t **shapes, bool with_pair) {
  const float *q = static_cast<const float *>(params[0]);
  const float *k = static_cast<const float *>(params[1]);
  const float *v = static_cast<const float *>(params[2]);
  const float *mb = static_cast<const float *>(params[3]);
  const float *pb = with_pair ? static_cast<const float *>(params[4]) : nullptr;
  float *out = static_cast<float *>(params[with_pair ? 5 : 4]);
  if (ndims[0] != 4 || ndims[1] != 4 || ndims[2] != 4) return 2;
  const int64_t batch = shapes[0][0], nq = shapes[0][1], heads = shapes[0][2], d = shapes[0][3];
  const int64_t nk = shapes[1][1], dv = shapes[2][3];
  if (shapes[1][0] != batch || shapes[2][0] != batch || shapes[1][2] != heads || shapes[2][2] != heads ||
      shapes[1][3] != d || shapes[2][1] != nk)
    return 3;
  int64_t mask_elems = 1;
  for (int i = 0; i < ndims[3]; ++i) mask_elems *= shapes[3][i];
  const int64_t mask_rows = mask_elems / nk;
  if (mask_rows != 1 && mask_rows != batch) return 4;
  if (with_pair) {
    int64_t pair_elems = 1;
    for (int i = 0; i < ndims[4]; ++i) pair_elems *= shapes[4][i];
    if (pair_elems != heads * nq * nk) return 5;
  }
  constexpr int64_t kLanes = 16, kRows = 4;
  const int64_t nkp = (nk + kLanes - 1) / kLanes * kLanes;   // keys padded with zeros to whole vectors
  ParallelRows(batch * heads, nq * nk * (d + dv) / 8, [=](int, int64_t lo, int64_t hi) {
    // keys and values of one (b, h) transposed to [channel][key]: the inner loops run over contiguous keys
    std::vector<float> kt(static_cast<size_t>(d * nkp), 0.f), vt(static_cast<size_t>(dv * nkp), 0.f),
        row(static_cast<size_t>(kRows * nkp), 0.f);
    for (int64_t task = lo; task < hi; ++task) {
      const int64_t b = task / heads, h = task % heads;
      for (int64_t j = 0; j < nk; ++j) {
        const float *kj = k + ((b * nk + j) * heads + h) * d;
        for (int64_t c = 0; c < d; ++c) kt[c * nkp + j] = kj[c];
        const float *vj = v + ((b * nk + j) * heads + h) * dv;
        for (int64_t c = 0; c < dv; ++c) vt[c * nkp + j] = vj[c];
      }
      const float *mr = mb + (mask_rows == 1 ? 0 : b) * nk;
      const float *ktp = kt.data();
      const float *vtp = vt.data();
      float *rows = row.data();
      for (int64_t i0 = 0; i0 < nq; i0 += kRows) {
        const int64_t nr = std::min(kRows, nq - i0);
        // logits of kRows queries at once: each key vector loaded once for all of them
        for (int64_t j0 = 0; j0 < nkp; j0 += kLanes) {
          float acc[kRows][kLanes] = {};
          for (int64_t c = 0; c < d; ++c) {
            const float *kc = ktp + c * nkp + j0;
            for (int64_t u = 0; u < kRows; ++u) {
              const float qc = u < nr ? q[((b * nq + i0 + u) * heads + h) * d + c] : 0.f;
#pragma omp simd
              for (int64_t t = 0; t < kLanes; ++t) acc[u][t] += qc * kc[t];
            }
          }
          for (int64_t u = 0; u < kRows; ++u) {
#pragma omp simd
            for (int64_t t = 0; t < kLanes; ++t) rows[u * nkp + j0 + t] = acc[u][t];
          }
        }
        float inv[kRows];
        for (int64_t u = 0; u < nr; ++u) {
          float *r = rows + u * nkp;
          if (with_pair) {
            const float *pr = pb + (h * nq + i0 + u) * nk;
#pragma omp simd
            for (int64_t j = 0; j < nk; ++j) r[j] += mr[j] + pr[j];
          } else {
#pragma omp simd
            for (int64_t j = 0; j < nk; ++j) r[j] += mr[j];
          }
          float mx = -kLogitClip;
#pragma omp simd reduction(max : mx)
          for (int64_t j = 0; j < nk; ++j) {
            r[j] = std::min(std::max(r[j], -kLogitClip), kLogitClip);
            mx = std::max(mx, r[j]);
          }
          float sum = 0.f;
#pragma omp simd reduction(+ : sum)
          for (int64_t j = 0; j < nk; ++j) {
            const float e = ExpNonPositive(r[j] - mx);
            r[j] = e;
            sum += e;
          }
          for (int64_t j = nk; j < nkp; ++j) r[j] = 0.f;
          inv[u] = 1.0f / sum;
        }
        for (int64_t u = nr; u < kRows; ++u) {
          for (int64_t j = 0; j < nkp; ++j) rows[u * nkp + j] = 0.f;
          inv[u] = 0.f;
        }
        // weighted values, kRows queries at once: each value vector loaded once for all of them
        for (int64_t c = 0; c < dv; ++c) {
          const float *vc = vtp + c * nkp;
          float acc[kRows][kLanes] = {};
          for (int64_t j0 = 0; j0 < nkp; j0 += kLanes) {
            for (int64_t u = 0; u < kRows; ++u) {
              const float *r = rows + u * nkp + j0;
#pragma omp simd
              for (int64_t t = 0; t < kLanes; ++t) acc[u][t] += r[t] * vc[j0 + t];
            }
          }
          for (int64_t u = 0; u < nr; ++u) {
            float s = 0.f;
            for (int64_t t = 0; t < kLanes; ++t) s += acc[u][t];
            out[((b * nq + i0 + u) * heads + h) * dv + c] = s * inv[u];
          }
        }
      }
    }
  });
  return 0;
}

}  // namespace

extern "C" int msf_attention(int nparam, void **params, int *ndims, int64_t **shapes, const char **dtypes,
                             void *stream, void *extra) {
  if (nparam != 5) return 1;
  return Attention(params, ndims, shapes, false);
}

extern "C" int msf_attention_pair(int nparam, void **params, int *ndims, int64_t **shapes, const char **dtypes,
                                  void *stream, void *extra) {
  if (nparam != 6) return 1;
  return Attention(params, ndims, shapes, true);
}
