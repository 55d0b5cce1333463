/*
 * rxrl's WebAssembly SIMD kernels. They run inside the linear memory of tfjs's wasm backend
 * (imported as env.memory), so they read and write tensors in place: every pointer argument is
 * a byte offset of a tensor (or of a scratch tensor) that the caller allocated through tfjs.
 *
 * Rules that keep them safe inside someone else's memory (checked by build.sh):
 *   - no static data and no C stack: no arrays or address-taken locals, no libc;
 *   - nothing is allocated or freed here.
 *
 * Build: lib/tensor/simd/build.sh (clang ≥ 14, wasm-ld) → kernels-wasm.ts (base64).
 */
#include <wasm_simd128.h>

#define EXPORT(name) __attribute__((export_name(#name)))
#define MASK_VALUE (-1e9f)

/* ------------------------------------------------------------------------------------------ */
/* exp, 4 lanes: x = n·ln2 + r, |r| ≤ ln2/2, e^r by Cephes' expf polynomial (≈1 ulp), 2^n from
 * the exponent bits. n is rounded with the "magic bias" trick: adding 1.5·2²³ (+127, the
 * exponent bias) leaves n + 127 in the low mantissa bits, which a shift by 23 turns into 2^n.
 * Inputs are clamped to [−87.33, 88.37] (so 2^n stays a normal float), and the result is
 * exactly 0 below −87.33, as the softmax of a −1e9 mask needs. */
static inline v128_t exp4(v128_t x) {
  const v128_t lo = wasm_f32x4_splat(-87.336544f);
  const v128_t hi = wasm_f32x4_splat(88.37626f);
  const v128_t magic = wasm_f32x4_splat(12583039.0f); /* 1.5·2²³ + 127 */
  v128_t under = wasm_f32x4_lt(x, lo);
  x = wasm_f32x4_pmin(wasm_f32x4_pmax(x, lo), hi); /* pmin/pmax: one x86 instruction each */
  v128_t t = wasm_f32x4_add(wasm_f32x4_mul(x, wasm_f32x4_splat(1.44269504088896341f)), magic);
  v128_t s = wasm_i32x4_shl(t, 23);             /* 2^n */
  v128_t n = wasm_f32x4_sub(t, magic);
  v128_t r = wasm_f32x4_sub(x, wasm_f32x4_mul(n, wasm_f32x4_splat(0.693359375f)));
  r = wasm_f32x4_sub(r, wasm_f32x4_mul(n, wasm_f32x4_splat(-2.12194440e-4f)));
  v128_t p = wasm_f32x4_splat(1.9875691500e-4f);
  p = wasm_f32x4_add(wasm_f32x4_mul(p, r), wasm_f32x4_splat(1.3981999507e-3f));
  p = wasm_f32x4_add(wasm_f32x4_mul(p, r), wasm_f32x4_splat(8.3334519073e-3f));
  p = wasm_f32x4_add(wasm_f32x4_mul(p, r), wasm_f32x4_splat(4.1665795894e-2f));
  p = wasm_f32x4_add(wasm_f32x4_mul(p, r), wasm_f32x4_splat(1.6666665459e-1f));
  p = wasm_f32x4_add(wasm_f32x4_mul(p, r), wasm_f32x4_splat(5.0000001201e-1f));
  p = wasm_f32x4_add(wasm_f32x4_add(wasm_f32x4_mul(p, wasm_f32x4_mul(r, r)), r), wasm_f32x4_splat(1.0f));
  return wasm_v128_andnot(wasm_f32x4_mul(p, s), under);
}

static inline float hsum(v128_t v) {
  return wasm_f32x4_extract_lane(v, 0) + wasm_f32x4_extract_lane(v, 1) +
         wasm_f32x4_extract_lane(v, 2) + wasm_f32x4_extract_lane(v, 3);
}

