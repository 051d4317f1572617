/*
 * Native kernels for the learner's wasm backend: every one works in place on the wasm memory, which
 * JavaScript passes as a Float32Array over all of it, with offsets in floats (not bytes). See
 * src/mbpo/native-kernels.ts for why and how each is used.
 *
 * sgemm(heap, aOffset, bOffset, outOffset, batch, m, k, n, batchA, batchB, transposeA, transposeB)
 *   out[i] = op(a[i]) · op(b[i]) for i < batch, row-major, through OpenBLAS's cblas_sgemm
 *   (Debian: libopenblas-dev); op(x) = xᵀ where its flag is set; a batch of 1 (batchA or batchB)
 *   is shared by every entry.
 * sumMiddle(heap, xOffset, outOffset, outer, reduced, inner)
 *   x viewed as [outer, reduced, inner]: out[o, i] = Σ_r x[o, r, i], each sum taken in float32 from
 *   r = 0 upwards, the order tfjs-backend-wasm's Sum kernel adds in: the results are bit for bit its.
 * biasSilu(heap, xOffset, biasOffset, outOffset, batch, rows, cols)
 *   out = SiLU(x + bias) = z · σ(z), x and out [batch, rows, cols], bias [batch, 1, cols];
 *   biasSiluGrad(heap, dyOffset, xOffset, biasOffset, outOffset, batch, rows, cols) is its
 *   derivative times dy. σ is our own (sigmoid_vectorisable), so these agree with tfjs's Add, Sigmoid
 *   and Multiply to float32 rounding, not bit for bit.
 * biasRelu(heap, xOffset, biasOffset, outOffset, batch, rows, cols), biasReluGrad(…): the same
 *   for max(z, 0), exactly tfjs's Add and Relu (and dy · step(z) backward).
 * tanhGaussian(…), tanhGaussianGrad(…): SAC's tanh-squashed Gaussian policy, action and log π, and
 *   its gradient (see the functions), to float32 rounding.
 * gaussianHead(heap, raw, maxLogvar, minLogvar, mean, logvar, batch, rows, out) and
 *   gaussianHeadGrad(…): the ensemble's output layer, raw [batch, rows, 2·out] into the mean and the
 *   soft-bounded log-variance (see the functions), to float32 rounding.
 * mlpForward(heap, xOffset, outOffset, members, rows, xShared, layout): the ensemble's whole
 *   network for inference, block of rows by block of rows (see the function).
 * sumOfSquares(heap, xOffset, outOffset, count): Σ x² (a weight decay), in 16 partial sums.
 * adam(heap, valueOffset, mOffset, vOffset, gradOffset, valueOut, mOut, vOut, count, constants)
 *   one Adam step of `count` parameters into three outputs apart from every operand, with tfjs-core's AdamOptimizer's float32
 *   operations in its order (see the function), so bit for bit what its eleven kernels give;
 *   `constants` is a Float32Array [β₁, 1 − β₁, β₂, 1 − β₂, 1 − β₁ᵗ, 1 − β₂ᵗ, −lr, ε].
 *
 * Every operand is checked to lie inside `heap` before anything is written: a wrong offset is a
 * RangeError in JavaScript, never a write outside the wasm memory. The build turns off the
 * contraction of a·b + c into one fused multiply-add (-ffp-contract=off): it rounds once instead of
 * twice, and the bit-for-bit claims above would not hold on a CPU that has it. It allows the
 * compiler to assume that no floating-point exception traps (-fno-trapping-math, -fno-math-errno),
 * without which the clamp in sigmoid_vectorisable and sqrtf are not vectorised; neither changes a
 * result.
 *
 * OpenBLAS is set to one thread when the addon loads: every kernel runs in the caller's thread.
 */
#include <cblas.h>
#include <node_api.h>
#include <stdbool.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

/*
 * Where the compiler can, the element-wise loops below are built twice, for AVX2 (8 floats a
 * register) and for the baseline (SSE2 on x86-64: 4), and the loader picks the one the CPU runs.
 * Both do the same float32 operations (no fused multiply-add: -ffp-contract=off), so they give the
 * same bits.
 */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define VECTOR_CLONES __attribute__((target_clones("avx2", "default")))
#else
#define VECTOR_CLONES
#endif

/* OpenBLAS's thread count (not in cblas.h). */
void openblas_set_num_threads(int num_threads);

#define MAX_ARGS 12

static napi_value fail(napi_env env, const char* code, const char* message) {
  napi_throw_range_error(env, code, message);
  return NULL;
}

static bool inside(int64_t offset, int64_t count, int64_t length) {
  return offset >= 0 && count >= 0 && offset <= length && count <= length - offset;
}

/*
 * Reads a call's arguments: the heap (a Float32Array) first, then `count` integers into v, then
 * `extra` arguments the caller reads itself (left in argv). False, with a RangeError thrown, when
 * the number of arguments or a type is wrong.
 */
static bool read_arguments(napi_env env, napi_callback_info info, const char* name, size_t count,
                           size_t extra, napi_value* argv, float** heap, int64_t* length,
                           int64_t* v) {
  size_t argc = MAX_ARGS + 1;
  char message[96];
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc != 1 + count + extra) {
    snprintf(message, sizeof message, "%s: expected %zu arguments", name, 1 + count + extra);
    fail(env, "EARGS", message);
    return false;
  }
  napi_typedarray_type type;
  size_t elements;
  void* data;
  if (napi_get_typedarray_info(env, argv[0], &type, &elements, &data, NULL, NULL) != napi_ok ||
      type != napi_float32_array) {
    snprintf(message, sizeof message, "%s: the heap must be a Float32Array", name);
    fail(env, "EHEAP", message);
    return false;
  }
  *heap = (float*)data;
  *length = (int64_t)elements;
  for (size_t i = 0; i < count; i++) {
    if (napi_get_value_int64(env, argv[i + 1], &v[i]) != napi_ok) {
      snprintf(message, sizeof message, "%s: offsets and sizes must be numbers", name);
      fail(env, "EARGS", message);
      return false;
    }
  }
  return true;
}

