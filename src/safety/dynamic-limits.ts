/**
 * Limits from the dynamics: the part of the safety filter that keeps every joint within its hard
 * velocity limit, and able to brake before its hard position limit, for the WHOLE torque vector.
 *
 * Why the whole vector. Joints are coupled: a torque on the shoulder accelerates the elbow and the
 * wrist too (off-diagonal M⁻¹ reaches 0.66 of the diagonal on this arm), and the bias forces move
 * every joint. A per-joint rule ("no effort pushing past the limit") cannot see that: bang-bang and
 * coupling-maximising commands drove joints to 1.37× their velocity limit through it.
 *
 * The model. Over one control period T, with the torque τ held (zero-order hold), the next
 * velocity is affine in τ:
 *
 *   q̇⁺ ≈ d + κ·B·(τ − D q̇),   B = T·M(q)⁻¹,   d = q̇ − B·h(q, q̇)
 *
 * with M the mass matrix (armature included), h the Coriolis, centrifugal and gravity torques and
 * D the URDF's viscous damping; κ = 1 for the URDF as it is. Coulomb friction is left out: on its
 * own joint it only slows the motion (conservative), and what it does through the coupling is
 * caught by the observer below.
 *
 * Model error. If every mass, inertia and armature is r times the URDF's, M and h scale by r
 * together, so the drift d is unchanged and only the gain of the torque changes: κ = 1/r. That
 * gain error is what makes a wrong model dangerous: the torque that holds the arm against gravity,
 * or that a coupled joint gets, is felt 1/r times as strongly as planned, every period, and an
 * observer of the last period's error cannot follow a torque that changes every period. So the
 * bounds below must hold for every κ in [1/(1 + ρ), 1/(1 − ρ)] (ρ = modelError): the prediction is
 * affine in κ, so it suffices that they hold at both ends, two linear constraints per bound.
 *
 * The bounds on the next velocity, per joint (a discrete-time control barrier function):
 *  - velocity: with v̄ = velocity·(1 − velocityHeadroom) and the approach rate γ,
 *      q̇ + γ·(−v̄ − q̇) ≤ q̇⁺ ≤ q̇ + γ·(v̄ − q̇),
 *    i.e. the barrier b = v̄ − q̇ may shrink by at most the fraction γ per period. γ < 1 is what
 *    makes the bound robust to a wrong inertia: if the true M⁻¹ is k times the model's, the true
 *    step is k times the planned one, and the barrier stays non-negative for every k ≤ 1/γ
 *    (k ≤ 2 at γ = 0.5: masses and armature up to 50% lighter than the URDF says).
 *  - position: the joint must be able to stop before upper − positionHeadroom with the braking
 *    deceleration a (brakeFraction of what the effort limit can give against gravity at the
 *    heaviest pose, found once at construction): with q⁺ = q + T(q̇ + q̇⁺)/2 and the stopping
 *    distance q̇⁺²/(2a), q̇⁺ ≤ −aT/2 + √((aT/2)² + 2a·d) where d = upper − headroom − q − T q̇/2
 *    ≥ 0, and q̇⁺ ≤ d/(4T) (move back in, gently) where d < 0. Likewise at the lower limit.
 *  - the observer: the last period's prediction error e = q̇ − q̇⁺_previous (a wrong mass,
 *    friction, a contact) is added to the prediction on the side where it makes the bound tighter
 *    (max(e, 0) for the upper bound, min(e, 0) for the lower), never looser.
 *
 * The torque. If the command's predicted q̇⁺ is inside the bounds, it passes unchanged (most ticks).
 * Otherwise the filter sends the torque closest to the command (Euclidean, N·m) that keeps every
 * joint's predicted q̇⁺ inside its bounds, at both ends of κ, and every torque inside
 * ±effort·effortScale: a QP in n variables with 2n box and 4n linear constraints, solved exactly
 * (qp.ts). When no torque within
 * the effort limits can reach the bounds (a state already far outside them: a collision, a model
 * far off), it aims at the bounds as nearly as the effort limits allow, per joint, and then takes the
 * torque closest to the command that does at least as well on every joint ("relaxed").
 *
 * Allocation-free: everything is sized in the constructor.
 */
