/**
 * System identification of the parameters that enter the arm's dynamics linearly, from logged
 * transitions (Atkeson, An and Hollerbach 1986; Gautier and Khalil's base parameters, 1990):
 *
 *   τ = Y(q, q̇, q̈)·π + Ia ∘ q̈ + Fv ∘ q̇ + Fc ∘ tanh(q̇ / v_s)
 *
 * π: 10 inertial parameters per body (Dynamics.bodyParameters: mass, first moment m·c, rotational
 * inertia about the body origin), Ia the armatures, Fv and Fc the viscous and Coulomb friction
 * (URDF <dynamics damping friction>, v_s = COULOMB_SMOOTHING). One transition (q, q̇, τ) → (q', q̇')
 * of a control period T with τ held gives one equation per joint at the period's midpoint:
 * q̄ = (q + q')/2, q̄̇ = (q̇ + q̇')/2, q̈ ≈ (q̇' − q̇)/T.
 *
 * Not every parameter can be told apart from joint torques: a fixed-base arm's individual link
 * masses, for one, only enter in combinations with other links' first moments. The fit therefore
 *   1. scales each parameter by its physical size (a body's mass, mass × radius of gyration,
 *      mass × its square; a joint's nominal armature and friction), since units differ by orders,
 *   2. takes the eigen-decomposition of the scaled AᵀA (mathjs): eigenvalues below a tolerance
 *      span the directions the data do not determine; the rest, the base parameters' space, give
 *      the rank and the condition number (the check of excitation: large means poorly excited),
 *   3. solves the least squares in that space with the URDF's values as the prior for the rest:
 *      θ = θ₀ + A⁺(τ − A θ₀), the minimum-norm change to the URDF that explains the data,
 *   4. gives each parameter a standard error, σ²·(AᵀA)⁺ on the identifiable space, and says
 *      which parameters the data determine alone ("identified", or "poorly excited" where the error
 *      passes a tenth of the value), only in combination with others ("grouped": their value is
 *      the URDF's plus the minimum-norm share), or not at all ("not excited"). The error is the
 *      statistical one; the midpoint rule's discretisation adds a bias of about 1% at 50 Hz.
 *   With fitLatency, the torque of each interval is (1 − λ)·τ + λ·τ_previous (a state λ periods
 *   old saw the previous command for λ·T of it), λ chosen on a grid by the least residual; the
 *   regressor depends on the states only, so one eigen-decomposition serves every λ.
 */
import { eigs } from "mathjs";
import { BODY_PARAMETERS, COULOMB_SMOOTHING, Dynamics } from "./dynamics.js";
import type { Inertial, Mat3, RobotModel, Vec3 } from "./types.js";

/** One logged transition, as the learner's real buffer stores it. */
export interface IdentificationSample {
  q: ArrayLike<number>;
  qd: ArrayLike<number>;
  effort: ArrayLike<number>;
  nextQ: ArrayLike<number>;
  nextQd: ArrayLike<number>;
  /** The effort sent the tick before, when the log has that tick (for the latency fit). */
  previousEffort?: ArrayLike<number>;
}

export interface IdentificationOptions {
  /** The period of one transition (1 / control_rate_hz). */
  controlRateHz: number;
  /** Transitions with a joint this close (rad or m) to a hard limit are left out (the stops act there). Default 0.02. */
  limitMargin?: number;
  /** Relative eigenvalue below which a direction counts as not excited. Default 1e-10. */
  rankTolerance?: number;
  /**
   * Also fit the state's latency λ (control periods, in [0, 1] by steps of 0.05): transitions
   * without a previousEffort are then left out. Default false.
   */
  fitLatency?: boolean;
}

export type ParameterKind = "inertial" | "armature" | "viscous" | "coulomb";

/**
 * identified: determined by the data alone, with a standard error below POORLY_EXCITED of its
 * size; poorly excited: determined alone but with a larger error; grouped: only in combination
 * with other parameters; not excited: the data say nothing about it.
 */