/* [a0+a1+a2+a3, b0+…, c0+…, d0+…]: four horizontal sums at once */
static inline v128_t hsum4(v128_t a, v128_t b, v128_t c, v128_t d) {
  v128_t ab = wasm_f32x4_add(wasm_i32x4_shuffle(a, b, 0, 4, 1, 5), wasm_i32x4_shuffle(a, b, 2, 6, 3, 7));
  v128_t cd = wasm_f32x4_add(wasm_i32x4_shuffle(c, d, 0, 4, 1, 5), wasm_i32x4_shuffle(c, d, 2, 6, 3, 7));
  return wasm_f32x4_add(wasm_i32x4_shuffle(ab, cd, 0, 1, 4, 5), wasm_i32x4_shuffle(ab, cd, 2, 3, 6, 7));
}

/* out[j] = a·b_j for j < n, b_j = b + j·bs (rows of d floats, d a multiple of 4), 4 rows at a time */
static void dots(float* out, const float* a, const float* b, int bs, int n, int d) {
  int j = 0;
  for (; j + 4 <= n; j += 4) {
    const float* b0 = b + j * bs;
    const float* b1 = b0 + bs;
    const float* b2 = b1 + bs;
    const float* b3 = b2 + bs;
    v128_t s0 = wasm_f32x4_splat(0.0f), s1 = s0, s2 = s0, s3 = s0;
    for (int p = 0; p < d; p += 4) {
      v128_t av = wasm_v128_load(a + p);
      s0 = wasm_f32x4_add(s0, wasm_f32x4_mul(av, wasm_v128_load(b0 + p)));
      s1 = wasm_f32x4_add(s1, wasm_f32x4_mul(av, wasm_v128_load(b1 + p)));
      s2 = wasm_f32x4_add(s2, wasm_f32x4_mul(av, wasm_v128_load(b2 + p)));
      s3 = wasm_f32x4_add(s3, wasm_f32x4_mul(av, wasm_v128_load(b3 + p)));
    }
    wasm_v128_store(out + j, hsum4(s0, s1, s2, s3));
  }
  for (; j < n; j++) {
    const float* bj = b + j * bs;
    v128_t s = wasm_f32x4_splat(0.0f);
    for (int p = 0; p < d; p += 4) s = wasm_f32x4_add(s, wasm_f32x4_mul(wasm_v128_load(a + p), wasm_v128_load(bj + p)));
    out[j] = hsum(s);
  }
}

/* y = Σ_{j<n} w[j·ws]·x_j (+ y if accumulate), x_j = x + j·xs: rows of d floats, d a multiple of
 * 4; summed in registers, 16 columns at a time */
static void combine(float* y, const float* w, int ws, const float* x, int xs, int n, int d, int accumulate) {
  int c = 0;
  for (; c + 16 <= d; c += 16) {
    v128_t a0 = wasm_f32x4_splat(0.0f), a1 = a0, a2 = a0, a3 = a0;
    for (int j = 0; j < n; j++) {
      const v128_t wj = wasm_f32x4_splat(w[j * ws]);
      const float* xj = x + j * xs + c;
      a0 = wasm_f32x4_add(a0, wasm_f32x4_mul(wj, wasm_v128_load(xj)));
      a1 = wasm_f32x4_add(a1, wasm_f32x4_mul(wj, wasm_v128_load(xj + 4)));
      a2 = wasm_f32x4_add(a2, wasm_f32x4_mul(wj, wasm_v128_load(xj + 8)));
      a3 = wasm_f32x4_add(a3, wasm_f32x4_mul(wj, wasm_v128_load(xj + 12)));
    }
    if (accumulate) {
      a0 = wasm_f32x4_add(a0, wasm_v128_load(y + c));
      a1 = wasm_f32x4_add(a1, wasm_v128_load(y + c + 4));
      a2 = wasm_f32x4_add(a2, wasm_v128_load(y + c + 8));
      a3 = wasm_f32x4_add(a3, wasm_v128_load(y + c + 12));
    }
    wasm_v128_store(y + c, a0);
    wasm_v128_store(y + c + 4, a1);
    wasm_v128_store(y + c + 8, a2);
    wasm_v128_store(y + c + 12, a3);
  }
  for (; c < d; c += 4) {
    v128_t a0 = wasm_f32x4_splat(0.0f);
    for (int j = 0; j < n; j++) a0 = wasm_f32x4_add(a0, wasm_f32x4_mul(wasm_f32x4_splat(w[j * ws]), wasm_v128_load(x + j * xs + c)));
    if (accumulate) a0 = wasm_f32x4_add(a0, wasm_v128_load(y + c));
    wasm_v128_store(y + c, a0);
  }
}

