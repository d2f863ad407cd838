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

typedef float V8 __attribute__((vector_size(32)));
typedef int32_t V8i __attribute__((vector_size(32)));

inline V8 Load8(const float *p) {
  V8 x;
  std::memcpy(&x, p, sizeof(x));
  return x;
}

inline void Store8(float *p, V8 x) { std::memcpy(p, &x, sizeof(x)); }

// ExpNonPositive on 8 lanes at once (the same steps in vector arithmetic: GCC does not vectorise the scalar one)
inline V8 ExpNonPositive8(V8 x) {
  x = x < -88.0f ? V8{} - 88.0f : x;
  const V8 t = x * 1.44269504088896341f + 0.5f;
  V8i ni = __builtin_convertvector(t, V8i);                 // truncation toward zero
  ni += (t < __builtin_convertvector(ni, V8));               // floor for negative non-integers (true is -1)
  const V8 n = __builtin_convertvector(ni, V8);
  V8 r = x - n * 0.693359375f;
  r = r - n * -2.12194440e-4f;
  V8 p = V8{} + 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * r * r + r + 1.0f;
  return p * reinterpret_cast<V8>((ni + 127) << 23);
}

// r[j] = exp(r[j] - mx) for j < n (all r[j] <= mx); returns their sum
inline float ExpShiftSum(float *r, int64_t n, float mx) {
  V8 acc{};
  int64_t j = 0;
  for (; j + 8 <= n; j += 8) {
    const V8 e = ExpNonPositive8(Load8(r + j) - mx);
    Store8(r + j, e);
    acc += e;
  }
  float sum = 0.f;
  for (; j < n; ++j) {
    r[j] = ExpNonPositive(r[j] - mx);
    sum += r[j];
  }
  for (int u = 0; u < 8; ++u) sum += acc[u];
  return sum;
}