export type Determination = "identified" | "poorly excited" | "grouped" | "not excited";

export interface ParameterEstimate {
  /** e.g. "link2.m", "link3.h_x", "joint1.armature". */
  name: string;
  kind: ParameterKind;
  nominal: number;
  value: number;
  /** Standard error (NaN where the parameter is not determined alone). */
  std: number;
  determination: Determination;
}

export interface IdentificationResult {
  samples: number;
  /** Transitions left out (near a hard limit, or non-finite). */
  skipped: number;
  parameters: ParameterEstimate[];
  /** Dimension of the space the data determine (the base parameters' count) out of parameters.length. */
  rank: number;
  /** √(λmax / λmin) of the scaled AᵀA on that space: the check of excitation. */
  conditionNumber: number;
  /** The fitted latency of the logged state (control periods), or null when not fitted. */
  latencyPeriods: number | null;
  /** RMS torque residual per joint with the URDF's and with the identified parameters (N·m). */
  residualRms: { nominal: number[]; identified: number[] };
  /** The URDF's model with the identified parameters (see identifiedModel). */
  model: RobotModel;
  /** One line each: what could not be applied as identified. */
  warnings: string[];
}

const PARAMETER_NAMES = ["m", "h_x", "h_y", "h_z", "I_xx", "I_xy", "I_xz", "I_yy", "I_yz", "I_zz"];

/** Steps of the latency grid over [0, 1] control period. */
const LATENCY_STEPS = 20;

/** A parameter determined alone whose standard error passes this fraction of its size is poorly excited. */
const POORLY_EXCITED = 0.1;

/** Columns of the regressor below this fraction of the largest column's norm are taken as zero. */
const NEGLIGIBLE_COLUMN = 1e-9;

/** A parameter counts as identified when at most this fraction of it lies in the undetermined space. */
const GROUPED_FRACTION = 1e-3;

export function identify(
  model: RobotModel,
  data: readonly IdentificationSample[],
  options: IdentificationOptions,
): IdentificationResult {
  const n = model.dof;
  const p = BODY_PARAMETERS * n + 3 * n;
  const dynamics = new Dynamics(model);
  const theta0 = nominalParameters(model, dynamics);
  const fitLatency = options.fitLatency === true;
  const { rows, tau, tauPrevious, skipped } = regressorRows(model, dynamics, data, options, fitLatency);
  const m = tau.length;
  if (m < p) {
    throw new Error(
      `identify: ${m / n} usable transitions give ${m} equations for ${p} parameters; record more (the excite policy: mbpo-arm run --policy excite)`,
    );
  }
  dropNegligibleColumns(rows, m, p);
  // The fit works in z = W⁻¹(θ − θ₀), W a physical scale per parameter (physicalScales): the
  // minimum-norm change of step 3 then spreads what the data leave open over the parameters in
  // proportion to their size, not to their columns' norms.
  const scale = physicalScales(model, theta0).map((w) => 1 / w);
  const N = scaledNormalMatrix(rows, m, p, scale);
  const { values, vectors } = symmetricEigen(N);
  const largest = Math.max(...values);
  const tolerance = (options.rankTolerance ?? 1e-10) * largest;
  const kept = values.map((v, i) => (v > tolerance ? i : -1)).filter((i) => i >= 0);
  // 3. θ = θ₀ + D⁻¹ N⁺ D⁻¹ Aᵀ (τ − A θ₀), for the torque that acted over each interval.
  const solve = (torque: Float64Array) => {
    const b = new Array<number>(p).fill(0);
    const r0 = residuals(rows, torque, theta0, p);
    for (let r = 0; r < m; r++) for (let i = 0; i < p; i++) b[i] += (rows[r * p + i] / scale[i]) * r0[r];
    const z = new Array<number>(p).fill(0);
    for (const e of kept) {
      const v = vectors[e];
      let projection = 0;
      for (let k = 0; k < p; k++) projection += v[k] * b[k];
      for (let k = 0; k < p; k++) z[k] += (v[k] * projection) / values[e];
    }
    const theta = theta0.map((t, k) => t + z[k] / scale[k]);
    return { theta, residual: residuals(rows, torque, theta, p) };
  };
  // Latency: the logged state is λ periods old, so over the logged interval the previous command
  // acted for λ·T and this one for (1 − λ)·T. λ is the grid value whose fit leaves the least.
  let latencyPeriods: number | null = null;
  let torque = tau;
  let fit = solve(tau);
  if (fitLatency) {
    for (let step = 0; step <= LATENCY_STEPS; step++) {
      const lambda = step / LATENCY_STEPS;
      const mixed = tau.map((t, r) => (1 - lambda) * t + lambda * tauPrevious[r]);
      const candidate = solve(mixed);
      if (latencyPeriods === null || sumSquares(candidate.residual) < sumSquares(fit.residual)) {
        fit = candidate;
        torque = mixed;
        latencyPeriods = lambda;
      }
    }
  }
  const parameters = estimates(model, theta0, fit.theta, scale, values, vectors, tolerance, {
    rss: sumSquares(fit.residual),
    equations: m,
    rank: kept.length,
  });
  const warnings: string[] = [];
  return {
    samples: m / n,
    skipped,
    parameters,
    rank: kept.length,
    conditionNumber: Math.sqrt(largest / Math.min(...kept.map((i) => values[i]))),
    latencyPeriods,
    residualRms: {
      nominal: rmsPerJoint(residuals(rows, torque, theta0, p), n),
      identified: rmsPerJoint(fit.residual, n),
    },
    model: identifiedModel(model, dynamics, fit.theta, warnings),
    warnings,
  };
}