/* Sizes that fit an int for BLAS and whose products cannot overflow int64. */
static bool size_ok(int64_t size) { return size >= 0 && size <= ((int64_t)1 << 30); }

static napi_value Sgemm(napi_env env, napi_callback_info info) {
  napi_value argv[MAX_ARGS + 1];
  float* heap;
  int64_t len;
  int64_t v[11];
  if (!read_arguments(env, info, "sgemm", 11, 0, argv, &heap, &len, v)) return NULL;
  const int64_t aOffset = v[0], bOffset = v[1], outOffset = v[2], batch = v[3];
  const int64_t m = v[4], k = v[5], n = v[6], batchA = v[7], batchB = v[8];
  const bool transA = v[9] != 0, transB = v[10] != 0;
  if (!size_ok(batch) || !size_ok(m) || !size_ok(k) || !size_ok(n))
    return fail(env, "ESIZE", "sgemm: sizes out of range");
  if (!((batchA == batch || batchA == 1) && (batchB == batch || batchB == 1)))
    return fail(env, "EBATCH", "sgemm: batches must match or be 1");
  /* One matrix larger than the heap is out of bounds; checked first, so batch · m · k cannot overflow. */
  if (m * k > len || k * n > len || m * n > len)
    return fail(env, "EBOUNDS", "sgemm: an operand lies outside the heap");
  if (!inside(aOffset, batchA * m * k, len) || !inside(bOffset, batchB * k * n, len) ||
      !inside(outOffset, batch * m * n, len))
    return fail(env, "EBOUNDS", "sgemm: an operand lies outside the heap");
  for (int64_t i = 0; i < batch; i++) {
    const float* a = heap + aOffset + (batchA == 1 ? 0 : i * m * k);
    const float* b = heap + bOffset + (batchB == 1 ? 0 : i * k * n);
    float* out = heap + outOffset + i * m * n;
    if (m == 0 || n == 0) continue;
    if (k == 0) {
      for (int64_t j = 0; j < m * n; j++) out[j] = 0.0f;
      continue;
    }
    cblas_sgemm(CblasRowMajor, transA ? CblasTrans : CblasNoTrans, transB ? CblasTrans : CblasNoTrans,
                (int)m, (int)n, (int)k, 1.0f, a, (int)(transA ? m : k), b, (int)(transB ? k : n), 0.0f,
                out, (int)n);
  }
  return NULL;
}

static napi_value SumMiddle(napi_env env, napi_callback_info info) {
  napi_value argv[MAX_ARGS + 1];
  float* heap;
  int64_t len;
  int64_t v[5];
  if (!read_arguments(env, info, "sumMiddle", 5, 0, argv, &heap, &len, v)) return NULL;
  const int64_t xOffset = v[0], outOffset = v[1], outer = v[2], reduced = v[3], inner = v[4];
  if (!size_ok(outer) || !size_ok(reduced) || !size_ok(inner) || !size_ok(outer * inner) ||
      !size_ok(reduced * inner))
    return fail(env, "ESIZE", "sumMiddle: sizes out of range");
  if (!inside(xOffset, outer * reduced * inner, len) || !inside(outOffset, outer * inner, len))
    return fail(env, "EBOUNDS", "sumMiddle: an operand lies outside the heap");
  const int64_t xEnd = xOffset + outer * reduced * inner, outEnd = outOffset + outer * inner;
  if (xOffset < outEnd && outOffset < xEnd)
    return fail(env, "EOVERLAP", "sumMiddle: the output overlaps the input");
  for (int64_t o = 0; o < outer; o++) {
    float* restrict out = heap + outOffset + o * inner;
    const float* restrict x = heap + xOffset + o * reduced * inner;
    if (inner == 1) { /* a sum to one number: kept in a register, not stored back each time */
      float total = 0.0f;
      for (int64_t r = 0; r < reduced; r++) total += x[r];
      out[0] = total;
      continue;
    }
    for (int64_t i = 0; i < inner; i++) out[i] = 0.0f;
    /* Row after row: every out[i] adds x[0, i], x[1, i], … in that order, vectorised across i. */
    for (int64_t r = 0; r < reduced; r++) {
      const float* restrict row = x + r * inner;
      for (int64_t i = 0; i < inner; i++) out[i] += row[i];
    }
  }
  return NULL;
}

enum { BETA1, ONE_MINUS_BETA1, BETA2, ONE_MINUS_BETA2, ONE_MINUS_ACC1, ONE_MINUS_ACC2, NEG_LR, EPSILON, CONSTANTS };