import type { JointState } from "../drivers/driver.js";
import type { Dynamics } from "../robot/dynamics.js";
import type { JointSpec } from "../robot/types.js";
import { Rng } from "../util/rng.js";
import { LeastDistanceQp, QpStatus } from "./qp.js";

export interface DynamicLimitsOptions {
  /** Fraction of each URDF velocity limit kept free as a margin for model error and latency. */
  velocityHeadroom: number;
  /** γ in (0, 1]: the fraction of the remaining velocity headroom one period may use. */
  approachRate: number;
  /** Distance (rad or m) inside each hard position limit where braking aims to stop. */
  positionHeadroom: number;
  /** Fraction, in (0, 1], of the achievable deceleration that the position barrier plans with. */
  brakeFraction: number;
  /** ρ in [0, 1): masses, inertias and armatures may be off by this fraction of the URDF's. */
  modelError: number;
}

/** What constrain() did. */
export const LimitResult = {
  /** The command's predicted velocities were inside the bounds: unchanged. */
  Unchanged: 0,
  /** Changed to the closest torque that keeps the bounds. */
  Constrained: 1,
  /** No torque could keep every bound: the closest to the command that brakes as hard as it can. */
  Relaxed: 2,
} as const;
export type LimitResult = (typeof LimitResult)[keyof typeof LimitResult];

/**
 * Past the braking target (inside the position headroom, d < 0), the joint may move back in no
 * faster than this fraction of the distance per period: a gentle return. Asking for the whole
 * distance in one period (2d/T) made a bang-bang limit cycle against the stop on a twin lighter
 * than the model.
 */
const RETURN_RATE = 0.25;

/** Allowed violation of a bound by the QP's answer before it is not trusted (rad/s). */
const CHECK_TOLERANCE = 1e-6;

export class DynamicLimits {
  readonly dof: number;
  /** Planned braking deceleration per joint (rad/s² or m/s²), from brakeFraction. */
  readonly brakeDeceleration: Float64Array;
  private readonly options: Readonly<DynamicLimitsOptions>;
  private readonly dynamics: Dynamics;
  private readonly damping: Float64Array;
  private readonly effortMax: Float64Array;
  private readonly velocityBound: Float64Array;
  private readonly lower: Float64Array;
  private readonly upper: Float64Array;

  // Per tick (prepare).
  /** M(q), row-major, and its inverse. */
  readonly M: Float64Array;
  private readonly Minv: Float64Array;
  private readonly L: Float64Array;
  /** h(q, q̇) + D q̇: the torque that keeps the velocity constant over the period. */
  readonly hold: Float64Array;
  /** g(q): the torque that holds the arm still at this pose. */
  readonly gravity: Float64Array;
  /** B = T·M⁻¹, the drift d = q̇ − B·h and the offset −B·D·q̇: q̇⁺ ≈ d + κ(Bτ + offset). */
  private readonly B: Float64Array;
  private readonly drift: Float64Array;
  private readonly offset: Float64Array;
  /** The two ends of the torque gain κ (see the file comment), and the nominal κ = 1. */
  private readonly gains: Float64Array;
  private readonly wLow: Float64Array;
  /** Bounds on q̇⁺, and the observer's error (added where it tightens). */
  private readonly lo: Float64Array;
  private readonly hi: Float64Array;

  private readonly errorUp: Float64Array;
  private readonly errorDown: Float64Array;
  private readonly lastVelocity: Float64Array;
  private period = 0;
  private prepared = false;

  // The observer: last tick's prediction, and the stamp of the state it was made from.
  private readonly predicted: Float64Array;
  private predictedStamp = Number.NaN;
  private predictedPeriod = 0;