/**
 * A column at rounding level (a first moment along a joint's own axis, say) is no column: it is
 * zeroed, so that its parameter keeps the URDF's value instead of soaking up rounding noise.
 */
function dropNegligibleColumns(rows: Float64Array, m: number, p: number): void {
  const norms = new Float64Array(p);
  for (let r = 0; r < m; r++) for (let k = 0; k < p; k++) norms[k] += rows[r * p + k] ** 2;
  const negligible = NEGLIGIBLE_COLUMN * Math.sqrt(Math.max(...norms));
  for (let k = 0; k < p; k++) {
    if (Math.sqrt(norms[k]) <= negligible) for (let r = 0; r < m; r++) rows[r * p + k] = 0;
  }
}

/** N = D⁻¹ AᵀA D⁻¹ for the stacked regressor A (m × p) and D = diag(scale). */
function scaledNormalMatrix(rows: Float64Array, m: number, p: number, scale: ArrayLike<number>): number[][] {
  const N: number[][] = Array.from({ length: p }, () => new Array<number>(p).fill(0));
  for (let r = 0; r < m; r++) {
    const row = rows.subarray(r * p, (r + 1) * p);
    for (let i = 0; i < p; i++) {
      const ai = row[i] / scale[i];
      if (ai === 0) continue;
      for (let j = i; j < p; j++) N[i][j] += (ai * row[j]) / scale[j];
    }
  }
  for (let i = 0; i < p; i++) for (let j = 0; j < i; j++) N[i][j] = N[j][i];
  return N;
}