/* The step itself, on arrays that do not overlap (checked by the caller). */
VECTOR_CLONES
static void adam_step(const float* restrict value, const float* restrict m, const float* restrict s,
                      const float* restrict g, float* restrict valueOut, float* restrict mOut,
                      float* restrict sOut, int64_t n, const float* c) {
  const float beta1 = c[BETA1], oneMinusBeta1 = c[ONE_MINUS_BETA1], beta2 = c[BETA2];
  const float oneMinusBeta2 = c[ONE_MINUS_BETA2], oneMinusAcc1 = c[ONE_MINUS_ACC1];
  const float oneMinusAcc2 = c[ONE_MINUS_ACC2], negLr = c[NEG_LR], epsilon = c[EPSILON];
  /* tfjs-core 4.x AdamOptimizer.applyGradients, one float32 rounding per operation: */
  for (int64_t i = 0; i < n; i++) {
    const float gi = g[i];
    const float m1 = m[i] * beta1 + gi * oneMinusBeta1;          /* add(mul(m, β₁), mul(g, 1 − β₁)) */
    const float v1 = s[i] * beta2 + (gi * gi) * oneMinusBeta2;   /* add(mul(v, β₂), mul(square(g), 1 − β₂)) */
    const float mHat = m1 / oneMinusAcc1;                        /* div(m′, 1 − β₁ᵗ) */
    const float vHat = v1 / oneMinusAcc2;                        /* div(v′, 1 − β₂ᵗ) */
    const float step = (mHat / (sqrtf(vHat) + epsilon)) * negLr; /* mul(div(m̂, add(sqrt(v̂), ε)), −lr) */
    valueOut[i] = step + value[i];                               /* add(…, value) */
    mOut[i] = m1;
    sOut[i] = v1;
  }
}

static napi_value Adam(napi_env env, napi_callback_info info) {
  napi_value argv[MAX_ARGS + 1];
  float* heap;
  int64_t len;
  int64_t v[8];
  if (!read_arguments(env, info, "adam", 8, 1, argv, &heap, &len, v)) return NULL;
  napi_typedarray_type type;
  size_t constantCount;
  void* constantData;
  if (napi_get_typedarray_info(env, argv[9], &type, &constantCount, &constantData, NULL, NULL) !=
          napi_ok ||
      type != napi_float32_array || constantCount != CONSTANTS)
    return fail(env, "EARGS", "adam: constants must be a Float32Array of 8");
  const int64_t n = v[7];
  if (!size_ok(n)) return fail(env, "ESIZE", "adam: count out of range");
  for (int i = 0; i < 7; i++) {
    if (!inside(v[i], n, len)) return fail(env, "EBOUNDS", "adam: an operand lies outside the heap");
  }
  /* Outputs apart from every operand (restrict below), so that the loop runs in vector registers. */
  for (int o = 4; o < 7; o++) {
    for (int i = 0; i < 7; i++) {
      if (i != o && v[i] < v[o] + n && v[o] < v[i] + n)
        return fail(env, "EOVERLAP", "adam: an output overlaps another operand");
    }
  }
  adam_step(heap + v[0], heap + v[1], heap + v[2], heap + v[3], heap + v[4], heap + v[5], heap + v[6],
            n, (const float*)constantData);
  return NULL;
}

/*
 * e^x for x ≤ 0 in float32, written so that the compiler runs it on whole vector registers (no call,
 * no branch): x = n·ln 2 + r, n = round(x / ln 2), |r| ≤ ln 2 / 2; e^r from Cephes's polynomial for
 * expf (relative error about 2⁻²³), 2^n put straight into the exponent bits. Below −87.3 (e^x <
 * 1.2·10⁻³⁸) x is clamped, which changes what the callers below compute by less than that. NaN
 * stays NaN.
 */
static inline float exp_nonpositive(float x) {
  x = x < -87.3f ? -87.3f : x;
  const float shifter = 12582912.0f; /* 1.5 · 2²³: adding and taking it away rounds to an integer */
  const float n = (x * 1.44269504088896341f + shifter) - shifter;
  float r = x - n * 0.693359375f; /* ln 2 in two parts (Cephes C1, C2), so that r is exact */
  r = r - n * -2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  union {
    int32_t bits;
    float value;
  } scale = {.bits = ((int32_t)n + 127) << 23};
  return (p * (r * r) + r + 1.0f) * scale.value;
}

/*
 * σ(z) = 1 / (1 + e^−z), vectorisable: with e = e^−|z| ≤ 1, σ(|z|) = 1 / (1 + e), and
 * σ(z) = e · σ(|z|) for z < 0, so that e^x is only needed for x ≤ 0.
 */
static inline float sigmoid_vectorisable(float z) {
  const float e = exp_nonpositive(-fabsf(z));
  const float positive = 1.0f / (1.0f + e); /* σ(|z|) */
  return z < 0.0f ? e * positive : positive;
}

/*
 * softplus(x) = log(1 + eˣ) = max(x, 0) + log1p(e^−|x|), vectorisable: with t = e^−|x| ∈ (0, 1] and
 * s = t / (2 + t) ∈ (0, 1/3], log1p(t) = 2 atanh(s) = 2s (1 + s²/3 + s⁴/5 + … + s¹⁴/15), the rest
 * below 2⁻²⁸ of it; accurate relative to t however small t is.
 */
static inline float softplus_vectorisable(float x) {
  const float t = exp_nonpositive(-fabsf(x));
  const float s = t / (2.0f + t);
  const float s2 = s * s;
  float q = 1.0f / 15.0f;
  q = q * s2 + 1.0f / 13.0f;
  q = q * s2 + 1.0f / 11.0f;
  q = q * s2 + 1.0f / 9.0f;
  q = q * s2 + 1.0f / 7.0f;
  q = q * s2 + 1.0f / 5.0f;
  q = q * s2 + 1.0f / 3.0f;
  q = q * s2 + 1.0f;
  return (x > 0.0f ? x : 0.0f) + 2.0f * s * q;
}

/* Reads the operands of the bias-and-activation kernels: count arrays of [batch, rows, cols] after the
   heap, the bias [batch, 1, cols] among them at index biasIndex, the sizes last. */
