/**
 * Spatial (6-D) vector algebra on flat Float64Arrays, after Featherstone, "Rigid Body Dynamics
 * Algorithms" (2008), chapter 2. Hot path: no allocation, every function writes into arrays the
 * caller owns, addressed by offsets so that one array can hold the vectors of every body.
 *
 * Conventions:
 * - A spatial vector is 6 numbers, angular part first: motion (ω, v), force (n, f).
 * - A spatial inertia is a symmetric 6×6 matrix, row-major, blocks [[A, B], [Bᵀ, C]] (angular
 *   rows first). A rigid body's is A = Ī_O, B = m·c×, C = m·1.
 * - A body-to-parent placement is stored as R (row-major 3×3 at offset 9·i: the child frame's
 *   axes in parent coordinates) and r (3 numbers at 3·i: the child origin in parent coordinates).
 *   Featherstone's motion transform parent→child is X = [Rᵀ 0; −Rᵀ r× Rᵀ]; we never build it, we
 *   apply its structure directly (a rotation and a shift), which costs a fraction of a 6×6 product.
 * - Arguments named `out` must not alias inputs.
 */
import type { Mat3, Vec3 } from "./types.js";

/** Adds the 6×6 spatial inertia of a rigid body (mass m, centre c, inertia Ic about c) to out[off..off+36). */
export function addRigidBodyInertia(mass: number, c: Vec3, Ic: Mat3, out: Float64Array, off: number): void {
  const [cx, cy, cz] = c;
  const cc = cx * cx + cy * cy + cz * cz;
  // A = Ic + m (|c|² 1 − c cᵀ)   (parallel-axis theorem about the frame origin)
  const A = [
    Ic[0] + mass * (cc - cx * cx),
    Ic[1] - mass * cx * cy,
    Ic[2] - mass * cx * cz,
    Ic[3] - mass * cy * cx,
    Ic[4] + mass * (cc - cy * cy),
    Ic[5] - mass * cy * cz,
    Ic[6] - mass * cz * cx,
    Ic[7] - mass * cz * cy,
    Ic[8] + mass * (cc - cz * cz),
  ];
  // B = m c×
  const B = [0, -mass * cz, mass * cy, mass * cz, 0, -mass * cx, -mass * cy, mass * cx, 0];
  for (let i = 0; i < 3; i++) {
    for (let j = 0; j < 3; j++) {
      out[off + 6 * i + j] += A[3 * i + j];
      out[off + 6 * i + j + 3] += B[3 * i + j];
      out[off + 6 * (i + 3) + j] += B[3 * j + i];
    }
    out[off + 6 * (i + 3) + i + 3] += mass;
  }
}

/** out = X·src: a motion vector from parent coordinates into body i's coordinates. */
export function motionToChild(
  R: Float64Array,
  r: Float64Array,
  i: number,
  src: Float64Array,
  srcOff: number,
  out: Float64Array,
  outOff: number,
): void {
  const o = 9 * i;
  const p = 3 * i;
  const wx = src[srcOff];
  const wy = src[srcOff + 1];
  const wz = src[srcOff + 2];
  // v − r × ω  (velocity of the point at the child origin), then rotate both by Rᵀ.
  const vx = src[srcOff + 3] - (r[p + 1] * wz - r[p + 2] * wy);
  const vy = src[srcOff + 4] - (r[p + 2] * wx - r[p] * wz);
  const vz = src[srcOff + 5] - (r[p] * wy - r[p + 1] * wx);
  out[outOff] = R[o] * wx + R[o + 3] * wy + R[o + 6] * wz;
  out[outOff + 1] = R[o + 1] * wx + R[o + 4] * wy + R[o + 7] * wz;
  out[outOff + 2] = R[o + 2] * wx + R[o + 5] * wy + R[o + 8] * wz;
  out[outOff + 3] = R[o] * vx + R[o + 3] * vy + R[o + 6] * vz;
  out[outOff + 4] = R[o + 1] * vx + R[o + 4] * vy + R[o + 7] * vz;
  out[outOff + 5] = R[o + 2] * vx + R[o + 5] * vy + R[o + 8] * vz;
}