/** 4. Each parameter's standard error, σ²·(AᵀA)⁺ on the determined space, and its determination. */
function estimates(
  model: RobotModel,
  theta0: Float64Array,
  theta: Float64Array,
  scale: ArrayLike<number>,
  values: number[],
  vectors: number[][],
  tolerance: number,
  fit: { rss: number; equations: number; rank: number },
): ParameterEstimate[] {
  const sigma2 = fit.equations > fit.rank ? fit.rss / (fit.equations - fit.rank) : Number.NaN;
  return Array.from(theta0, (nominal, k) => {
    let undetermined = 0;
    let variance = 0;
    for (let e = 0; e < values.length; e++) {
      const weight = vectors[e][k] ** 2;
      if (values[e] > tolerance) variance += weight / values[e];
      else undetermined += weight;
    }
    const alone = undetermined <= GROUPED_FRACTION;
    const std = alone ? Math.sqrt(sigma2 * variance) / scale[k] : Number.NaN;
    const size = Math.max(Math.abs(theta[k]), Math.abs(nominal));
    let determination: Determination = "grouped";
    if (alone) determination = std <= POORLY_EXCITED * size ? "identified" : "poorly excited";
    else if (undetermined >= 1 - GROUPED_FRACTION) determination = "not excited";
    return { ...describeParameter(model, k), nominal, value: theta[k], std, determination };
  });
}

/** W: per parameter, the size a change of it is measured against (see identify, step 1). */
function physicalScales(model: RobotModel, theta0: Float64Array): Float64Array {
  const n = model.dof;
  const W = new Float64Array(theta0.length);
  for (let b = 0; b < n; b++) {
    const o = BODY_PARAMETERS * b;
    const mass = Math.max(theta0[o], 1e-3);
    const trace = theta0[o + 4] + theta0[o + 7] + theta0[o + 9];
    const gyration = Math.max(Math.sqrt(Math.max(trace, 0) / (2 * mass)), 0.01);
    W[o] = mass;
    for (let k = 1; k <= 3; k++) W[o + k] = mass * gyration;
    for (let k = 4; k < BODY_PARAMETERS; k++) W[o + k] = mass * gyration * gyration;
  }
  for (let i = 0; i < n; i++) {
    W[BODY_PARAMETERS * n + i] = Math.max(theta0[BODY_PARAMETERS * n + i], 1e-6);
    W[BODY_PARAMETERS * n + n + i] = Math.max(theta0[BODY_PARAMETERS * n + n + i], 1e-3);
    W[BODY_PARAMETERS * n + 2 * n + i] = Math.max(theta0[BODY_PARAMETERS * n + 2 * n + i], 1e-3);
  }
  return W;
}

/** θ₀: the URDF's body parameters, armatures, damping and friction. */
function nominalParameters(model: RobotModel, dynamics: Dynamics): Float64Array {
  const n = model.dof;
  const theta = new Float64Array(BODY_PARAMETERS * n + 3 * n);
  theta.set(dynamics.bodyParameters());
  model.joints.forEach((j, i) => {
    theta[BODY_PARAMETERS * n + i] = j.armature;
    theta[BODY_PARAMETERS * n + n + i] = j.damping;
    theta[BODY_PARAMETERS * n + 2 * n + i] = j.friction;
  });
  return theta;
}

/** The stacked regressor (one row per joint per usable transition, row-major) and its torques. */
function regressorRows(
  model: RobotModel,
  dynamics: Dynamics,
  data: readonly IdentificationSample[],
  options: IdentificationOptions,
  needPrevious: boolean,
): { rows: Float64Array; tau: Float64Array; tauPrevious: Float64Array; skipped: number } {
  const n = model.dof;
  const p = BODY_PARAMETERS * n + 3 * n;
  const T = 1 / options.controlRateHz;
  const margin = options.limitMargin ?? 0.02;
  const usable = data.filter(
    (s) => usableSample(model, s, margin) && (!needPrevious || s.previousEffort !== undefined),
  );
  const rows = new Float64Array(usable.length * n * p);
  const tau = new Float64Array(usable.length * n);
  const tauPrevious = new Float64Array(usable.length * n);
  const q = new Float64Array(n);
  const qd = new Float64Array(n);
  const qdd = new Float64Array(n);
  const Y = new Float64Array(n * BODY_PARAMETERS * n);
  usable.forEach((s, index) => {
    for (let j = 0; j < n; j++) {
      q[j] = 0.5 * (s.q[j] + s.nextQ[j]);
      qd[j] = 0.5 * (s.qd[j] + s.nextQd[j]);
      qdd[j] = (s.nextQd[j] - s.qd[j]) / T;
    }
    dynamics.inertialRegressor(q, qd, qdd, Y);
    for (let i = 0; i < n; i++) {
      const r = (index * n + i) * p;
      rows.set(Y.subarray(i * BODY_PARAMETERS * n, (i + 1) * BODY_PARAMETERS * n), r);
      rows[r + BODY_PARAMETERS * n + i] = qdd[i];
      rows[r + BODY_PARAMETERS * n + n + i] = qd[i];
      rows[r + BODY_PARAMETERS * n + 2 * n + i] = Math.tanh(qd[i] / COULOMB_SMOOTHING);
      tau[index * n + i] = s.effort[i];
      tauPrevious[index * n + i] = s.previousEffort?.[i] ?? s.effort[i];
    }
  });
  return { rows, tau, tauPrevious, skipped: data.length - usable.length };
}