static bool read_layer(napi_env env, napi_callback_info info, const char* name, int arrays,
                       int biasIndex, float** heap, int64_t* offsets, int64_t* batch, int64_t* rows,
                       int64_t* cols) {
  napi_value argv[MAX_ARGS + 1];
  int64_t len;
  int64_t v[MAX_ARGS];
  char message[96];
  if (!read_arguments(env, info, name, arrays + 3, 0, argv, heap, &len, v)) return false;
  *batch = v[arrays], *rows = v[arrays + 1], *cols = v[arrays + 2];
  if (!size_ok(*batch) || !size_ok(*rows) || !size_ok(*cols) || !size_ok(*rows * *cols) ||
      !size_ok(*batch * *cols)) {
    snprintf(message, sizeof message, "%s: sizes out of range", name);
    fail(env, "ESIZE", message);
    return false;
  }
  for (int i = 0; i < arrays; i++) {
    const int64_t count = *batch * (i == biasIndex ? 1 : *rows) * *cols;
    if (!inside(v[i], count, len)) {
      snprintf(message, sizeof message, "%s: an operand lies outside the heap", name);
      fail(env, "EBOUNDS", message);
      return false;
    }
    offsets[i] = v[i];
  }
  /* The output (the last array) may not overlap an input: the loops below read as they write. */
  const int out = arrays - 1;
  const int64_t outEnd = offsets[out] + *batch * *rows * *cols;
  for (int i = 0; i < out; i++) {
    const int64_t end = offsets[i] + *batch * (i == biasIndex ? 1 : *rows) * *cols;
    if (offsets[i] < outEnd && offsets[out] < end) {
      snprintf(message, sizeof message, "%s: the output overlaps an input", name);
      fail(env, "EOVERLAP", message);
      return false;
    }
  }
  return true;
}

VECTOR_CLONES
static void bias_silu(const float* restrict x, const float* restrict bias, float* restrict out,
                      int64_t batch, int64_t rows, int64_t cols) {
  for (int64_t b = 0; b < batch; b++) {
    for (int64_t r = 0; r < rows; r++) {
      const float* restrict xRow = x + (b * rows + r) * cols;
      const float* restrict biasRow = bias + b * cols;
      float* restrict outRow = out + (b * rows + r) * cols;
      for (int64_t j = 0; j < cols; j++) {
        const float z = xRow[j] + biasRow[j];
        outRow[j] = z * sigmoid_vectorisable(z);
      }
    }
  }
}

VECTOR_CLONES
static void bias_silu_grad(const float* restrict dy, const float* restrict x, const float* restrict bias,
                           float* restrict out, int64_t batch, int64_t rows, int64_t cols) {
  for (int64_t b = 0; b < batch; b++) {
    for (int64_t r = 0; r < rows; r++) {
      const int64_t row = (b * rows + r) * cols;
      const float* restrict biasRow = bias + b * cols;
      for (int64_t j = 0; j < cols; j++) {
        const float z = x[row + j] + biasRow[j];
        const float s = sigmoid_vectorisable(z);
        out[row + j] = dy[row + j] * (s * (1.0f + z * (1.0f - s))); /* (z σ)′ = σ (1 + z (1 − σ)) */
      }
    }
  }
}

VECTOR_CLONES
static void bias_relu(const float* restrict x, const float* restrict bias, float* restrict out,
                      int64_t batch, int64_t rows, int64_t cols) {
  for (int64_t b = 0; b < batch; b++) {
    for (int64_t r = 0; r < rows; r++) {
      const int64_t row = (b * rows + r) * cols;
      const float* restrict biasRow = bias + b * cols;
      for (int64_t j = 0; j < cols; j++) {
        const float z = x[row + j] + biasRow[j];
        out[row + j] = z < 0.0f ? 0.0f : z; /* NaN stays NaN */
      }
    }
  }
}

VECTOR_CLONES
static void bias_relu_grad(const float* restrict dy, const float* restrict x, const float* restrict bias,
                           float* restrict out, int64_t batch, int64_t rows, int64_t cols) {
  for (int64_t b = 0; b < batch; b++) {
    for (int64_t r = 0; r < rows; r++) {
      const int64_t row = (b * rows + r) * cols;
      const float* restrict biasRow = bias + b * cols;
      for (int64_t j = 0; j < cols; j++) {
        const float z = x[row + j] + biasRow[j];
        const float step = z > 0.0f ? 1.0f : 0.0f;
        out[row + j] = dy[row + j] * (z != z ? z : step); /* tfjs's mul(dy, step(z)): NaN where z is */
      }
    }
  }
}

/* biasSilu(heap, x, bias, out, batch, rows, cols): out = SiLU(x + bias), bias [batch, 1, cols]. */
static napi_value BiasSilu(napi_env env, napi_callback_info info) {
  float* heap;
  int64_t o[3], batch, rows, cols;
  if (!read_layer(env, info, "biasSilu", 3, 1, &heap, o, &batch, &rows, &cols)) return NULL;
  bias_silu(heap + o[0], heap + o[1], heap + o[2], batch, rows, cols);
  return NULL;
}

/* biasSiluGrad(heap, dy, x, bias, out, batch, rows, cols): out = dy · SiLU′(x + bias). */
static napi_value BiasSiluGrad(napi_env env, napi_callback_info info) {
  float* heap;
  int64_t o[4], batch, rows, cols;
  if (!read_layer(env, info, "biasSiluGrad", 4, 2, &heap, o, &batch, &rows, &cols)) return NULL;
  bias_silu_grad(heap + o[0], heap + o[1], heap + o[2], heap + o[3], batch, rows, cols);
  return NULL;
}