static inline void zero(float* y, int n) {
  int p = 0;
  for (; p + 4 <= n; p += 4) wasm_v128_store(y + p, wasm_f32x4_splat(0.0f));
  for (; p < n; p++) y[p] = 0.0f;
}

/* ------------------------------------------------------------------------------------------ */
/* Causal attention, one training forward (no cache):
 *   q [B,T,H,d], k, v [B,T,Hkv,d] (head h reads kv head h/(H/Hkv)), keyMask [B,T] (1 real,
 *   0 pad) or 0 for none; o [B,T,H,d]; probs [B,H,T,T].
 *   s_ij = (q_i·k_j)·scale + bias_ij with the additive float32 bias of the unfused path:
 *   MASK_VALUE for a key after the query, plus MASK_VALUE for a padded key; p_i = softmax_j(s_ij);
 *   o_i = Σ_j p_ij v_j. Keys after the query are skipped (weight exactly 0) unless every key up
 *   to the query is padded: then, as in the unfused path, all keys carry a bias of ≥ −1e9 and
 *   the row is computed over all T keys. */

/* Number of keys row i of batch b attends to: i + 1, or T when every key ≤ i is padded. */
static inline int row_keys(const float* mask, int i, int T) {
  if (!mask) return i + 1;
  for (int j = 0; j <= i; j++) if (mask[j] != 0.0f) return i + 1;
  return T;
}

EXPORT(attention_forward)
void attention_forward(const float* q, const float* k, const float* v, const float* keyMask,
                       float* o, float* probs, int B, int T, int H, int Hkv, int d, float scale) {
  const int G = H / Hkv;
  const int qs = H * d, ks = Hkv * d;
  for (int b = 0; b < B; b++) {
    const float* mask = keyMask ? keyMask + b * T : 0;
    for (int h = 0; h < H; h++) {
      const float* qb = q + b * T * qs + h * d;
      const float* kb = k + b * T * ks + (h / G) * d;
      const float* vb = v + b * T * ks + (h / G) * d;
      float* ob = o + b * T * qs + h * d;
      float* P = probs + (b * H + h) * T * T;
      for (int i = 0; i < T; i++) {
        float* Pi = P + i * T;
        const float* qi = qb + i * qs;
        const int n = row_keys(mask, i, T);
        dots(Pi, qi, kb, ks, n, d);
        float m = -3.4e38f;
        for (int j = 0; j < n; j++) {
          float s = Pi[j] * scale;
          if (mask) s += (j > i ? MASK_VALUE : 0.0f) + (mask[j] == 0.0f ? MASK_VALUE : 0.0f);
          Pi[j] = s;
          if (s > m) m = s;
        }
        /* exp and sum, 4 at a time */
        v128_t mv = wasm_f32x4_splat(m);
        v128_t sum = wasm_f32x4_splat(0.0f);
        int j = 0;
        for (; j + 4 <= n; j += 4) {
          v128_t e = exp4(wasm_f32x4_sub(wasm_v128_load(Pi + j), mv));
          wasm_v128_store(Pi + j, e);
          sum = wasm_f32x4_add(sum, e);
        }
        float l = hsum(sum);
        for (; j < n; j++) {
          float e = wasm_f32x4_extract_lane(exp4(wasm_f32x4_splat(Pi[j] - m)), 0);
          Pi[j] = e;
          l += e;
        }
        const v128_t inv = wasm_f32x4_splat(1.0f / l);
        for (j = 0; j + 4 <= n; j += 4) wasm_v128_store(Pi + j, wasm_f32x4_mul(wasm_v128_load(Pi + j), inv));
        for (; j < n; j++) Pi[j] *= wasm_f32x4_extract_lane(inv, 0);
        zero(Pi + n, T - n);
        combine(ob + i * qs, Pi, 1, vb, ks, n, d, 0);
      }
    }
  }
}