function usableSample(model: RobotModel, s: IdentificationSample, margin: number): boolean {
  return model.joints.every((joint, j) => {
    const values = [s.q[j], s.qd[j], s.effort[j], s.nextQ[j], s.nextQd[j]];
    if (!values.every(Number.isFinite)) return false;
    const near = (x: number) => x > joint.upper - margin || x < joint.lower + margin;
    return !(near(s.q[j]) || near(s.nextQ[j]));
  });
}

function describeParameter(model: RobotModel, k: number): { name: string; kind: ParameterKind } {
  const n = model.dof;
  if (k < BODY_PARAMETERS * n) {
    const body = Math.floor(k / BODY_PARAMETERS);
    return {
      name: `${model.links[model.jointLink[body]].name}.${PARAMETER_NAMES[k % BODY_PARAMETERS]}`,
      kind: "inertial",
    };
  }
  const rest = k - BODY_PARAMETERS * n;
  const kind = (["armature", "viscous", "coulomb"] as const)[Math.floor(rest / n)];
  return { name: `${model.joints[rest % n].name}.${kind}`, kind };
}

/**
 * The model with θ applied: each joint's armature, damping and friction (negative values, which
 * no physical joint has, are set to 0 with a warning), and each moving link's inertial (the body's
 * parameters less those of the links welded to it, kept as the URDF has them); a link whose
 * identified inertial is far from physical (mass ≤ 0, the inertia about the centre of mass not
 * positive definite or far outside the triangle inequality) keeps the URDF's, with a warning;
 * one a little outside the triangle inequality is moved onto it, with a warning.
 */
function identifiedModel(
  model: RobotModel,
  dynamics: Dynamics,
  theta: Float64Array,
  warnings: string[],
): RobotModel {
  const n = model.dof;
  const out = structuredClone(model);
  const nominal = dynamics.bodyParameters();
  out.joints.forEach((joint, i) => {
    for (const [offset, key] of [
      [0, "armature"],
      [n, "damping"],
      [2 * n, "friction"],
    ] as const) {
      const value = theta[BODY_PARAMETERS * n + offset + i];
      if (value < 0) warnings.push(`${joint.name}: identified ${key} ${value.toPrecision(3)} < 0; set to 0`);
      joint[key] = Math.max(0, value);
    }
  });
  for (let b = 0; b < n; b++) {
    const link = out.links[model.jointLink[b]];
    const own = linkParameters(model.links[model.jointLink[b]].inertial);
    const changed = own.map((v, k) => v + theta[BODY_PARAMETERS * b + k] - nominal[BODY_PARAMETERS * b + k]);
    const inertial = inertialFromParameters(changed, (fraction) =>
      warnings.push(
        `${link.name}: identified principal inertias broke the triangle inequality; the smallest raised by ${(100 * fraction).toFixed(1)}% of the largest`,
      ),
    );
    if (typeof inertial === "string") warnings.push(`${link.name}: ${inertial}; kept the URDF's inertial`);
    else link.inertial = inertial;
  }
  return out;
}