/* biasRelu(heap, x, bias, out, batch, rows, cols): out = max(x + bias, 0), bias [batch, 1, cols]. */
static napi_value BiasRelu(napi_env env, napi_callback_info info) {
  float* heap;
  int64_t o[3], batch, rows, cols;
  if (!read_layer(env, info, "biasRelu", 3, 1, &heap, o, &batch, &rows, &cols)) return NULL;
  bias_relu(heap + o[0], heap + o[1], heap + o[2], batch, rows, cols);
  return NULL;
}

/* biasReluGrad(heap, dy, x, bias, out, batch, rows, cols): out = dy · step(x + bias). */
static napi_value BiasReluGrad(napi_env env, napi_callback_info info) {
  float* heap;
  int64_t o[4], batch, rows, cols;
  if (!read_layer(env, info, "biasReluGrad", 4, 2, &heap, o, &batch, &rows, &cols)) return NULL;
  bias_relu_grad(heap + o[0], heap + o[1], heap + o[2], heap + o[3], batch, rows, cols);
  return NULL;
}

/* Reads the operands of tanhGaussian and its gradient: `arrays` offsets, then rows and the action
   size A, then the two log σ bounds (numbers). The arrays' sizes: `columns[i]` floats per row. */
static bool read_policy(napi_env env, napi_callback_info info, const char* name, int arrays,
                        const int* columns, float** heap, int64_t* offsets, int64_t* rows,
                        int64_t* actions, float* bounds) {
  napi_value argv[MAX_ARGS + 1];
  int64_t len;
  int64_t v[MAX_ARGS];
  char message[96];
  if (!read_arguments(env, info, name, arrays + 2, 2, argv, heap, &len, v)) return false;
  double lo, hi;
  if (napi_get_value_double(env, argv[arrays + 3], &lo) != napi_ok ||
      napi_get_value_double(env, argv[arrays + 4], &hi) != napi_ok || !(lo <= hi)) {
    snprintf(message, sizeof message, "%s: the log-σ bounds must be numbers, the lower first", name);
    fail(env, "EARGS", message);
    return false;
  }
  bounds[0] = (float)lo, bounds[1] = (float)hi;
  *rows = v[arrays], *actions = v[arrays + 1];
  if (!size_ok(*rows) || !size_ok(*actions) || !size_ok(*rows * 2 * *actions)) {
    snprintf(message, sizeof message, "%s: sizes out of range", name);
    fail(env, "ESIZE", message);
    return false;
  }
  for (int i = 0; i < arrays; i++) {
    const int64_t perRow = columns[i] < 0 ? -columns[i] * *actions : columns[i];
    if (!inside(v[i], *rows * perRow, len)) {
      snprintf(message, sizeof message, "%s: an operand lies outside the heap", name);
      fail(env, "EBOUNDS", message);
      return false;
    }
    offsets[i] = v[i];
  }
  return true;
}

/* Whether an output (arrays from `firstOutput` on) overlaps any other array. */
static bool policy_overlap(const int64_t* o, const int* columns, int arrays, int firstOutput,
                           int64_t rows, int64_t A) {
  for (int out = firstOutput; out < arrays; out++) {
    const int64_t outEnd = o[out] + rows * (columns[out] < 0 ? -columns[out] * A : columns[out]);
    for (int i = 0; i < arrays; i++) {
      const int64_t end = o[i] + rows * (columns[i] < 0 ? -columns[i] * A : columns[i]);
      if (i != out && o[i] < outEnd && o[out] < end) return true;
    }
  }
  return false;
}

/*
 * The tanh-squashed Gaussian policy (src/mbpo/sac.ts: samplePolicy), one row at a time: from the
 * actor's output [μ, log σ] (log σ clamped to the bounds) and noise ε, the action a = tanh(u),
 * u = μ + σε, and log π = Σ_i [−ε_i²/2 − log σ_i − log(2π)/2] − Σ_i 2(log 2 − u_i − softplus(−2u_i)).
 * libm's expf and tanhf: a policy batch is a few thousand numbers.
 * tanhGaussian(heap, meanAndLogStd, noise, action, logProb, rows, A, logStdMin, logStdMax)
 */
static napi_value TanhGaussian(napi_env env, napi_callback_info info) {
  static const int columns[] = {-2, -1, -1, 1}; /* negative: that many times A per row */
  float* heap;
  int64_t o[4], rows, A;
  float bounds[2];
  if (!read_policy(env, info, "tanhGaussian", 4, columns, &heap, o, &rows, &A, bounds)) return NULL;
  if (policy_overlap(o, columns, 4, 2, rows, A))
    return fail(env, "EOVERLAP", "tanhGaussian: an output overlaps an input");
  const float halfLog2Pi = 0.918938533204672742f, log2 = 0.693147180559945309f;
  for (int64_t r = 0; r < rows; r++) {
    const float* mean = heap + o[0] + r * 2 * A;
    const float* rawLogStd = mean + A;
    const float* noise = heap + o[1] + r * A;
    float* action = heap + o[2] + r * A;
    float gaussian = 0.0f, jacobian = 0.0f;
    for (int64_t i = 0; i < A; i++) {
      const float raw = rawLogStd[i];
      const float logStd = raw < bounds[0] ? bounds[0] : raw > bounds[1] ? bounds[1] : raw;
      const float u = mean[i] + expf(logStd) * noise[i];
      action[i] = tanhf(u);
      gaussian += -0.5f * noise[i] * noise[i] - logStd - halfLog2Pi;
      jacobian += 2.0f * (log2 - u - softplus_vectorisable(-2.0f * u));
    }
    heap[o[3] + r] = gaussian - jacobian;
  }
  return NULL;
}