/** out += Xᵀ·src: a force on body i, in its coordinates, added to a force in parent coordinates. */
export function addForceToParent(
  R: Float64Array,
  r: Float64Array,
  i: number,
  src: Float64Array,
  srcOff: number,
  out: Float64Array,
  outOff: number,
): void {
  const o = 9 * i;
  const p = 3 * i;
  const nx = src[srcOff];
  const ny = src[srcOff + 1];
  const nz = src[srcOff + 2];
  const gx = src[srcOff + 3];
  const gy = src[srcOff + 4];
  const gz = src[srcOff + 5];
  const fx = R[o] * gx + R[o + 1] * gy + R[o + 2] * gz;
  const fy = R[o + 3] * gx + R[o + 4] * gy + R[o + 5] * gz;
  const fz = R[o + 6] * gx + R[o + 7] * gy + R[o + 8] * gz;
  // n_parent = R n + r × f_parent (the moment moves to the parent origin).
  out[outOff] += R[o] * nx + R[o + 1] * ny + R[o + 2] * nz + (r[p + 1] * fz - r[p + 2] * fy);
  out[outOff + 1] += R[o + 3] * nx + R[o + 4] * ny + R[o + 5] * nz + (r[p + 2] * fx - r[p] * fz);
  out[outOff + 2] += R[o + 6] * nx + R[o + 7] * ny + R[o + 8] * nz + (r[p] * fy - r[p + 1] * fx);
  out[outOff + 3] += fx;
  out[outOff + 4] += fy;
  out[outOff + 5] += fz;
}

/**
 * out += Xᵀ·(I − U Uᵀ/D)·X: a spatial (or articulated-body) inertia of body i, in its coordinates,
 * less the rank-one term U Uᵀ/D (ABA's projection of the joint's own freedom; pass invD = 0 for a
 * plain transform), added to one in parent coordinates. Done as a rotation of the three 3×3
 * blocks into parent axes (A₁ = R A Rᵀ, B₁ = R B Rᵀ, C₁ = R C Rᵀ), then a shift of the reference
 * point by r:
 *   A' = A₁ − K − Kᵀ − r× C₁ r×,   B' = B₁ + r× C₁,   C' = C₁,   with K = B₁ r×.
 * This is the innermost kernel of ABA and CRBA, so it is written out in scalars (A and C are
 * symmetric: only their upper triangles are computed). `src` and `out` may be the same array at
 * different offsets.
 */