/* Backward of attention_forward. Given dO [B,T,H,d], the saved probs and the same keyMask:
 *   dP_ij = dO_i·v_j;  dS_ij = p_ij (dP_ij − Σ_j' p_ij' dP_ij')·scale;
 *   dQ_i = Σ_j dS_ij k_j;  dK_j = Σ_i dS_ij q_i;  dV_j = Σ_i p_ij dO_i   (over the keys row i
 *   attends to). dq [B,T,H,d] is overwritten; dk, dv [B,T,Hkv,d] are overwritten (summed over
 *   the G query heads that share a kv head). scratch: T·T floats (dS of one head). */
EXPORT(attention_backward)
void attention_backward(const float* dO, const float* q, const float* k, const float* v,
                        const float* probs, const float* keyMask, float* dq, float* dk, float* dv,
                        float* scratch, int B, int T, int H, int Hkv, int d, float scale) {
  const int G = H / Hkv;
  const int qs = H * d, ks = Hkv * d;
  float* dS = scratch;
  for (int b = 0; b < B; b++) {
    const float* mask = keyMask ? keyMask + b * T : 0;
    /* rows with no real key up to the query attend to every key (see the forward): then a key's
     * column sums start at row 0 instead of at the key's own row */
    const int allRows = mask && mask[0] == 0.0f;
    for (int h = 0; h < H; h++) {
      const float* qb = q + b * T * qs + h * d;
      const float* kb = k + b * T * ks + (h / G) * d;
      const float* vb = v + b * T * ks + (h / G) * d;
      const float* dob = dO + b * T * qs + h * d;
      const float* P = probs + (b * H + h) * T * T;
      const int first = h % G == 0; /* the first query head of a kv head overwrites dk, dv */
      for (int i = 0; i < T; i++) {
        const float* Pi = P + i * T;
        float* dSi = dS + i * T;
        const int n = row_keys(mask, i, T);
        dots(dSi, dob + i * qs, vb, ks, n, d);
        v128_t acc = wasm_f32x4_splat(0.0f);
        int j = 0;
        for (; j + 4 <= n; j += 4) acc = wasm_f32x4_add(acc, wasm_f32x4_mul(wasm_v128_load(Pi + j), wasm_v128_load(dSi + j)));
        float delta = hsum(acc);
        for (; j < n; j++) delta += Pi[j] * dSi[j];
        for (j = 0; j < n; j++) dSi[j] = Pi[j] * (dSi[j] - delta) * scale;
        zero(dSi + n, T - n);
        combine(dq + b * T * qs + h * d + i * qs, dSi, 1, kb, ks, n, d, 0);
      }
      float* dkb = dk + b * T * ks + (h / G) * d;
      float* dvb = dv + b * T * ks + (h / G) * d;
      for (int j = 0; j < T; j++) {
        const int lo = allRows ? 0 : j;
        combine(dkb + j * ks, dS + lo * T + j, T, qb + lo * qs, qs, T - lo, d, !first);
        combine(dvb + j * ks, P + lo * T + j, T, dob + lo * qs, qs, T - lo, d, !first);
      }
    }
  }
}
/* ------------------------------------------------------------------------------------------ */
/* LayerNorm over rows of D floats (D a multiple of 4):
 *   μ = mean(x), r = 1/√(mean((x − μ)²) + ε), y = (x − μ)·r·γ (+ β); mean[n] = μ, rstd[n] = r. */