// out[j] = clip(in[j] + mask[j] (+ pair[j] if pair), +-kLogitClip) for j < n (out may be in); returns max(out)
inline float BiasClipMax(const float *in, float *out, const float *mask, const float *pair, int64_t n) {
  const V8 lo = V8{} - kLogitClip, hi = V8{} + kLogitClip;
  V8 vmax = lo;
  int64_t j = 0;
  for (; j + 8 <= n; j += 8) {
    V8 x = Load8(in + j) + Load8(mask + j);
    if (pair != nullptr) x += Load8(pair + j);
    x = x < lo ? lo : x;
    x = x > hi ? hi : x;
    Store8(out + j, x);
    vmax = x > vmax ? x : vmax;
  }
  float mx = -kLogitClip;
  for (; j < n; ++j) {
    float x = in[j] + mask[j];
    if (pair != nullptr) x += pair[j];
    out[j] = std::min(std::max(x, -kLogitClip), kLogitClip);
    mx = std::max(mx, out[j]);
  }
  for (int u = 0; u < 8; ++u) mx = std::max(mx, vmax[u]);
  return mx;
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
      const float mx = BiasClipMax(lr, wr, mr, pr, k);
      const float inv = 1.0f / ExpShiftSum(wr, k, mx);
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
// (q already scaled). One (b, h) pair per task: its keys are copied transposed ([channel][key], zero-padded to
// whole vectors) and its values contiguous ([key][channel]); then, for tiles of kTile queries, the logits are
// formed kTile x 32 keys at a time and the weighted values kTile x 32 (16, 8) channels at a time, in 24 vector
// accumulators (no horizontal sums), the weights normalised at the end.
namespace {

typedef float V16 __attribute__((vector_size(64)));

template <class V>
inline V LoadV(const float *p) {
  V x;
  std::memcpy(&x, p, sizeof(x));
  return x;
}

template <class V>
inline void StoreV(float *p, V x) { std::memcpy(p, &x, sizeof(x)); }

constexpr int64_t kTile = 12;                         // queries per tile (12 x 2 vector accumulators)
constexpr int64_t kLanes = sizeof(V16) / sizeof(float);

// rows[u][j0 .. j0 + NV * kLanes) = qt[u] . kt[:, j] for the kTile queries in qt[kTile][d] and keys kt[d][nkp]
template <int NV>
inline void TileLogitBlock(const float *qt, const float *kt, int64_t d, int64_t nkp, int64_t j0, float *rows) {
  V16 a0[kTile], a1[kTile];
#pragma GCC unroll 16
  for (int64_t u = 0; u < kTile; ++u) a0[u] = a1[u] = V16{};
  for (int64_t c = 0; c < d; ++c) {
    const V16 k0 = LoadV<V16>(kt + c * nkp + j0);
    const V16 k1 = NV == 2 ? LoadV<V16>(kt + c * nkp + j0 + kLanes) : V16{};
#pragma GCC unroll 16
    for (int64_t u = 0; u < kTile; ++u) {
      const float qc = qt[u * d + c];
      a0[u] += qc * k0;
      if (NV == 2) a1[u] += qc * k1;
    }
  }
#pragma GCC unroll 16
  for (int64_t u = 0; u < kTile; ++u) {
    StoreV(rows + u * nkp + j0, a0[u]);
    if (NV == 2) StoreV(rows + u * nkp + j0 + kLanes, a1[u]);
  }
}

inline void TileLogits(const float *qt, const float *kt, int64_t d, int64_t nkp, float *rows) {
  int64_t j0 = 0;
  for (; j0 + 2 * kLanes <= nkp; j0 += 2 * kLanes) TileLogitBlock<2>(qt, kt, d, nkp, j0, rows);
  if (j0 < nkp) TileLogitBlock<1>(qt, kt, d, nkp, j0, rows);
}

// res[u][0 .. NV * lanes(V)) = inv[u] * sum_j rows[u][j] * vb[j][c0 ..] (vb rows of stride dvp)
template <class V, int NV>
inline void TileValues(const float *rows, const float *vb, int64_t nk, int64_t nkp, int64_t dvp, int64_t c0,
                       const float *inv, float *res) {
  constexpr int64_t lanes = sizeof(V) / sizeof(float);
  V a0[kTile], a1[kTile];
#pragma GCC unroll 16
  for (int64_t u = 0; u < kTile; ++u) a0[u] = a1[u] = V{};
  for (int64_t j = 0; j < nk; ++j) {
    const V v0 = LoadV<V>(vb + j * dvp + c0);
    const V v1 = NV == 2 ? LoadV<V>(vb + j * dvp + c0 + lanes) : V{};
#pragma GCC unroll 16
    for (int64_t u = 0; u < kTile; ++u) {
      const float w = rows[u * nkp + j];
      a0[u] += w * v0;
      if (NV == 2) a1[u] += w * v1;
    }
  }
#pragma GCC unroll 16
  for (int64_t u = 0; u < kTile; ++u) {
    StoreV(res + u * 2 * kLanes, a0[u] * inv[u]);
    if (NV == 2) StoreV(res + u * 2 * kLanes + lanes, a1[u] * inv[u]);
  }
}

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
  const int64_t nkp = (nk + kLanes - 1) / kLanes * kLanes;   // keys padded with zeros to whole vectors
  const int64_t dvp = (dv + 7) / 8 * 8;                                 // value channels padded to vectors
  ParallelRows(batch * heads, nq * nk * (d + dv) / 8, [=](int, int64_t lo, int64_t hi) {
    std::vector<float> kt(static_cast<size_t>(d * nkp), 0.f), vb(static_cast<size_t>(nk * dvp + 8), 0.f),
        qt(static_cast<size_t>(kTile * d), 0.f), row(static_cast<size_t>(kTile * nkp), 0.f);
    float res[kTile * 2 * kLanes];
    for (int64_t task = lo; task < hi; ++task) {
      const int64_t b = task / heads, h = task % heads;
      for (int64_t j = 0; j < nk; ++j) {
        const float *kj = k + ((b * nk + j) * heads + h) * d;
        for (int64_t c = 0; c < d; ++c) kt[c * nkp + j] = kj[c];
        std::memcpy(vb.data() + j * dvp, v + ((b * nk + j) * heads + h) * dv, sizeof(float) * dv);
      }
      const float *mr = mb + (mask_rows == 1 ? 0 : b) * nk;
      float *rows = row.data();
      for (int64_t i0 = 0; i0 < nq; i0 += kTile) {
        const int64_t nr = std::min(kTile, nq - i0);
        for (int64_t u = 0; u < kTile; ++u) {
          if (u < nr)
            std::memcpy(qt.data() + u * d, q + ((b * nq + i0 + u) * heads + h) * d, sizeof(float) * d);
          else
            std::memset(qt.data() + u * d, 0, sizeof(float) * d);
        }
        TileLogits(qt.data(), kt.data(), d, nkp, rows);
        float inv[kTile];
        for (int64_t u = 0; u < kTile; ++u) {
          float *r = rows + u * nkp;
          if (u >= nr) {
            std::memset(r, 0, sizeof(float) * nkp);
            inv[u] = 0.f;
            continue;
          }
          const float mx = BiasClipMax(r, r, mr, with_pair ? pb + (h * nq + i0 + u) * nk : nullptr, nk);
          inv[u] = 1.0f / ExpShiftSum(r, nk, mx);
        }
        for (int64_t c0 = 0; c0 < dvp;) {
          // channels in blocks of 32, 16 or 8 (dvp is a multiple of 8)
          const int64_t width = dvp - c0 >= 2 * kLanes ? 2 * kLanes : dvp - c0 >= kLanes ? kLanes : 8;
          if (width == 2 * kLanes)
            TileValues<V16, 2>(rows, vb.data(), nk, nkp, dvp, c0, inv, res);
          else if (width == kLanes)
            TileValues<V16, 1>(rows, vb.data(), nk, nkp, dvp, c0, inv, res);
          else
            TileValues<V8, 1>(rows, vb.data(), nk, nkp, dvp, c0, inv, res);
          const int64_t keep = std::min(width, dv - c0);
          for (int64_t u = 0; u < nr; ++u)
            std::memcpy(out + ((b * nq + i0 + u) * heads + h) * dv + c0, res + u * 2 * kLanes, sizeof(float) * keep);
          c0 += width;
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

// Global attention along the leading axis (Suppl. Alg. 19, the extra-MSA column attention), at inference:
//   msf_global_attention(x[K, B, c], mask[K, B], mask_bias[K, B], query_w[c, H * d], key_w[c, d], value_w[c, d])
//     -> avg[B, H * d]
// For each column b: q = (sum_k mask x[k, b] / (sum_k mask + 1e-10)) @ query_w * d^-0.5 (H heads of d), one key and
// one value per row k (x[k, b] @ key_w, @ value_w, shared by the heads), avg[b, h] = softmax_k(clip(q_h . key_k +
// mask_bias[k, b], +-1e8)) . value. The input stays in its [K, B, c] layout (no transpose); the query is folded
// into the key weights (q_h . (x key_w) = x . (key_w q_h)), so one pass over x forms every logit and value with one
// 16-wide product per row. No gradient (training uses MindSpore's ops).
namespace {

int GlobalAttention(void **params, int *ndims, int64_t **shapes) {
  const float *x = static_cast<const float *>(params[0]);
  const float *mask = static_cast<const float *>(params[1]);
  const float *mb = static_cast<const float *>(params[2]);
  const float *qw = static_cast<const float *>(params[3]);
  const float *kw = static_cast<const float *>(params[4]);
  const float *vw = static_cast<const float *>(params[5]);
  float *out = static_cast<float *>(params[6]);
  if (ndims[0] != 3 || ndims[1] != 2 || ndims[2] != 2 || ndims[3] != 2 || ndims[4] != 2 || ndims[5] != 2) return 2;
  const int64_t nk = shapes[0][0], nb = shapes[0][1], c = shapes[0][2];
  const int64_t d = shapes[4][1], hd = shapes[3][1];
  if (shapes[1][0] != nk || shapes[1][1] != nb || shapes[2][0] != nk || shapes[2][1] != nb) return 3;
  if (shapes[3][0] != c || shapes[4][0] != c || shapes[5][0] != c || shapes[5][1] != d || d <= 0 || hd % d != 0)
    return 4;
  const int64_t heads = hd / d;
  const int64_t width = heads + d;                       // per row: H logits then d value channels
  const float scale = 1.0f / std::sqrt(static_cast<float>(d));
  ParallelRows(nb, nk * c, [=](int, int64_t lo, int64_t hi) {
    const int64_t cols = hi - lo;
    std::vector<float> qsum(static_cast<size_t>(cols * c), 0.f), msum(static_cast<size_t>(cols), 0.f);
    // masked mean over the rows, streaming x row by row (contiguous [cols, c] slices)
    for (int64_t k = 0; k < nk; ++k) {
      const float *xr = x + (k * nb + lo) * c;
      const float *mr = mask + k * nb + lo;
      for (int64_t b = 0; b < cols; ++b) {
        const float m = mr[b];
        if (m == 0.f) continue;
        msum[b] += m;
        float *qs = qsum.data() + b * c;
#pragma omp simd
        for (int64_t i = 0; i < c; ++i) qs[i] += m * xr[b * c + i];
      }
    }
    // per column: w[b] [c, H + d] = [key_w q_b^T (scaled) | value_w]
    std::vector<float> w(static_cast<size_t>(cols * c * width), 0.f), q(static_cast<size_t>(hd));
    for (int64_t b = 0; b < cols; ++b) {
      const float inv = 1.0f / (msum[b] + 1e-10f);
      std::fill(q.begin(), q.end(), 0.f);
      for (int64_t i = 0; i < c; ++i) {
        const float a = qsum[b * c + i] * inv;
        for (int64_t j = 0; j < hd; ++j) q[j] += a * qw[i * hd + j];
      }
      float *wb = w.data() + b * c * width;
      for (int64_t i = 0; i < c; ++i) {
        for (int64_t h = 0; h < heads; ++h) {
          float s = 0.f;
          for (int64_t j = 0; j < d; ++j) s += kw[i * d + j] * q[h * d + j];
          wb[i * width + h] = s * scale;
        }
        for (int64_t j = 0; j < d; ++j) wb[i * width + heads + j] = vw[i * d + j];
      }
    }
    // logits [cols, H, K] and values [cols, K, d], one pass over x
    std::vector<float> logits(static_cast<size_t>(cols * heads * nk)), values(static_cast<size_t>(cols * nk * d));
    std::vector<float> acc(static_cast<size_t>(width));
    for (int64_t k = 0; k < nk; ++k) {
      const float *xr = x + (k * nb + lo) * c;
      for (int64_t b = 0; b < cols; ++b) {
        const float *wb = w.data() + b * c * width;
        const float *xb = xr + b * c;
        std::fill(acc.begin(), acc.end(), 0.f);
        for (int64_t i = 0; i < c; ++i) {
          const float a = xb[i];
          const float *wi = wb + i * width;
#pragma omp simd
          for (int64_t j = 0; j < width; ++j) acc[j] += a * wi[j];
        }
        for (int64_t h = 0; h < heads; ++h) logits[(b * heads + h) * nk + k] = acc[h];
        std::memcpy(values.data() + (b * nk + k) * d, acc.data() + heads, sizeof(float) * d);
      }
    }
    // softmax over the rows and the weighted values
    std::vector<float> bias(static_cast<size_t>(nk));
    for (int64_t b = 0; b < cols; ++b) {
      for (int64_t k = 0; k < nk; ++k) bias[k] = mb[k * nb + lo + b];
      const float *vb = values.data() + b * nk * d;
      for (int64_t h = 0; h < heads; ++h) {
        float *r = logits.data() + (b * heads + h) * nk;
        const float mx = BiasClipMax(r, r, bias.data(), nullptr, nk);
        const float inv = 1.0f / ExpShiftSum(r, nk, mx);
        float *o = out + (lo + b) * hd + h * d;
        std::fill(o, o + d, 0.f);
        for (int64_t k = 0; k < nk; ++k) {
          const float p = r[k];
#pragma omp simd
          for (int64_t j = 0; j < d; ++j) o[j] += p * vb[k * d + j];
        }
        for (int64_t j = 0; j < d; ++j) o[j] *= inv;
      }
    }
  });
  return 0;
}

}  // namespace

extern "C" int msf_global_attention(int nparam, void **params, int *ndims, int64_t **shapes, const char **dtypes,
                                    void *stream, void *extra) {
  if (nparam != 7) return 1;
  return GlobalAttention(params, ndims, shapes);
}

// Attention gating at inference, one pass instead of a bias add, a sigmoid, a broadcast and a product:
//   msf_sigmoid_gate(g[R, C], gate_bias[C], a[P, C]) -> out[R, C] = sigmoid(g[r] + gate_bias) * a[r % P]
// (P = R: gates times the attention result row by row; P < R: a result per column broadcast along the rows, as
// the global attention's [K, B] rows of a [B, C] summary).
namespace {

// sigmoid on 8 lanes: exp of -|z| only (no overflow), 1 / (1 + e) or e / (1 + e) by the sign of z
inline V8 Sigmoid8(V8 z) {
  const V8 neg = z < 0.f ? z : -z;
  const V8 e = ExpNonPositive8(neg);
  const V8 inv = 1.0f / (1.0f + e);
  return z < 0.f ? e * inv : inv;
}

int SigmoidGate(void **params, int *ndims, int64_t **shapes) {
  const float *g = static_cast<const float *>(params[0]);
  const float *gb = static_cast<const float *>(params[1]);
  const float *a = static_cast<const float *>(params[2]);
  float *out = static_cast<float *>(params[3]);
  if (ndims[0] != 2 || ndims[1] != 1 || ndims[2] != 2) return 2;
  const int64_t rows = shapes[0][0], c = shapes[0][1], period = shapes[2][0];
  if (shapes[1][0] != c || shapes[2][1] != c || period <= 0 || rows % period != 0) return 3;
  ParallelRows(rows, c, [=](int, int64_t lo, int64_t hi) {
    for (int64_t r = lo; r < hi; ++r) {
      const float *gr = g + r * c;
      const float *ar = a + (r % period) * c;
      float *o = out + r * c;
      int64_t j = 0;
      for (; j + 8 <= c; j += 8) Store8(o + j, Sigmoid8(Load8(gr + j) + Load8(gb + j)) * Load8(ar + j));
      for (; j < c; ++j) o[j] = ar[j] / (1.0f + std::exp(-(gr[j] + gb[j])));
    }
  });
  return 0;
}

}  // namespace

extern "C" int msf_sigmoid_gate(int nparam, void **params, int *ndims, int64_t **shapes, const char **dtypes,
                                void *stream, void *extra) {
  if (nparam != 4) return 1;
  return SigmoidGate(params, ndims, shapes);
}

// A Linear layer's bias at inference (MindSpore's CPU BiasAdd makes two passes' worth of time of one add):
//   msf_bias_add(x[R, C], bias[C]) -> x + bias;  msf_bias_relu(x[R, C], bias[C]) -> max(x + bias, 0)
namespace {

template <bool kRelu>
int BiasAdd(void **params, int *ndims, int64_t **shapes) {
  const float *x = static_cast<const float *>(params[0]);
  const float *bias = static_cast<const float *>(params[1]);
  float *out = static_cast<float *>(params[2]);
  if (ndims[0] != 2 || ndims[1] != 1) return 2;
  const int64_t rows = shapes[0][0], c = shapes[0][1];
  if (shapes[1][0] != c) return 3;
  ParallelRows(rows, c, [=](int, int64_t lo, int64_t hi) {
    for (int64_t r = lo; r < hi; ++r) {
      const float *xr = x + r * c;
      float *o = out + r * c;
#pragma omp simd
      for (int64_t j = 0; j < c; ++j) {
        const float y = xr[j] + bias[j];
        o[j] = kRelu ? (y > 0.f ? y : 0.f) : y;
      }
    }
  });
  return 0;
}

}  // namespace

extern "C" int msf_bias_add(int nparam, void **params, int *ndims, int64_t **shapes, const char **dtypes,
                            void *stream, void *extra) {
  if (nparam != 3) return 1;
  return BiasAdd<false>(params, ndims, shapes);
}

extern "C" int msf_bias_relu(int nparam, void **params, int *ndims, int64_t **shapes, const char **dtypes,
                             void *stream, void *extra) {
  if (nparam != 3) return 1;
  return BiasAdd<true>(params, ndims, shapes);
}

// Axis permutation (inference layout changes; MindSpore 2.10's CPU Transpose / mint.permute move ~0.6 GB/s):
//   msf_permute(x[d0, ..., dn-1], perm[n] (int32 or int64)) -> out[d_perm[0], ..., d_perm[n-1]]
// Output axes that stay adjacent in the input are merged first; if the last axis stays last, whole rows are
// copied, otherwise the two axes that are innermost in the input and in the output are transposed in 16 x 16 tiles.
namespace {

constexpr int kMaxDims = 8;
constexpr int64_t kPermTile = 16;

int Permute(void **params, int *ndims, int64_t **shapes, const char **dtypes) {
  const float *x = static_cast<const float *>(params[0]);
  float *out = static_cast<float *>(params[2]);
  const int nd = ndims[0];
  if (nd < 1 || nd > kMaxDims || ndims[1] != 1 || shapes[1][0] != nd) return 2;
  int64_t perm[kMaxDims];
  const bool wide = std::strcmp(dtypes[1], "int64") == 0;
  for (int i = 0; i < nd; ++i)
    perm[i] = wide ? static_cast<const int64_t *>(params[1])[i] : static_cast<const int32_t *>(params[1])[i];
  int64_t in_stride[kMaxDims];
  in_stride[nd - 1] = 1;
  for (int i = nd - 2; i >= 0; --i) in_stride[i] = in_stride[i + 1] * shapes[0][i + 1];
  // output axes: sizes and input strides, adjacent-in-input runs merged, size-1 axes dropped
  int64_t size[kMaxDims], stride[kMaxDims];
  int m = 0;
  for (int k = 0; k < nd; ++k) {
    const int64_t a = perm[k];
    if (a < 0 || a >= nd) return 3;
    const int64_t len = shapes[0][a];
    if (len == 1) continue;
    if (m > 0 && stride[m - 1] == in_stride[a] * len) {
      size[m - 1] *= len;
      stride[m - 1] = in_stride[a];
    } else {
      size[m] = len;
      stride[m] = in_stride[a];
      ++m;
    }
  }
  int64_t total = 1;
  for (int k = 0; k < m; ++k) total *= size[k];
  if (m == 0 || (m == 1 && stride[0] == 1)) {
    ParallelRows(total, 1, [=](int, int64_t lo, int64_t hi) {
      std::memcpy(out + lo, x + lo, sizeof(float) * (hi - lo));
    });
    return 0;
  }
  int64_t out_stride[kMaxDims];
  out_stride[m - 1] = 1;
  for (int k = m - 2; k >= 0; --k) out_stride[k] = out_stride[k + 1] * size[k + 1];
  if (stride[m - 1] == 1) {
    // rows of size[m-1] contiguous on both sides
    const int64_t row = size[m - 1], rows = total / row;
    ParallelRows(rows, row, [=](int, int64_t lo, int64_t hi) {
      for (int64_t r = lo; r < hi; ++r) {
        int64_t rem = r, src = 0;
        for (int k = m - 2; k >= 0; --k) {
          src += (rem % size[k]) * stride[k];
          rem /= size[k];
        }
        std::memcpy(out + r * row, x + src, sizeof(float) * row);
      }
    });
    return 0;
  }
  // p: the output axis that is innermost in the input (input stride 1); tiles over (p, last)
  int p = -1;
  for (int k = 0; k < m; ++k)
    if (stride[k] == 1) p = k;
  if (p < 0) return 4;
  const int64_t np = size[p], nl = size[m - 1], sl = stride[m - 1], op = out_stride[p];
  const int64_t outer = total / (np * nl);
  const int64_t tiles_p = (np + kPermTile - 1) / kPermTile, tiles_l = (nl + kPermTile - 1) / kPermTile;
  ParallelRows(outer * tiles_p, kPermTile * nl, [=](int, int64_t lo, int64_t hi) {
    for (int64_t task = lo; task < hi; ++task) {
      const int64_t o = task / tiles_p, p0 = (task % tiles_p) * kPermTile;
      int64_t rem = o, src = 0, dst = 0;
      for (int k = m - 2; k >= 0; --k) {
        if (k == p) continue;
        const int64_t i = rem % size[k];
        rem /= size[k];
        src += i * stride[k];
        dst += i * out_stride[k];
      }
      const int64_t pn = std::min(kPermTile, np - p0);
      for (int64_t t = 0; t < tiles_l; ++t) {
        const int64_t l0 = t * kPermTile, ln = std::min(kPermTile, nl - l0);
        for (int64_t a = 0; a < pn; ++a) {
          float *o_row = out + dst + (p0 + a) * op + l0;
          const float *i_col = x + src + (p0 + a) + l0 * sl;
          for (int64_t b = 0; b < ln; ++b) o_row[b] = i_col[b * sl];
        }
      }
    }
  });
  return 0;
}

}  // namespace

extern "C" int msf_permute(int nparam, void **params, int *ndims, int64_t **shapes, const char **dtypes,
                           void *stream, void *extra) {
  if (nparam != 3) return 1;
  return Permute(params, ndims, shapes, dtypes);
}