/** A link's own 10 parameters in its frame (mass, m·c, inertia about the frame origin). */
function linkParameters({ mass, com, inertia: I }: Inertial): number[] {
  const [x, y, z] = com;
  return [
    mass,
    mass * x,
    mass * y,
    mass * z,
    I[0] + mass * (y * y + z * z),
    I[1] - mass * x * y,
    I[2] - mass * x * z,
    I[4] + mass * (x * x + z * z),
    I[5] - mass * y * z,
    I[8] + mass * (x * x + y * y),
  ];
}

/**
 * linkParameters' inverse, or why the parameters are not a physical body. Principal inertias that
 * break the triangle inequality by a little (what the data leave open is split by a minimum-norm
 * rule that knows no physics) are moved to the nearest physical ones, the smallest raised to
 * c − b, and `adjusted` says by how much.
 */
function inertialFromParameters(p: number[], adjusted: (fraction: number) => void): Inertial | string {
  const [mass, hx, hy, hz, ixx, ixy, ixz, iyy, iyz, izz] = p;
  if (!(mass > 0)) return `identified mass ${mass.toPrecision(3)} kg is not positive`;
  const com: Vec3 = [hx / mass, hy / mass, hz / mass];
  const [x, y, z] = com;
  const about = [
    [ixx - mass * (y * y + z * z), ixy + mass * x * y, ixz + mass * x * z],
    [ixy + mass * x * y, iyy - mass * (x * x + z * z), iyz + mass * y * z],
    [ixz + mass * x * z, iyz + mass * y * z, izz - mass * (x * x + y * y)],
  ];
  const { values, vectors } = symmetricEigen(about);
  const order = [0, 1, 2].sort((i, j) => values[i] - values[j]);
  const [a, b, c] = order.map((i) => values[i]);
  if (!(b > 0) || !(c > 0) || a + b < 0.5 * c)
    return `identified principal inertias ${[a, b, c].map((v) => v.toPrecision(3)).join(", ")} kg·m² are not those of a body`;
  const fixed = Math.max(a, c - b);
  if (fixed !== a) {
    adjusted((fixed - a) / c);
    values[order[0]] = fixed;
  }
  const inertia = [0, 0, 0, 0, 0, 0, 0, 0, 0] as Mat3;
  for (let e = 0; e < 3; e++)
    for (let i = 0; i < 3; i++)
      for (let j = 0; j < 3; j++) inertia[3 * i + j] += values[e] * vectors[e][i] * vectors[e][j];
  return { mass, com, inertia };
}

/** Eigenvalues and unit eigenvectors (vectors[e] belongs to values[e]) of a symmetric matrix, by mathjs. */
function symmetricEigen(matrix: number[][]): { values: number[]; vectors: number[][] } {
  const result = eigs(matrix) as unknown as {
    values: number[];
    eigenvectors: { value: number; vector: number[] }[];
  };
  return {
    values: result.eigenvectors.map((e) => e.value),
    vectors: result.eigenvectors.map((e) => e.vector),
  };
}

function residuals(rows: Float64Array, tau: Float64Array, theta: ArrayLike<number>, p: number): Float64Array {
  const out = new Float64Array(tau.length);
  for (let r = 0; r < tau.length; r++) {
    let s = tau[r];
    for (let k = 0; k < p; k++) s -= rows[r * p + k] * theta[k];
    out[r] = s;
  }
  return out;
}

function sumSquares(values: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < values.length; i++) s += values[i] * values[i];
  return s;
}

function rmsPerJoint(values: Float64Array, n: number): number[] {
  return Array.from({ length: n }, (_, j) => {
    let s = 0;
    for (let r = j; r < values.length; r += n) s += values[r] * values[r];
    return Math.sqrt(s / (values.length / n));
  });
}