/*
 * Its gradient with respect to [μ, log σ], given dL/da and dL/d log π: with a = tanh(u),
 * ∂a/∂u = 1 − a², ∂ log π/∂u = 2a (the Jacobian term's derivative is −2 tanh u), ∂u/∂μ = 1,
 * ∂u/∂ log σ = σε and ∂ log π/∂ log σ = −1 directly; zero for log σ outside its bounds (the clamp),
 * as tfjs's clipByValue gradient.
 * tanhGaussianGrad(heap, dAction, dLogProb, meanAndLogStd, noise, out, rows, A, logStdMin, logStdMax)
 */
static napi_value TanhGaussianGrad(napi_env env, napi_callback_info info) {
  static const int columns[] = {-1, 1, -2, -1, -2};
  float* heap;
  int64_t o[5], rows, A;
  float bounds[2];
  if (!read_policy(env, info, "tanhGaussianGrad", 5, columns, &heap, o, &rows, &A, bounds))
    return NULL;
  if (policy_overlap(o, columns, 5, 4, rows, A))
    return fail(env, "EOVERLAP", "tanhGaussianGrad: the output overlaps an input");
  for (int64_t r = 0; r < rows; r++) {
    const float* dAction = heap + o[0] + r * A;
    const float dLogProb = heap[o[1] + r];
    const float* mean = heap + o[2] + r * 2 * A;
    const float* rawLogStd = mean + A;
    const float* noise = heap + o[3] + r * A;
    float* dMean = heap + o[4] + r * 2 * A;
    float* dLogStd = dMean + A;
    for (int64_t i = 0; i < A; i++) {
      const float raw = rawLogStd[i];
      const float logStd = raw < bounds[0] ? bounds[0] : raw > bounds[1] ? bounds[1] : raw;
      const float std = expf(logStd);
      const float a = tanhf(mean[i] + std * noise[i]);
      const float dU = dAction[i] * (1.0f - a * a) + dLogProb * 2.0f * a;
      dMean[i] = dU;
      const bool inside = raw >= bounds[0] && raw <= bounds[1];
      dLogStd[i] = inside ? dU * std * noise[i] - dLogProb : 0.0f;
    }
  }
  return NULL;
}

/*
 * The ensemble's output (src/mbpo/ensemble.ts: forward): raw [batch, rows, 2·out] is [μ, ℓ] per
 * row; the log-variance is ℓ bounded softly by the learned per-output bounds:
 *   upper = max − softplus(max − ℓ),   log σ² = min + softplus(upper − min).
 */
VECTOR_CLONES
static void gaussian_head(const float* restrict raw, const float* restrict maxLogvar,
                          const float* restrict minLogvar, float* restrict mean,
                          float* restrict logvar, int64_t rows, int64_t out) {
  for (int64_t r = 0; r < rows; r++) {
    const float* restrict in = raw + r * 2 * out;
    for (int64_t j = 0; j < out; j++) mean[r * out + j] = in[j];
    for (int64_t j = 0; j < out; j++) {
      const float upper = maxLogvar[j] - softplus_vectorisable(maxLogvar[j] - in[out + j]);
      logvar[r * out + j] = minLogvar[j] + softplus_vectorisable(upper - minLogvar[j]);
    }
  }
}

/*
 * Its gradient: with a = max − ℓ and b = upper − min, ∂ log σ²/∂ℓ = σ(b) σ(a),
 * ∂ log σ²/∂max = σ(b) (1 − σ(a)), ∂ log σ²/∂min = 1 − σ(b); per element, so that the caller sums
 * the bounds' terms over the rows.
 */
VECTOR_CLONES
static void gaussian_head_grad(const float* restrict dMean, const float* restrict dLogvar,
                               const float* restrict raw, const float* restrict maxLogvar,
                               const float* restrict minLogvar, float* restrict dRaw,
                               float* restrict dMax, float* restrict dMin, int64_t rows, int64_t out) {
  for (int64_t r = 0; r < rows; r++) {
    const float* restrict in = raw + r * 2 * out;
    float* restrict dIn = dRaw + r * 2 * out;
    for (int64_t j = 0; j < out; j++) dIn[j] = dMean[r * out + j];
    for (int64_t j = 0; j < out; j++) {
      const float a = maxLogvar[j] - in[out + j];
      const float b = maxLogvar[j] - softplus_vectorisable(a) - minLogvar[j];
      const float sa = sigmoid_vectorisable(a), sb = sigmoid_vectorisable(b);
      const float g = dLogvar[r * out + j];
      dIn[out + j] = g * (sb * sa);
      dMax[r * out + j] = g * (sb * (1.0f - sa));
      dMin[r * out + j] = g * (1.0f - sb);
    }
  }
}

/* Checks that none of the outputs (from index firstOutput on) overlaps another array. */
static bool any_overlap(const int64_t* offsets, const int64_t* sizes, int arrays, int firstOutput) {
  for (int o = firstOutput; o < arrays; o++) {
    for (int i = 0; i < arrays; i++) {
      if (i != o && offsets[i] < offsets[o] + sizes[o] && offsets[o] < offsets[i] + sizes[i])
        return true;
    }
  }
  return false;
}