  // QP scratch.
  private readonly qp: LeastDistanceQp;
  private readonly G: Float64Array;
  private readonly h: Float64Array;
  private readonly x: Float64Array;
  private readonly w: Float64Array;
  private readonly fallback: Float64Array;
  private readonly target: Float64Array;
  private readonly relaxedLo: Float64Array;
  private readonly relaxedHi: Float64Array;
  private readonly scratch: Float64Array;

  constructor(
    dynamics: Dynamics,
    joints: readonly JointSpec[],
    effortMax: Float64Array,
    options: DynamicLimitsOptions,
  ) {
    const n = joints.length;
    if (dynamics.dof !== n)
      throw new Error(`dynamic limits: the model has ${dynamics.dof} joints, the filter ${n}`);
    this.dof = n;
    this.dynamics = dynamics;
    this.options = Object.freeze({ ...options });
    this.damping = Float64Array.from(joints, (j) => j.damping);
    this.effortMax = Float64Array.from(effortMax);
    this.velocityBound = Float64Array.from(joints, (j) => j.velocity * (1 - options.velocityHeadroom));
    this.lower = Float64Array.from(joints, (j) =>
      j.type === "continuous" ? Number.NEGATIVE_INFINITY : j.lower + options.positionHeadroom,
    );
    this.upper = Float64Array.from(joints, (j) =>
      j.type === "continuous" ? Number.POSITIVE_INFINITY : j.upper - options.positionHeadroom,
    );
    this.M = new Float64Array(n * n);
    this.Minv = new Float64Array(n * n);
    this.L = new Float64Array(n * n);
    this.hold = new Float64Array(n);
    this.gravity = new Float64Array(n);
    this.B = new Float64Array(n * n);
    this.drift = new Float64Array(n);
    this.lastVelocity = new Float64Array(n);
    this.offset = new Float64Array(n);
    this.wLow = new Float64Array(n);
    const rho = options.modelError;
    this.gains = Float64Array.of(1 / (1 + rho), 1 / (1 - rho));
    this.lo = new Float64Array(n);
    this.hi = new Float64Array(n);

    this.errorUp = new Float64Array(n);
    this.errorDown = new Float64Array(n);
    this.predicted = new Float64Array(n);
    this.qp = new LeastDistanceQp(n, 6 * n);
    this.G = new Float64Array(6 * n * n);
    this.h = new Float64Array(6 * n);
    this.x = new Float64Array(n);
    this.w = new Float64Array(n);
    this.fallback = new Float64Array(n);
    this.target = new Float64Array(n);
    this.relaxedLo = new Float64Array(n);
    this.relaxedHi = new Float64Array(n);
    this.scratch = new Float64Array(n);
    this.brakeDeceleration = brakingCapacity(dynamics, joints, this.effortMax, options.brakeFraction);
  }

  /**
   * Linearises the dynamics at a trusted state for a period of `dt` seconds and sets this tick's
   * bounds. Must be called once per tick before constrain() / commit().
   */
  prepare(state: JointState, dt: number): void {
    const n = this.dof;
    const q = state.position;
    const v = state.velocity;
    const { M, Minv, B, drift, offset, hold } = this;
    this.period = dt;
    this.dynamics.massMatrix(q, M);
    this.dynamics.bias(q, v, hold);
    this.dynamics.gravity(q, this.gravity);
    this.invertMassMatrix();
    for (let k = 0; k < n * n; k++) B[k] = dt * Minv[k];
    for (let i = 0; i < n; i++) {
      let bh = 0;
      let bd = 0;
      for (let j = 0; j < n; j++) {
        bh += B[i * n + j] * hold[j];
        bd += B[i * n + j] * this.damping[j] * v[j];
      }
      drift[i] = v[i] - bh;
      offset[i] = -bd;
    }
    for (let i = 0; i < n; i++) hold[i] += this.damping[i] * v[i];
    this.lastVelocity.set(v);
    this.observe(state);
    this.setBounds(q, v, dt);
    this.prepared = true;
  }