export function addInertiaToParent(
  R: Float64Array,
  r: Float64Array,
  i: number,
  src: Float64Array,
  s: number,
  U: Float64Array,
  uOff: number,
  invD: number,
  out: Float64Array,
  d: number,
): void {
  // The rank-one term is folded into the loads: I_ab − U_a U_b / D.
  const u0 = U[uOff];
  const u1 = U[uOff + 1];
  const u2 = U[uOff + 2];
  const u3 = U[uOff + 3];
  const u4 = U[uOff + 4];
  const u5 = U[uOff + 5];
  const e0 = u0 * invD;
  const e1 = u1 * invD;
  const e2 = u2 * invD;
  const o = 9 * i;
  const r00 = R[o];
  const r01 = R[o + 1];
  const r02 = R[o + 2];
  const r10 = R[o + 3];
  const r11 = R[o + 4];
  const r12 = R[o + 5];
  const r20 = R[o + 6];
  const r21 = R[o + 7];
  const r22 = R[o + 8];

  // A₁ = R A Rᵀ via T = A Rᵀ (t_ab = Σ_k A_ak R_bk), A symmetric.
  let m00 = src[s] - e0 * u0;
  let m01 = src[s + 1] - e0 * u1;
  let m02 = src[s + 2] - e0 * u2;
  let m11 = src[s + 7] - e1 * u1;
  let m12 = src[s + 8] - e1 * u2;
  let m22 = src[s + 14] - e2 * u2;
  let t00 = m00 * r00 + m01 * r01 + m02 * r02;
  let t01 = m00 * r10 + m01 * r11 + m02 * r12;
  let t02 = m00 * r20 + m01 * r21 + m02 * r22;
  let t10 = m01 * r00 + m11 * r01 + m12 * r02;
  let t11 = m01 * r10 + m11 * r11 + m12 * r12;
  let t12 = m01 * r20 + m11 * r21 + m12 * r22;
  let t20 = m02 * r00 + m12 * r01 + m22 * r02;
  let t21 = m02 * r10 + m12 * r11 + m22 * r12;
  let t22 = m02 * r20 + m12 * r21 + m22 * r22;
  const A00 = r00 * t00 + r01 * t10 + r02 * t20;
  const A01 = r00 * t01 + r01 * t11 + r02 * t21;
  const A02 = r00 * t02 + r01 * t12 + r02 * t22;
  const A11 = r10 * t01 + r11 * t11 + r12 * t21;
  const A12 = r10 * t02 + r11 * t12 + r12 * t22;
  const A22 = r20 * t02 + r21 * t12 + r22 * t22;

  // C₁ = R C Rᵀ, C symmetric.
  const e3 = u3 * invD;
  const e4 = u4 * invD;
  const e5 = u5 * invD;
  m00 = src[s + 21] - e3 * u3;
  m01 = src[s + 22] - e3 * u4;
  m02 = src[s + 23] - e3 * u5;
  m11 = src[s + 28] - e4 * u4;
  m12 = src[s + 29] - e4 * u5;
  m22 = src[s + 35] - e5 * u5;
  t00 = m00 * r00 + m01 * r01 + m02 * r02;
  t01 = m00 * r10 + m01 * r11 + m02 * r12;
  t02 = m00 * r20 + m01 * r21 + m02 * r22;
  t10 = m01 * r00 + m11 * r01 + m12 * r02;
  t11 = m01 * r10 + m11 * r11 + m12 * r12;
  t12 = m01 * r20 + m11 * r21 + m12 * r22;
  t20 = m02 * r00 + m12 * r01 + m22 * r02;
  t21 = m02 * r10 + m12 * r11 + m22 * r12;
  t22 = m02 * r20 + m12 * r21 + m22 * r22;
  const C00 = r00 * t00 + r01 * t10 + r02 * t20;
  const C01 = r00 * t01 + r01 * t11 + r02 * t21;
  const C02 = r00 * t02 + r01 * t12 + r02 * t22;
  const C11 = r10 * t01 + r11 * t11 + r12 * t21;
  const C12 = r10 * t02 + r11 * t12 + r12 * t22;
  const C22 = r20 * t02 + r21 * t12 + r22 * t22;

  // B₁ = R B Rᵀ, B general.
  const b00 = src[s + 3] - e0 * u3;
  const b01 = src[s + 4] - e0 * u4;
  const b02 = src[s + 5] - e0 * u5;
  const b10 = src[s + 9] - e1 * u3;
  const b11 = src[s + 10] - e1 * u4;
  const b12 = src[s + 11] - e1 * u5;
  const b20 = src[s + 15] - e2 * u3;
  const b21 = src[s + 16] - e2 * u4;
  const b22 = src[s + 17] - e2 * u5;
  t00 = b00 * r00 + b01 * r01 + b02 * r02;
  t01 = b00 * r10 + b01 * r11 + b02 * r12;
  t02 = b00 * r20 + b01 * r21 + b02 * r22;
  t10 = b10 * r00 + b11 * r01 + b12 * r02;
  t11 = b10 * r10 + b11 * r11 + b12 * r12;
  t12 = b10 * r20 + b11 * r21 + b12 * r22;
  t20 = b20 * r00 + b21 * r01 + b22 * r02;
  t21 = b20 * r10 + b21 * r11 + b22 * r12;
  t22 = b20 * r20 + b21 * r21 + b22 * r22;
  const B00 = r00 * t00 + r01 * t10 + r02 * t20;
  const B01 = r00 * t01 + r01 * t11 + r02 * t21;
  const B02 = r00 * t02 + r01 * t12 + r02 * t22;
  const B10 = r10 * t00 + r11 * t10 + r12 * t20;
  const B11 = r10 * t01 + r11 * t11 + r12 * t21;
  const B12 = r10 * t02 + r11 * t12 + r12 * t22;
  const B20 = r20 * t00 + r21 * t10 + r22 * t20;
  const B21 = r20 * t01 + r21 * t11 + r22 * t21;
  const B22 = r20 * t02 + r21 * t12 + r22 * t22;

  // Shift by r; r× = [[0, −z, y], [z, 0, −x], [−y, x, 0]].
  const x = r[3 * i];
  const y = r[3 * i + 1];
  const z = r[3 * i + 2];
  // S = r× C₁
  const s00 = -z * C01 + y * C02;
  const s01 = -z * C11 + y * C12;
  const s02 = -z * C12 + y * C22;
  const s10 = z * C00 - x * C02;
  const s11 = z * C01 - x * C12;
  const s12 = z * C02 - x * C22;
  const s20 = -y * C00 + x * C01;
  const s21 = -y * C01 + x * C11;
  const s22 = -y * C02 + x * C12;
  // K = B₁ r×: row a is [B_a1 z − B_a2 y, B_a2 x − B_a0 z, B_a0 y − B_a1 x]
  const k00 = B01 * z - B02 * y;
  const k01 = B02 * x - B00 * z;
  const k02 = B00 * y - B01 * x;
  const k10 = B11 * z - B12 * y;
  const k11 = B12 * x - B10 * z;
  const k12 = B10 * y - B11 * x;
  const k20 = B21 * z - B22 * y;
  const k21 = B22 * x - B20 * z;
  const k22 = B20 * y - B21 * x;
  // W = S r× = r× C₁ r× (symmetric)
  const w00 = s01 * z - s02 * y;
  const w01 = s02 * x - s00 * z;
  const w02 = s00 * y - s01 * x;
  const w11 = s12 * x - s10 * z;
  const w12 = s10 * y - s11 * x;
  const w22 = s20 * y - s21 * x;

  // A' = A₁ − K − Kᵀ − W
  const a00 = A00 - 2 * k00 - w00;
  const a01 = A01 - k01 - k10 - w01;
  const a02 = A02 - k02 - k20 - w02;
  const a11 = A11 - 2 * k11 - w11;
  const a12 = A12 - k12 - k21 - w12;
  const a22 = A22 - 2 * k22 - w22;
  out[d] += a00;
  out[d + 1] += a01;
  out[d + 2] += a02;
  out[d + 6] += a01;
  out[d + 7] += a11;
  out[d + 8] += a12;
  out[d + 12] += a02;
  out[d + 13] += a12;
  out[d + 14] += a22;
  // B' = B₁ + S (upper right) and B'ᵀ (lower left)
  const p00 = B00 + s00;
  const p01 = B01 + s01;
  const p02 = B02 + s02;
  const p10 = B10 + s10;
  const p11 = B11 + s11;
  const p12 = B12 + s12;
  const p20 = B20 + s20;
  const p21 = B21 + s21;
  const p22 = B22 + s22;
  out[d + 3] += p00;
  out[d + 4] += p01;
  out[d + 5] += p02;
  out[d + 9] += p10;
  out[d + 10] += p11;
  out[d + 11] += p12;
  out[d + 15] += p20;
  out[d + 16] += p21;
  out[d + 17] += p22;
  out[d + 18] += p00;
  out[d + 19] += p10;
  out[d + 20] += p20;
  out[d + 24] += p01;
  out[d + 25] += p11;
  out[d + 26] += p21;
  out[d + 30] += p02;
  out[d + 31] += p12;
  out[d + 32] += p22;
  // C' = C₁
  out[d + 21] += C00;
  out[d + 22] += C01;
  out[d + 23] += C02;
  out[d + 27] += C01;
  out[d + 28] += C11;
  out[d + 29] += C12;
  out[d + 33] += C02;
  out[d + 34] += C12;
  out[d + 35] += C22;
}