EXPORT(layernorm_forward)
void layernorm_forward(const float* x, const float* gamma, const float* beta, float* y,
                       float* mean, float* rstd, int N, int D, float eps) {
  const v128_t zero4 = wasm_f32x4_splat(0.0f);
  for (int n = 0; n < N; n++) {
    const float* xr = x + n * D;
    float* yr = y + n * D;
    v128_t s = zero4;
    for (int j = 0; j < D; j += 4) s = wasm_f32x4_add(s, wasm_v128_load(xr + j));
    const float mu = hsum(s) / (float)D;
    const v128_t m4 = wasm_f32x4_splat(mu);
    v128_t ss = zero4;
    for (int j = 0; j < D; j += 4) {
      v128_t c = wasm_f32x4_sub(wasm_v128_load(xr + j), m4);
      ss = wasm_f32x4_add(ss, wasm_f32x4_mul(c, c));
    }
    const float r = 1.0f / __builtin_sqrtf(hsum(ss) / (float)D + eps);
    const v128_t r4 = wasm_f32x4_splat(r);
    for (int j = 0; j < D; j += 4) {
      v128_t v = wasm_f32x4_mul(wasm_f32x4_mul(wasm_f32x4_sub(wasm_v128_load(xr + j), m4), r4), wasm_v128_load(gamma + j));
      if (beta) v = wasm_f32x4_add(v, wasm_v128_load(beta + j));
      wasm_v128_store(yr + j, v);
    }
    mean[n] = mu;
    rstd[n] = r;
  }
}

/* Backward: x̂ = (x − μ)·r, g = dy·γ:  dx = r·(g − mean(g) − x̂·mean(g·x̂)) (overwritten);
 * dgamma = Σ_n dy·x̂, dbeta = Σ_n dy (overwritten). */
EXPORT(layernorm_backward)
void layernorm_backward(const float* dy, const float* x, const float* gamma, const float* mean,
                        const float* rstd, float* dx, float* dgamma, float* dbeta, int N, int D) {
  const v128_t zero4 = wasm_f32x4_splat(0.0f);
  zero(dgamma, D);
  zero(dbeta, D);
  const float invD = 1.0f / (float)D;
  for (int n = 0; n < N; n++) {
    const float* xr = x + n * D;
    const float* dr = dy + n * D;
    float* dxr = dx + n * D;
    const v128_t m4 = wasm_f32x4_splat(mean[n]);
    const v128_t r4 = wasm_f32x4_splat(rstd[n]);
    v128_t sg = zero4, sgx = zero4;
    for (int j = 0; j < D; j += 4) {
      v128_t d = wasm_v128_load(dr + j);
      v128_t xh = wasm_f32x4_mul(wasm_f32x4_sub(wasm_v128_load(xr + j), m4), r4);
      v128_t g = wasm_f32x4_mul(d, wasm_v128_load(gamma + j));
      sg = wasm_f32x4_add(sg, g);
      sgx = wasm_f32x4_add(sgx, wasm_f32x4_mul(g, xh));
      wasm_v128_store(dgamma + j, wasm_f32x4_add(wasm_v128_load(dgamma + j), wasm_f32x4_mul(d, xh)));
      wasm_v128_store(dbeta + j, wasm_f32x4_add(wasm_v128_load(dbeta + j), d));
    }
    const v128_t mg = wasm_f32x4_splat(hsum(sg) * invD);
    const v128_t mgx = wasm_f32x4_splat(hsum(sgx) * invD);
    for (int j = 0; j < D; j += 4) {
      v128_t xh = wasm_f32x4_mul(wasm_f32x4_sub(wasm_v128_load(xr + j), m4), r4);
      v128_t g = wasm_f32x4_mul(wasm_v128_load(dr + j), wasm_v128_load(gamma + j));
      v128_t t = wasm_f32x4_sub(wasm_f32x4_sub(g, mg), wasm_f32x4_mul(xh, mgx));
      wasm_v128_store(dxr + j, wasm_f32x4_mul(t, r4));
    }
  }
}