  /**
   * Keeps `tau` (in place, N·m, already within ±effortMax) inside this tick's bounds: unchanged
   * when its predicted velocities are inside them, else the closest torque that keeps them.
   */
  constrain(tau: Float64Array): LimitResult {
    if (!this.prepared) return LimitResult.Unchanged;
    if (this.within(tau, this.lo, this.hi, 0)) return LimitResult.Unchanged;
    const n = this.dof;
    if (this.solveClosest(tau, this.lo, this.hi)) {
      for (let i = 0; i < n; i++) tau[i] += this.x[i];
      return LimitResult.Constrained;
    }
    // Infeasible: aim each joint's nominal velocity into its bounds, with the torque the effort
    // limits allow: τ = M·(target − d)/T + D q̇, clamped. (Giving up the position barriers first
    // and keeping the velocity bounds was tried: the joints then met their stops, and the impacts
    // made more velocity excess than they saved.)
    const { fallback, target, relaxedLo, relaxedHi, lo, hi } = this;
    this.predictAt(1, tau, target);
    for (let i = 0; i < n; i++) {
      const low = lo[i] - this.errorDown[i];
      const high = hi[i] - this.errorUp[i];
      const aim = low <= high ? Math.min(Math.max(target[i], low), high) : 0.5 * (low + high);
      target[i] = aim - this.drift[i];
    }
    for (let i = 0; i < n; i++) {
      let s = 0;
      for (let j = 0; j < n; j++) s += this.M[i * n + j] * target[j];
      const e = this.effortMax[i];
      fallback[i] = Math.min(Math.max(s / this.period + this.damping[i] * this.lastVelocity[i], -e), e);
    }
    // Bounds relaxed just enough to contain the fallback at both gains, then the closest torque.
    relaxedLo.set(lo);
    relaxedHi.set(hi);
    for (let g = 0; g < 2; g++) {
      this.predictAt(this.gains[g], fallback, target);
      for (let i = 0; i < n; i++) {
        relaxedLo[i] = Math.min(relaxedLo[i], target[i] + this.errorDown[i]);
        relaxedHi[i] = Math.max(relaxedHi[i], target[i] + this.errorUp[i]);
      }
    }
    if (this.solveClosest(tau, relaxedLo, relaxedHi)) {
      for (let i = 0; i < n; i++) tau[i] += this.x[i];
    } else {
      tau.set(fallback);
    }
    return LimitResult.Relaxed;
  }

  /** Records the torque actually sent, for next tick's observer. */
  commit(tau: Float64Array, stamp: number): void {
    if (!this.prepared) return;
    this.predictAt(1, tau, this.predicted);
    this.predictedStamp = stamp;
    this.predictedPeriod = this.period;
    this.prepared = false;
  }

  /** Forgets the observer's history (after a gap, a fault reset). */
  forget(): void {
    this.predictedStamp = Number.NaN;
    this.prepared = false;
  }

  /** Bounds of this tick, for tests and diagnostics: q̇⁺ ∈ [lo, hi] (before the observer's error). */
  bounds(joint: number): [number, number] {
    return [this.lo[joint], this.hi[joint]];
  }

  /** The predicted next velocities for a torque with the URDF as it is (κ = 1; after prepare). */
  predict(tau: ArrayLike<number>, out: Float64Array): void {
    this.predictAt(1, tau, out);
  }

  // -------------------------------------------------------------------------------------------

  /** out = d + κ(Bτ + offset). */
  private predictAt(gain: number, tau: ArrayLike<number>, out: Float64Array): void {
    const n = this.dof;
    for (let i = 0; i < n; i++) {
      let s = this.offset[i];
      for (let j = 0; j < n; j++) s += this.B[i * n + j] * tau[j];
      out[i] = this.drift[i] + gain * s;
    }
  }