/** out = I·v for a 6×6 inertia at I[iOff] and a 6-vector at v[vOff]. */
export function mulInertia(
  I: Float64Array,
  iOff: number,
  v: Float64Array,
  vOff: number,
  out: Float64Array,
  outOff: number,
): void {
  const v0 = v[vOff];
  const v1 = v[vOff + 1];
  const v2 = v[vOff + 2];
  const v3 = v[vOff + 3];
  const v4 = v[vOff + 4];
  const v5 = v[vOff + 5];
  // Written out row by row (a hot kernel; the JIT does not unroll loops).
  const o = iOff;
  out[outOff] = I[o] * v0 + I[o + 1] * v1 + I[o + 2] * v2 + I[o + 3] * v3 + I[o + 4] * v4 + I[o + 5] * v5;
  out[outOff + 1] =
    I[o + 6] * v0 + I[o + 7] * v1 + I[o + 8] * v2 + I[o + 9] * v3 + I[o + 10] * v4 + I[o + 11] * v5;
  out[outOff + 2] =
    I[o + 12] * v0 + I[o + 13] * v1 + I[o + 14] * v2 + I[o + 15] * v3 + I[o + 16] * v4 + I[o + 17] * v5;
  out[outOff + 3] =
    I[o + 18] * v0 + I[o + 19] * v1 + I[o + 20] * v2 + I[o + 21] * v3 + I[o + 22] * v4 + I[o + 23] * v5;
  out[outOff + 4] =
    I[o + 24] * v0 + I[o + 25] * v1 + I[o + 26] * v2 + I[o + 27] * v3 + I[o + 28] * v4 + I[o + 29] * v5;
  out[outOff + 5] =
    I[o + 30] * v0 + I[o + 31] * v1 + I[o + 32] * v2 + I[o + 33] * v3 + I[o + 34] * v4 + I[o + 35] * v5;
}

/** out = v ×* f (the spatial cross product for forces): (ω × n + v × f, ω × f). */
export function crossForce(
  v: Float64Array,
  vOff: number,
  f: Float64Array,
  fOff: number,
  out: Float64Array,
  outOff: number,
): void {
  const wx = v[vOff];
  const wy = v[vOff + 1];
  const wz = v[vOff + 2];
  const vx = v[vOff + 3];
  const vy = v[vOff + 4];
  const vz = v[vOff + 5];
  const nx = f[fOff];
  const ny = f[fOff + 1];
  const nz = f[fOff + 2];
  const fx = f[fOff + 3];
  const fy = f[fOff + 4];
  const fz = f[fOff + 5];
  out[outOff] = wy * nz - wz * ny + (vy * fz - vz * fy);
  out[outOff + 1] = wz * nx - wx * nz + (vz * fx - vx * fz);
  out[outOff + 2] = wx * ny - wy * nx + (vx * fy - vy * fx);
  out[outOff + 3] = wy * fz - wz * fy;
  out[outOff + 4] = wz * fx - wx * fz;
  out[outOff + 5] = wx * fy - wy * fx;
}