/* ------------------------------------------------------------------------------------------ */
/* GELU (tanh form) = x·σ(2u), u = c(x + a x³):  forward y, backward dx = dy·(s + x·s(1−s)·(2c + 6ca x²)).
 * n a multiple of 4. */
#define GELU_2C 1.5957691216057308f   /* 2·√(2/π) */
#define GELU_2CA 0.0713548162726f     /* 2·√(2/π)·0.044715 */

static inline v128_t sigmoid4(v128_t z) {
  const v128_t one = wasm_f32x4_splat(1.0f);
  return wasm_f32x4_div(one, wasm_f32x4_add(one, exp4(wasm_f32x4_neg(z))));
}

EXPORT(gelu_forward)
void gelu_forward(const float* x, float* y, int n) {
  for (int i = 0; i < n; i += 4) {
    v128_t v = wasm_v128_load(x + i);
    v128_t x2 = wasm_f32x4_mul(v, v);
    v128_t z = wasm_f32x4_mul(v, wasm_f32x4_add(wasm_f32x4_mul(x2, wasm_f32x4_splat(GELU_2CA)), wasm_f32x4_splat(GELU_2C)));
    wasm_v128_store(y + i, wasm_f32x4_mul(v, sigmoid4(z)));
  }
}

EXPORT(gelu_backward)
void gelu_backward(const float* dy, const float* x, float* dx, int n) {
  const v128_t one = wasm_f32x4_splat(1.0f);
  for (int i = 0; i < n; i += 4) {
    v128_t v = wasm_v128_load(x + i);
    v128_t x2 = wasm_f32x4_mul(v, v);
    v128_t z = wasm_f32x4_mul(v, wasm_f32x4_add(wasm_f32x4_mul(x2, wasm_f32x4_splat(GELU_2CA)), wasm_f32x4_splat(GELU_2C)));
    v128_t s = sigmoid4(z);
    v128_t dz = wasm_f32x4_add(wasm_f32x4_mul(x2, wasm_f32x4_splat(3.0f * GELU_2CA)), wasm_f32x4_splat(GELU_2C));
    v128_t ds = wasm_f32x4_mul(s, wasm_f32x4_sub(one, s));
    v128_t g = wasm_f32x4_add(s, wasm_f32x4_mul(wasm_f32x4_mul(v, dz), ds));
    wasm_v128_store(dx + i, wasm_f32x4_mul(wasm_v128_load(dy + i), g));
  }
}

/* ------------------------------------------------------------------------------------------ */
/* dst[b][j][i] = src[b][i][j] for `batch` row-major [r, c] matrices: 4×4 blocks transposed in
 * registers, visited in 32×32 tiles. */