  /** Whether the prediction at both gains, moved by the observer's error, lies within [lo, hi]. */
  private within(tau: Float64Array, lo: Float64Array, hi: Float64Array, tolerance: number): boolean {
    const { w, wLow } = this;
    this.predictAt(this.gains[0], tau, wLow);
    this.predictAt(this.gains[1], tau, w);
    for (let i = 0; i < this.dof; i++) {
      const top = Math.max(w[i], wLow[i]) + this.errorUp[i];
      const bottom = Math.min(w[i], wLow[i]) + this.errorDown[i];
      if (top > hi[i] + tolerance || bottom < lo[i] - tolerance) return false;
    }
    return true;
  }

  /**
   * x = the smallest change of tau that keeps the effort limits and, at both gains, the bounds
   * [lo, hi] on the predicted velocity. Returns false when infeasible (or when the answer fails the
   * check).
   */
  private solveClosest(tau: Float64Array, lo: Float64Array, hi: Float64Array): boolean {
    const n = this.dof;
    const { G, h, B, w, x } = this;
    G.fill(0);
    for (let i = 0; i < n; i++) {
      const e = this.effortMax[i];
      // Effort: τ + x ≤ e  ⇔  −x ≥ τ − e;   τ + x ≥ −e  ⇔  x ≥ −e − τ.
      G[i * n + i] = -1;
      h[i] = tau[i] - e;
      G[(n + i) * n + i] = 1;
      h[n + i] = -e - tau[i];
    }
    for (let g = 0; g < 2; g++) {
      // Velocity at gain κ: w + κBx + errorUp ≤ hi  ⇔  −κ(Bx) ≥ w + errorUp − hi; the lower side
      // likewise. Rows 2n + 2gn + i (upper) and 3n + 2gn + i (lower).
      const gain = this.gains[g];
      this.predictAt(gain, tau, w);
      const up = (2 + 2 * g) * n;
      const down = (3 + 2 * g) * n;
      for (let i = 0; i < n; i++) {
        for (let j = 0; j < n; j++) {
          G[(up + i) * n + j] = -gain * B[i * n + j];
          G[(down + i) * n + j] = gain * B[i * n + j];
        }
        h[up + i] = w[i] + this.errorUp[i] - hi[i];
        h[down + i] = lo[i] - w[i] - this.errorDown[i];
      }
    }
    if (this.qp.solve(G, h, n, 6 * n, x) !== QpStatus.Solved) return false;
    // Check the answer, for the floating point.
    const check = this.scratch;
    for (let i = 0; i < n; i++) {
      check[i] = tau[i] + x[i];
      if (Math.abs(check[i]) > this.effortMax[i] * (1 + 1e-9)) return false;
    }
    return this.within(check, lo, hi, CHECK_TOLERANCE);
  }

  /** The observer: last period's prediction error, if the state is the next one after it. */
  private observe(state: JointState): void {
    const n = this.dof;
    const gap = state.stamp - this.predictedStamp;
    const consecutive = gap > 0.5 * this.predictedPeriod && gap < 1.5 * this.predictedPeriod;
    for (let i = 0; i < n; i++) {
      const e = consecutive ? state.velocity[i] - this.predicted[i] : 0;
      this.errorUp[i] = Math.max(e, 0);
      this.errorDown[i] = Math.min(e, 0);
    }
  }