/* Reads count offsets then (rows, out) and checks each array's size (in units of out) fits. */
static bool read_head(napi_env env, napi_callback_info info, const char* name, int arrays,
                      const int* widths, int firstOutput, float** heap, int64_t* offsets,
                      int64_t* rows, int64_t* out) {
  napi_value argv[MAX_ARGS + 1];
  int64_t len;
  int64_t v[MAX_ARGS];
  char message[96];
  if (!read_arguments(env, info, name, arrays + 2, 0, argv, heap, &len, v)) return false;
  *rows = v[arrays], *out = v[arrays + 1];
  if (!size_ok(*rows) || !size_ok(*out) || !size_ok(*rows * 2 * *out)) {
    snprintf(message, sizeof message, "%s: sizes out of range", name);
    fail(env, "ESIZE", message);
    return false;
  }
  int64_t sizes[MAX_ARGS];
  for (int i = 0; i < arrays; i++) {
    /* width w > 0: w·out floats per row; w = 0: out floats in all (a bound) */
    sizes[i] = widths[i] == 0 ? *out : *rows * widths[i] * *out;
    if (!inside(v[i], sizes[i], len)) {
      snprintf(message, sizeof message, "%s: an operand lies outside the heap", name);
      fail(env, "EBOUNDS", message);
      return false;
    }
    offsets[i] = v[i];
  }
  if (any_overlap(offsets, sizes, arrays, firstOutput)) {
    snprintf(message, sizeof message, "%s: an output overlaps another operand", name);
    fail(env, "EOVERLAP", message);
    return false;
  }
  return true;
}

/* gaussianHead(heap, raw, maxLogvar, minLogvar, mean, logvar, rows, out); rows: batch × rows. */
static napi_value GaussianHead(napi_env env, napi_callback_info info) {
  static const int widths[] = {2, 0, 0, 1, 1};
  float* heap;
  int64_t o[5], rows, out;
  if (!read_head(env, info, "gaussianHead", 5, widths, 3, &heap, o, &rows, &out)) return NULL;
  gaussian_head(heap + o[0], heap + o[1], heap + o[2], heap + o[3], heap + o[4], rows, out);
  return NULL;
}

/* gaussianHeadGrad(heap, dMean, dLogvar, raw, maxLogvar, minLogvar, dRaw, dMax, dMin, rows, out). */
static napi_value GaussianHeadGrad(napi_env env, napi_callback_info info) {
  static const int widths[] = {1, 1, 2, 0, 0, 2, 1, 1};
  float* heap;
  int64_t o[8], rows, out;
  if (!read_head(env, info, "gaussianHeadGrad", 8, widths, 5, &heap, o, &rows, &out)) return NULL;
  gaussian_head_grad(heap + o[0], heap + o[1], heap + o[2], heap + o[3], heap + o[4], heap + o[5],
                     heap + o[6], heap + o[7], rows, out);
  return NULL;
}

/*
 * Σ x² in float32, in 16 interleaved partial sums (element i into sum i mod 16) added up in order
 * at the end: vectorised, and the same bits on every CPU and build (each partial sum is its own
 * sequence of float32 additions).
 */
VECTOR_CLONES
static float sum_of_squares(const float* restrict x, int64_t n) {
  float partial[16] = {0};
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    for (int k = 0; k < 16; k++) partial[k] += x[i + k] * x[i + k];
  }
  for (int k = 0; k < 16 && i < n; i++, k++) partial[k] += x[i] * x[i]; /* fewer than 16 left */
  float total = 0.0f;
  for (int k = 0; k < 16; k++) total += partial[k];
  return total;
}

/* sumOfSquares(heap, x, out, count): out[0] = Σ x². */
static napi_value SumOfSquares(napi_env env, napi_callback_info info) {
  napi_value argv[MAX_ARGS + 1];
  float* heap;
  int64_t len;
  int64_t v[3];
  if (!read_arguments(env, info, "sumOfSquares", 3, 0, argv, &heap, &len, v)) return NULL;
  if (!size_ok(v[2])) return fail(env, "ESIZE", "sumOfSquares: count out of range");
  if (!inside(v[0], v[2], len) || !inside(v[1], 1, len))
    return fail(env, "EBOUNDS", "sumOfSquares: an operand lies outside the heap");
  heap[v[1]] = sum_of_squares(heap + v[0], v[2]);
  return NULL;
}

/*
 * A whole multilayer perceptron per member, inference only: for each member and each block of
 * ROW_BLOCK rows, every layer's product (OpenBLAS) and its bias + SiLU run one after the other on
 * two scratch buffers that stay in the CPU's cache, instead of each layer's activations for all rows
 * going out to memory and back (at 8,000 rows and 200 units a layer's activations are 6.4 MB, and
 * the bias + SiLU pass over them was bound by memory bandwidth). Hidden layers SiLU, last linear;
 * the layer-by-layer kernels' float32 operations (sgemm, biasSilu), on blocks of rows: the same to
 * float32 rounding (OpenBLAS may block a product of fewer rows otherwise).
 *
 * mlpForward(heap, xOffset, outOffset, members, rows, xShared, layout)
 *   x [members or 1 (xShared), rows, in]; out [members, rows, out_last];
 *   layout: a Float64Array [in, then per layer: out_k, weightOffset_k, biasOffset_k], weights
 *   [members, in_k, out_k] and biases [members, 1, out_k].
 */
#define ROW_BLOCK 128
#define MAX_LAYERS 16

VECTOR_CLONES
static void bias_silu_block(float* restrict h, const float* restrict bias, int64_t rows, int64_t cols) {
  for (int64_t r = 0; r < rows; r++) {
    for (int64_t j = 0; j < cols; j++) {
      const float z = h[r * cols + j] + bias[j];
      h[r * cols + j] = z * sigmoid_vectorisable(z);
    }
  }
}

static void bias_block(float* restrict h, const float* restrict bias, int64_t rows, int64_t cols) {
  for (int64_t r = 0; r < rows; r++) {
    for (int64_t j = 0; j < cols; j++) h[r * cols + j] += bias[j];
  }
}