EXPORT(transpose)
void transpose(const float* src, float* dst, int batch, int r, int c) {
  for (int b = 0; b < batch; b++) {
    const float* s = src + b * r * c;
    float* t = dst + b * r * c;
    for (int i0 = 0; i0 < r; i0 += 32) {
      const int i1 = i0 + 32 < r ? i0 + 32 : r;
      for (int j0 = 0; j0 < c; j0 += 32) {
        const int j1 = j0 + 32 < c ? j0 + 32 : c;
        int i = i0;
        for (; i + 4 <= i1; i += 4) {
          int j = j0;
          for (; j + 4 <= j1; j += 4) {
            v128_t a = wasm_v128_load(s + i * c + j);
            v128_t b1 = wasm_v128_load(s + (i + 1) * c + j);
            v128_t c2 = wasm_v128_load(s + (i + 2) * c + j);
            v128_t d = wasm_v128_load(s + (i + 3) * c + j);
            v128_t ab0 = wasm_i32x4_shuffle(a, b1, 0, 4, 1, 5);
            v128_t ab1 = wasm_i32x4_shuffle(a, b1, 2, 6, 3, 7);
            v128_t cd0 = wasm_i32x4_shuffle(c2, d, 0, 4, 1, 5);
            v128_t cd1 = wasm_i32x4_shuffle(c2, d, 2, 6, 3, 7);
            wasm_v128_store(t + j * r + i, wasm_i32x4_shuffle(ab0, cd0, 0, 1, 4, 5));
            wasm_v128_store(t + (j + 1) * r + i, wasm_i32x4_shuffle(ab0, cd0, 2, 3, 6, 7));
            wasm_v128_store(t + (j + 2) * r + i, wasm_i32x4_shuffle(ab1, cd1, 0, 1, 4, 5));
            wasm_v128_store(t + (j + 3) * r + i, wasm_i32x4_shuffle(ab1, cd1, 2, 3, 6, 7));
          }
          for (; j < j1; j++)
            for (int ii = i; ii < i + 4; ii++) t[j * r + ii] = s[ii * c + j];
        }
        for (; i < i1; i++)
          for (int j = j0; j < j1; j++) t[j * r + i] = s[i * c + j];
      }
    }
  }
}

/* out[j] = Σ_n x[n·cols + j]: a sum over the leading rows. Two levels (blocks of 32 rows, then
 * the block sums) keep the float32 rounding error near that of a pairwise sum. */
#define SUM_BLOCK 32
EXPORT(sum_rows)
void sum_rows(const float* x, float* out, int rows, int cols) {
  const v128_t z = wasm_f32x4_splat(0.0f);
  int j = 0;
  for (; j + 16 <= cols; j += 16) {
    v128_t t0 = z, t1 = z, t2 = z, t3 = z;
    for (int n0 = 0; n0 < rows; n0 += SUM_BLOCK) {
      const int n1 = n0 + SUM_BLOCK < rows ? n0 + SUM_BLOCK : rows;
      v128_t a0 = z, a1 = z, a2 = z, a3 = z;
      for (int n = n0; n < n1; n++) {
        const float* xr = x + n * cols + j;
        a0 = wasm_f32x4_add(a0, wasm_v128_load(xr));
        a1 = wasm_f32x4_add(a1, wasm_v128_load(xr + 4));
        a2 = wasm_f32x4_add(a2, wasm_v128_load(xr + 8));
        a3 = wasm_f32x4_add(a3, wasm_v128_load(xr + 12));
      }
      t0 = wasm_f32x4_add(t0, a0);
      t1 = wasm_f32x4_add(t1, a1);
      t2 = wasm_f32x4_add(t2, a2);
      t3 = wasm_f32x4_add(t3, a3);
    }
    wasm_v128_store(out + j, t0);
    wasm_v128_store(out + j + 4, t1);
    wasm_v128_store(out + j + 8, t2);
    wasm_v128_store(out + j + 12, t3);
  }
  for (; j + 4 <= cols; j += 4) {
    v128_t t0 = z;
    for (int n0 = 0; n0 < rows; n0 += SUM_BLOCK) {
      const int n1 = n0 + SUM_BLOCK < rows ? n0 + SUM_BLOCK : rows;
      v128_t a0 = z;
      for (int n = n0; n < n1; n++) a0 = wasm_f32x4_add(a0, wasm_v128_load(x + n * cols + j));
      t0 = wasm_f32x4_add(t0, a0);
    }
    wasm_v128_store(out + j, t0);
  }
  for (; j < cols; j++) {
    float t = 0.0f;
    for (int n0 = 0; n0 < rows; n0 += SUM_BLOCK) {
      const int n1 = n0 + SUM_BLOCK < rows ? n0 + SUM_BLOCK : rows;
      float a = 0.0f;
      for (int n = n0; n < n1; n++) a += x[n * cols + j];
      t += a;
    }
    out[j] = t;
  }
}
