/*
 * Batched single-precision matrix products for the learner's wasm backend, through OpenBLAS's
 * cblas_sgemm (Debian: libopenblas-dev). See src/mbpo/native-gemm.ts for why and how it is used.
 *
 * sgemm(heap, aOffset, bOffset, outOffset, batch, m, k, n, batchA, batchB, transposeA, transposeB)
 *   heap      a Float32Array over the whole wasm memory (offsets are in floats, not bytes)
 *   out[i] = op(a[i]) · op(b[i]) for i < batch, row-major; op(x) = xᵀ where its flag is set;
 *   a batch of 1 (batchA or batchB) is shared by every entry.
 * Every operand is checked to lie inside `heap` before anything is written: a wrong offset is a
 * RangeError in JavaScript, never a write outside the wasm memory.
 *
 * OpenBLAS is set to one thread when the addon loads: every product runs in the caller's thread.
 */
#include <cblas.h>
#include <node_api.h>
#include <stdbool.h>
#include <stdint.h>

/* OpenBLAS's thread count (not in cblas.h). */
void openblas_set_num_threads(int num_threads);

#define ARGS 12

static napi_value fail(napi_env env, const char* code, const char* message) {
  napi_throw_range_error(env, code, message);
  return NULL;
}

static bool inside(int64_t offset, int64_t count, int64_t length) {
  return offset >= 0 && count >= 0 && offset <= length && count <= length - offset;
}

static napi_value Sgemm(napi_env env, napi_callback_info info) {
  size_t argc = ARGS;
  napi_value argv[ARGS];
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc != ARGS)
    return fail(env, "EARGS", "sgemm: expected 12 arguments");
  napi_typedarray_type type;
  size_t length;
  void* data;
  if (napi_get_typedarray_info(env, argv[0], &type, &length, &data, NULL, NULL) != napi_ok ||
      type != napi_float32_array)
    return fail(env, "EHEAP", "sgemm: the heap must be a Float32Array");
  int64_t v[ARGS - 1];
  for (int i = 0; i < ARGS - 1; i++) {
    if (napi_get_value_int64(env, argv[i + 1], &v[i]) != napi_ok)
      return fail(env, "EARGS", "sgemm: offsets and sizes must be numbers");
  }
  const int64_t aOffset = v[0], bOffset = v[1], outOffset = v[2], batch = v[3];
  const int64_t m = v[4], k = v[5], n = v[6], batchA = v[7], batchB = v[8];
  const bool transA = v[9] != 0, transB = v[10] != 0;
  const int64_t limit = 1 << 30;
  if (batch < 0 || m < 0 || k < 0 || n < 0 || m > limit || k > limit || n > limit || batch > limit)
    return fail(env, "ESIZE", "sgemm: sizes out of range");
  if (!((batchA == batch || batchA == 1) && (batchB == batch || batchB == 1)))
    return fail(env, "EBATCH", "sgemm: batches must match or be 1");
  const int64_t len = (int64_t)length;
  if (!inside(aOffset, batchA * m * k, len) || !inside(bOffset, batchB * k * n, len) ||
      !inside(outOffset, batch * m * n, len))
    return fail(env, "EBOUNDS", "sgemm: an operand lies outside the heap");
  float* heap = (float*)data;
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

static napi_value Init(napi_env env, napi_value exports) {
  napi_value fn;
  napi_create_function(env, "sgemm", NAPI_AUTO_LENGTH, Sgemm, NULL, &fn);
  napi_set_named_property(env, exports, "sgemm", fn);
  openblas_set_num_threads(1);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, Init)