  private setBounds(q: ArrayLike<number>, v: ArrayLike<number>, dt: number): void {
    const gamma = this.options.approachRate;
    for (let i = 0; i < this.dof; i++) {
      const vBar = this.velocityBound[i];
      let hi = v[i] + gamma * (vBar - v[i]);
      let lo = v[i] + gamma * (-vBar - v[i]);

      const a = this.brakeDeceleration[i];
      if (this.upper[i] !== Number.POSITIVE_INFINITY) {
        hi = Math.min(hi, stoppingVelocity(this.upper[i] - q[i] - 0.5 * dt * v[i], a, dt));
      }
      if (this.lower[i] !== Number.NEGATIVE_INFINITY) {
        lo = Math.max(lo, -stoppingVelocity(q[i] - this.lower[i] + 0.5 * dt * v[i], a, dt));
      }
      if (lo > hi) {
        // Both sides cannot hold (a joint outside both its velocity and position envelopes): meet
        // in the middle; the relaxed path brakes as hard as it can.
        const mid = 0.5 * (lo + hi);
        lo = mid;
        hi = mid;
      }
      this.lo[i] = lo;
      this.hi[i] = hi;
    }
  }

  /** Minv = M⁻¹ by Cholesky (M is symmetric positive definite; armature keeps it well conditioned). */
  private invertMassMatrix(): void {
    const n = this.dof;
    const { M, L, Minv, scratch } = this;
    for (let i = 0; i < n; i++) {
      for (let j = 0; j <= i; j++) {
        let s = M[i * n + j];
        for (let k = 0; k < j; k++) s -= L[i * n + k] * L[j * n + k];
        L[i * n + j] = i === j ? Math.sqrt(Math.max(s, 1e-300)) : s / L[j * n + j];
      }
    }
    for (let col = 0; col < n; col++) {
      for (let i = 0; i < n; i++) {
        let s = i === col ? 1 : 0;
        for (let k = 0; k < i; k++) s -= L[i * n + k] * scratch[k];
        scratch[i] = s / L[i * n + i];
      }
      for (let i = n - 1; i >= 0; i--) {
        let s = scratch[i];
        for (let k = i + 1; k < n; k++) s -= L[k * n + i] * Minv[k * n + col];
        Minv[i * n + col] = s / L[i * n + i];
      }
    }
  }
}

/**
 * The largest velocity towards a limit at distance d (d < 0: past it) from which the joint can
 * still stop before it, braking at a per second² after one more period of dt (see the file comment).
 */
export function stoppingVelocity(d: number, a: number, dt: number): number {
  if (d < 0) return (RETURN_RATE * d) / dt;
  const half = 0.5 * a * dt;
  return -half + Math.sqrt(half * half + 2 * a * d);
}

/**
 * Per joint, brakeFraction × the deceleration the effort limit can give against gravity at the
 * heaviest pose: (effort − max|g|) / max M_ii over 256 poses drawn within the limits (fixed seed).
 */
function brakingCapacity(
  dynamics: Dynamics,
  joints: readonly JointSpec[],
  effortMax: Float64Array,
  brakeFraction: number,
): Float64Array {
  const n = joints.length;
  const rng = new Rng(12345);
  const q = new Float64Array(n);
  const M = new Float64Array(n * n);
  const g = new Float64Array(n);
  const maxInertia = new Float64Array(n);
  const maxGravity = new Float64Array(n);
  for (let sample = 0; sample < 256; sample++) {
    for (let i = 0; i < n; i++) {
      const j = joints[i];
      const lo = Number.isFinite(j.lower) ? j.lower : -Math.PI;
      const hi = Number.isFinite(j.upper) ? j.upper : Math.PI;
      q[i] = lo + (hi - lo) * rng.uniform();
    }
    dynamics.massMatrix(q, M);
    dynamics.gravity(q, g);
    for (let i = 0; i < n; i++) {
      maxInertia[i] = Math.max(maxInertia[i], M[i * n + i]);
      maxGravity[i] = Math.max(maxGravity[i], Math.abs(g[i]));
    }
  }
  return Float64Array.from(joints, (_, i) => {
    // At least a tenth of the effort is left for braking, even on a joint that gravity nearly saturates.
    const available = Math.max(effortMax[i] - maxGravity[i], 0.1 * effortMax[i]);
    return (brakeFraction * available) / maxInertia[i];
  });
}