static napi_value MlpForward(napi_env env, napi_callback_info info) {
  napi_value argv[MAX_ARGS + 1];
  float* heap;
  int64_t len;
  int64_t v[5];
  if (!read_arguments(env, info, "mlpForward", 5, 1, argv, &heap, &len, v)) return NULL;
  const int64_t xOffset = v[0], outOffset = v[1], members = v[2], rows = v[3], xShared = v[4];
  napi_typedarray_type type;
  size_t count;
  void* data;
  if (napi_get_typedarray_info(env, argv[6], &type, &count, &data, NULL, NULL) != napi_ok ||
      type != napi_float64_array || count < 4 || (count - 1) % 3 != 0 || (count - 1) / 3 > MAX_LAYERS)
    return fail(env, "EARGS", "mlpForward: layout must be a Float64Array [in, (out, weight, bias) per layer]");
  const double* layout = (const double*)data;
  const int layers = (int)((count - 1) / 3);
  int64_t width[MAX_LAYERS + 1], weight[MAX_LAYERS], bias[MAX_LAYERS];
  int64_t widest = 0;
  for (int k = 0; k <= layers; k++) {
    const double w = layout[k == 0 ? 0 : 3 * k - 2];
    if (!(w >= 1 && w <= (double)(1 << 20) && w == (double)(int64_t)w))
      return fail(env, "ESIZE", "mlpForward: layer widths must be whole numbers from 1 to 2^20");
    width[k] = (int64_t)w;
    if (k > 0 && width[k] > widest) widest = width[k];
  }
  if (!size_ok(members) || !size_ok(rows) || members > 1024 || !size_ok(rows * widest) ||
      (xShared != 0 && xShared != 1))
    return fail(env, "ESIZE", "mlpForward: sizes out of range");
  const int64_t xSize = (xShared ? 1 : members) * rows * width[0];
  const int64_t outSize = members * rows * width[layers];
  if (!inside(xOffset, xSize, len) || !inside(outOffset, outSize, len))
    return fail(env, "EBOUNDS", "mlpForward: an operand lies outside the heap");
  for (int k = 0; k < layers; k++) {
    const double wo = layout[3 * k + 2], bo = layout[3 * k + 3];
    if (!(wo >= 0 && bo >= 0 && wo < 9e15 && bo < 9e15 && wo == (double)(int64_t)wo &&
          bo == (double)(int64_t)bo))
      return fail(env, "EBOUNDS", "mlpForward: an operand lies outside the heap");
    weight[k] = (int64_t)wo, bias[k] = (int64_t)bo;
    const int64_t weightSize = members * width[k] * width[k + 1], biasSize = members * width[k + 1];
    if (!inside(weight[k], weightSize, len) || !inside(bias[k], biasSize, len))
      return fail(env, "EBOUNDS", "mlpForward: an operand lies outside the heap");
    if ((weight[k] < outOffset + outSize && outOffset < weight[k] + weightSize) ||
        (bias[k] < outOffset + outSize && outOffset < bias[k] + biasSize))
      return fail(env, "EOVERLAP", "mlpForward: the output overlaps a weight or a bias");
  }
  if (xOffset < outOffset + outSize && outOffset < xOffset + xSize)
    return fail(env, "EOVERLAP", "mlpForward: the output overlaps the input");
  if (outSize == 0) return NULL;
  float* scratch = malloc(sizeof(float) * 2 * ROW_BLOCK * widest);
  if (scratch == NULL) return fail(env, "ENOMEM", "mlpForward: no memory for the scratch buffers");
  for (int64_t e = 0; e < members; e++) {
    for (int64_t first = 0; first < rows; first += ROW_BLOCK) {
      const int64_t n = rows - first < ROW_BLOCK ? rows - first : ROW_BLOCK;
      const float* in = heap + xOffset + ((xShared ? 0 : e) * rows + first) * width[0];
      for (int k = 0; k < layers; k++) {
        const bool last = k == layers - 1;
        float* h = last ? heap + outOffset + (e * rows + first) * width[layers]
                        : scratch + (k % 2) * ROW_BLOCK * widest;
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)n, (int)width[k + 1], (int)width[k],
                    1.0f, in, (int)width[k], heap + weight[k] + e * width[k] * width[k + 1],
                    (int)width[k + 1], 0.0f, h, (int)width[k + 1]);
        const float* b = heap + bias[k] + e * width[k + 1];
        if (last) bias_block(h, b, n, width[k + 1]);
        else bias_silu_block(h, b, n, width[k + 1]);
        in = h;
      }
    }
  }
  free(scratch);
  return NULL;
}

static napi_value Init(napi_env env, napi_value exports) {
  const struct {
    const char* name;
    napi_callback function;
  } kernels[] = {{"sgemm", Sgemm},
                   {"sumMiddle", SumMiddle},
                   {"adam", Adam},
                   {"biasSilu", BiasSilu},
                   {"biasSiluGrad", BiasSiluGrad},
                   {"biasRelu", BiasRelu},
                   {"biasReluGrad", BiasReluGrad},
                   {"tanhGaussian", TanhGaussian},
                   {"tanhGaussianGrad", TanhGaussianGrad},
                   {"gaussianHead", GaussianHead},
                   {"gaussianHeadGrad", GaussianHeadGrad},
                   {"sumOfSquares", SumOfSquares},
                   {"mlpForward", MlpForward}};
  for (size_t i = 0; i < sizeof kernels / sizeof kernels[0]; i++) {
    napi_value fn;
    napi_create_function(env, kernels[i].name, NAPI_AUTO_LENGTH, kernels[i].function, NULL, &fn);
    napi_set_named_property(env, exports, kernels[i].name, fn);
  }
  openblas_set_num_threads(1);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, Init)
