/**
 * The safety filter: every effort command passes filter() on every tick, whatever produced it
 * (policy, hold, reset move, teleop). It turns any input — a good command, a wrong one or none —
 * into an effort that is finite, within ±effort·effortScale and never pushes further past a hard
 * position or velocity limit.
 *
 * The rules, in the order they run, and why in that order:
 *
 *  a. Watchdog. The state is checked first because every later rule reads it: missing, malformed
 *     (wrong-length arrays), non-finite, a position past a hard limit by more than positionMargin,
 *     or a velocity past velocity·(1 + velocityMargin) latches a fault. A stale state
 *     (|now − stamp| > staleTimeout) is not used but latches only once it has been stale for
 *     staleGrace. A latched fault stays until resetFault() succeeds (never while the e-stop is
 *     asserted).
 *  b. While faulted, on a trusted state: the safe stop. With the dynamics, brake through the
 *     model (a = −2ω·q̇) until every joint is slower than REST_SPEED, then hold that pose against
 *     gravity (a = ω²(q_hold − q) − 2ω·q̇), τ = M·a + h + D·q̇; without them, τ = −safeStopDamping·q̇
 *     + gravity. The command is ignored; the safe stop is not rate-limited (it must act at once).
 *  b'. No trusted state (stale within the grace, or faulted on a missing, broken or stale state):
 *     the gravity torque of the last trusted pose, plus a brake on its velocity that fades as the
 *     brake would slow the arm; zero only if no state was ever trusted. Holding the last pose is
 *     what keeps an outstretched arm up through an outage; zero effort drops it.
 *  c. A command that is missing, of the wrong length or has any non-finite element is replaced,
 *     whole, by the safe command: gravity compensation, or zero without usable gravity.
 *  d. Effort limit, then soft limits (soft-limits.ts: ros2_control's law, applied net of gravity).
 *  e. Torque-rate limit: |out − previous out| ≤ torqueRateLimit·dt. The previous output is what
 *     the filter last emitted, the safe stop included; on the first tick, and on the first tick
 *     after resetFault(), the reference is the safe hold (gravity compensation, or zero), so that
 *     the arm may take up its own weight at once instead of sagging while the torque ramps up.
 *     The rate limit comes after the soft limits because it is a comfort limit for the actuator,
 *     while (d) is about where the arm may go; it can keep an output outside the soft bounds for a
 *     tick or two when those bounds jump. It comes before (e') and (f), which must win.
 *  e'. Limits from the dynamics (dynamic-limits.ts), with the model: the torque closest to the
 *     result of (a–e) that keeps every joint's predicted next velocity within its hard velocity
 *     bound and able to brake before its hard position limit, for the whole torque vector and for
 *     every torque gain the modelError allows. In the safe stop too.
 *  f. Hard rules, always last, in the fault path too: a joint at or past its upper position limit,
 *     or at or above +velocity, gets τ ≤ min(0, g); at or past the lower limit, or at or below
 *     −velocity, τ ≥ max(0, g); then τ is clamped to ±effort·effortScale, and any non-finite value
 *     becomes 0. Continuous joints have no position limits.
 *     Gravity: the plain rule (τ ≤ 0) never forbids braking, so it cannot make things worse; but it
 *     lets an arm that gravity drags outwards sag further at τ = 0. Where gravity is known and pulls
 *     outwards (g < 0 at the upper side) we demand at least the holding torque, τ ≤ g; where it
 *     pulls inwards, τ ≤ 0 lets it help. When both sides are violated at once (e.g. past the upper
 *     limit while moving down faster than the velocity limit) the bound is the plain one, τ = 0.
 *     Gravity used here is never trusted to push outwards: min(0, g) ≤ 0.
 *
 * Counting. An intervention counts when it changed the value by more than 1e-9 (N·m); the
 * report's `interventions` say, per kind, how many joints it changed this tick (1 for the
 * command-level kinds), and `counts` how many ticks it acted in since construction/resetCounts().
 *
 * Allocation. filter() allocates nothing in steady state: no `new`, no array or object literals,
 * no closures on its path; it fills preallocated Float64Arrays and returns the same report object
 * every tick (overwritten by the next call). Only latching a fault builds its detail string.
 */
import type { JointState } from "../drivers/driver.js";
import type { Dynamics } from "../robot/dynamics.js";
import type { JointSpec } from "../robot/types.js";
import { resolveSafetyConfig, type SafetyConfig, SafetyConfigError } from "./config.js";
import { DynamicLimits, LimitResult } from "./dynamic-limits.js";
import type { Fault, FaultReason } from "./fault.js";
import { softEffortBounds } from "./soft-limits.js";

export type { SafetyConfig } from "./config.js";
export type { Fault, FaultReason } from "./fault.js";

/** Every kind of intervention, in the order the filter can make them. */
export const INTERVENTION_KINDS = [
  /** No command was given (undefined): replaced by the safe command. */
  "missingCommand",
  /** The command had the wrong length: replaced by the safe command. */
  "wrongLength",
  /** The command had a NaN or ±Infinity element: replaced by the safe command. */
  "nonfiniteCommand",
  /** Gravity was given but unusable (wrong length or non-finite): treated as absent this tick. */
  "badGravity",
  /** Clamped to the soft-limit effort bounds (soft position and velocity limits). */
  "softLimit",
  /** Held to the torque-rate limit. */
  "rateLimit",
  /** Changed to the closest torque that keeps every joint within the dynamic limits (joints changed). */
  "dynamicLimit",
  /** No torque within the effort limits could keep the dynamic limits: braking as hard as allowed. */
  "dynamicLimitRelaxed",
  /** A stale state within the grace: the command was ignored and the arm held on its last trusted state. */
  "staleHold",
  /** Hard rule: effort pushing further past a hard position limit removed. */
  "positionLimit",
  /** Hard rule: effort pushing further past the velocity limit removed. */
  "velocityLimit",
  /** Clamped to ±effort·effortScale. */
  "effortClamp",
  /** A non-finite output replaced by 0 (only reachable with infinite effort limits). */
  "nonfiniteOutput",
  /** A tick spent in the safe stop (the command, if any, was ignored). */
  "faultStop",
] as const;

export type InterventionKind = (typeof INTERVENTION_KINDS)[number];
export type InterventionCounts = { [K in InterventionKind]: number };

/** What filter() did this tick. A reused object: overwritten by the next call to filter(). */
export interface SafetyReport {
  /** A fault is latched (this tick's output is the safe stop). */
  faulted: boolean;
  /** The latched fault, if any. */
  fault?: Fault;
  /** Per kind: joints changed this tick (1 for the command-level kinds); 0 when it did not act. */
  interventions: InterventionCounts;
  /** Some kind acted this tick. */
  anyIntervention: boolean;
}

/** Smallest change that counts as an intervention (N·m). */
const EPSILON = 1e-9;

/** Watchdog verdicts. */
const STATE_OK = 0;
/** Fresh and finite, but past a position or velocity margin. */
const STATE_OUT_OF_RANGE = 1;
/** Missing, malformed, stale or non-finite: nothing in it may be used. */
const STATE_UNTRUSTED = 2;

/** Every joint slower than this (rad/s or m/s): the safe stop's brake has stopped the arm. */
export const REST_SPEED = 0.05;

function zeroCounts(): InterventionCounts {
  const counts = {} as InterventionCounts;
  for (const kind of INTERVENTION_KINDS) counts[kind] = 0;
  return counts;
}

export class SafetyFilter {
  readonly joints: readonly JointSpec[];
  readonly dof: number;
  readonly config: Readonly<SafetyConfig>;
  /**
   * Cumulative ticks in which each kind acted (since construction or resetCounts()). Also typed as
   * a string record so that callers can diff it generically ({ ...counts }, Object.entries).
   */
  readonly counts: InterventionCounts & Record<string, number> = zeroCounts();
  /** The limits from the dynamics; undefined without a model or with config.dynamicLimits off. */
  readonly dynamicLimits: DynamicLimits | undefined;

  /** effort·effortScale per joint. */
  private readonly effortMax: Float64Array;
  /** Hard position limits; ±Infinity for a continuous joint. */
  private readonly lower: Float64Array;
  private readonly upper: Float64Array;
  private readonly velocityMax: Float64Array;
  /** 1 where the soft limits apply (the joint has a <safety_controller> and useSoftLimits). */
  private readonly softJoint: Uint8Array;
  /** The last output, the reference of the rate limit. */
  private readonly previous: Float64Array;
  /** Joints whose effort was already counted as clamped this tick (so a joint counts once). */
  private readonly clampedThisTick: Uint8Array;
  /** Scratch for soft-limit bounds. */
  private readonly bounds = new Float64Array(2);
  private readonly report: SafetyReport;
  private readonly tick: InterventionCounts;

  // The safe stop with the model: the pose it holds once the arm has stopped.
  private readonly holdPose: Float64Array;
  private holdCaptured = false;
  private readonly acceleration: Float64Array;
  /** The output before the dynamic limits, to count the joints they changed. */
  private readonly beforeLimits: Float64Array;
  // The last trusted state, for the hold while the state is stale: its gravity torque and the
  // brake on its velocity (M·q̇, fading each stale tick as the brake would slow the arm).
  private readonly lastGravity: Float64Array;
  private readonly lastMomentum: Float64Array;
  private hasLastGravity = false;
  private momentumFade = 0;
  /** When the state went stale (driver clock), NaN while it is fresh. */
  private staleSince = Number.NaN;
  private restNow = false;

  private latched: Fault | undefined;
  /** Rate-limit from the safe hold rather than `previous` (first tick, and after resetFault). */
  private fromHold = true;
  /** Whether the last state seen by filter() passed the watchdog. */
  private lastStateAcceptable = false;
  private lastNow = Number.NaN;
  private estopAsserted = false;

  /**
   * `dynamics`, the robot's rigid-body model (the same URDF as `joints`), turns on the limits from
   * the dynamics (dynamic-limits.ts) and the model-based safe stop; without it only the per-joint
   * rules apply (unit tests, tools).
   */
  constructor(joints: readonly JointSpec[], config: Partial<SafetyConfig> = {}, dynamics?: Dynamics) {
    this.config = Object.freeze(resolveSafetyConfig(config));
    const n = joints.length;
    if (n === 0) throw new SafetyConfigError("safety filter: the robot has no moving joints");
    const rate = this.config.torqueRateLimit;
    if (typeof rate !== "number" && rate.length !== n)
      throw new SafetyConfigError(`safety filter: torqueRateLimit has ${rate.length} values for ${n} joints`);
    this.joints = joints;
    this.dof = n;
    this.effortMax = new Float64Array(n);
    this.lower = new Float64Array(n);
    this.upper = new Float64Array(n);
    this.velocityMax = new Float64Array(n);
    this.softJoint = new Uint8Array(n);
    this.previous = new Float64Array(n);
    this.clampedThisTick = new Uint8Array(n);
    this.holdPose = new Float64Array(n);
    this.acceleration = new Float64Array(n);
    this.beforeLimits = new Float64Array(n);
    this.lastGravity = new Float64Array(n);
    this.lastMomentum = new Float64Array(n);
    for (let i = 0; i < n; i++) {
      const j = joints[i];
      checkJoint(j, this.config.useSoftLimits);
      this.effortMax[i] = j.effort * this.config.effortScale;
      const continuous = j.type === "continuous";
      this.lower[i] = continuous ? Number.NEGATIVE_INFINITY : j.lower;
      this.upper[i] = continuous ? Number.POSITIVE_INFINITY : j.upper;
      this.velocityMax[i] = j.velocity;
      this.softJoint[i] = this.config.useSoftLimits && j.safety !== undefined ? 1 : 0;
    }
    if (dynamics !== undefined && dynamics.dof !== n) {
      throw new SafetyConfigError(
        `safety filter: the dynamics model has ${dynamics.dof} joints, the robot ${n}`,
      );
    }
    this.dynamicLimits =
      dynamics !== undefined && this.config.dynamicLimits
        ? new DynamicLimits(dynamics, joints, this.effortMax, this.config)
        : undefined;
    this.tick = zeroCounts();
    this.report = { faulted: false, fault: undefined, interventions: this.tick, anyIntervention: false };
  }

  /** The latched fault, or undefined. */
  get fault(): Fault | undefined {
    return this.latched;
  }

  /**
   * Whether the arm was at rest at the last tick: a trusted state with every joint slower than
   * REST_SPEED. What the application waits for before it turns torque off on exit.
   */
  get atRest(): boolean {
    return this.restNow;
  }

  /**
   * Filters one command into `out` (length dof). `command` already includes gravity compensation
   * when that is on; `gravity` is the gravity torque at `state` (undefined when compensation is
   * off); `now` is the driver's clock (s); `dt` the control period (s). Never throws for bad
   * command, state or gravity; throws only when `out` has the wrong length (a programming error
   * that no output could make safe). Returns a reused report, overwritten by the next call.
   */
  filter(
    command: ArrayLike<number> | undefined,
    state: JointState | undefined,
    now: number,
    gravity: Float64Array | undefined,
    dt: number,
    out: Float64Array,
  ): SafetyReport {
    const n = this.dof;
    if (out.length !== n) {
      throw new Error(`safety filter: output array has length ${out.length}, expected ${n} (one per joint)`);
    }
    const tick = this.tick;
    for (let k = 0; k < INTERVENTION_KINDS.length; k++) tick[INTERVENTION_KINDS[k]] = 0;
    this.clampedThisTick.fill(0);
    this.lastNow = now;

    // a. Watchdog.
    const verdict = this.watch(state, now);
    this.lastStateAcceptable = verdict === STATE_OK;
    const trusted = verdict !== STATE_UNTRUSTED ? state : undefined;
    const g = trusted !== undefined ? this.usableGravity(gravity) : undefined;
    const limits = trusted !== undefined ? this.dynamicLimits : undefined;
    if (limits !== undefined) limits.prepare(trusted as JointState, dt);
    this.restNow = trusted !== undefined && slowerThan(trusted.velocity, REST_SPEED);

    if (trusted === undefined) {
      // b'. No usable state: hold on the last trusted one (stale grace, or latched).
      if (this.latched !== undefined) tick.faultStop = 1;
      else tick.staleHold = 1;
      this.holdBlind(dt, out);
    } else if (this.latched !== undefined) {
      // b. Safe stop.
      tick.faultStop = 1;
      this.safeStop(trusted, g, out);
    } else {
      this.takeCommand(command, g, out); // c
      this.applySoftLimits(trusted, g, out); // d
      this.applyRateLimit(g, dt, out); // e
    }
    if (limits !== undefined) this.applyDynamicLimits(limits, out); // e'
    this.applyHardRules(trusted, g, out); // f
    if (trusted !== undefined) this.rememberTrusted(trusted, g, limits, out);

    this.previous.set(out);
    this.fromHold = false;
    return this.finishReport();
  }

  /**
   * Latches an external fault (e-stop, driver alert, learner crash). Ignored when a fault is
   * already latched: the first one is the root cause. `now` defaults to the last tick's clock.
   */
  latch(reason: FaultReason, detail: string, now: number = this.lastNow): void {
    if (this.latched === undefined) this.setFault(reason, detail, now);
  }

  /**
   * The emergency stop's level, as its source last reported it (a ROS `~/estop` Bool, a teleop
   * button). Asserting it latches an "estop" fault; while it stays asserted resetFault() refuses.
   * Releasing it does not clear the fault: that takes an explicit resetFault().
   */
  setEstop(asserted: boolean, detail = "emergency stop asserted"): void {
    this.estopAsserted = asserted;
    if (asserted) this.latch("estop", detail);
  }

  /** Whether the emergency stop is asserted (see setEstop). */
  get estop(): boolean {
    return this.estopAsserted;
  }

  /**
   * Clears the latched fault, only if the e-stop is not asserted and the state seen at the last
   * filter() call was present, well-formed, fresh, finite and within the watchdog's position and
   * velocity margins. Returns whether no fault is latched afterwards. The next tick rate-limits
   * from the safe hold.
   */
  resetFault(): boolean {
    if (this.latched === undefined) return true;
    if (this.estopAsserted || !this.lastStateAcceptable) return false;
    this.latched = undefined;
    this.fromHold = true;
    this.holdCaptured = false;
    return true;
  }

  /**
   * Forgets what the filter predicted from the last tick (the dynamic limits' observer), for when
   * the arm was moved by something other than the torque it sent: a simulator placed at a new pose.
   */
  forgetMotionHistory(): void {
    this.dynamicLimits?.forget();
  }

  /** Zeroes the cumulative counts. */
  resetCounts(): void {
    for (let k = 0; k < INTERVENTION_KINDS.length; k++) this.counts[INTERVENTION_KINDS[k]] = 0;
  }

  // -------------------------------------------------------------------------------------------

  /** a. Checks the state, latches a fault on the first problem found, and returns the verdict. */
  private watch(state: JointState | undefined, now: number): number {
    const n = this.dof;
    const free = this.latched === undefined;
    if (state === undefined || state === null) {
      if (free) this.setFault("missing_state", "no joint state received", now);
      return STATE_UNTRUSTED;
    }
    const position = state.position;
    const velocity = state.velocity;
    const positionLength = position?.length;
    const velocityLength = velocity?.length;
    if (positionLength !== n || velocityLength !== n) {
      if (free) {
        this.setFault(
          "malformed_state",
          `joint state has ${positionLength} positions and ${velocityLength} velocities, expected ${n}`,
          now,
        );
      }
      return STATE_UNTRUSTED;
    }
    const age = now - state.stamp;
    const timeout = this.config.staleTimeout;
    if (!(age <= timeout && age >= -timeout)) {
      if (Number.isNaN(this.staleSince)) this.staleSince = now;
      const staleFor = now - this.staleSince;
      // Within the grace (NaN clocks get none): hold, latch nothing.
      if (staleFor < this.config.staleGrace && !Number.isNaN(age)) return STATE_UNTRUSTED;
      if (free) {
        const detail = Number.isNaN(age)
          ? `state stamp ${state.stamp} or clock ${now} is not a number`
          : age > 0
            ? `state is ${age.toPrecision(3)} s old (limit ${timeout} s), stale for ${staleFor.toPrecision(3)} s (grace ${this.config.staleGrace} s)`
            : `state is stamped ${(-age).toPrecision(3)} s in the future (limit ${timeout} s) for ${staleFor.toPrecision(3)} s (grace ${this.config.staleGrace} s)`;
        this.setFault("stale_state", detail, now);
      }
      return STATE_UNTRUSTED;
    }
    this.staleSince = Number.NaN;
    for (let i = 0; i < n; i++) {
      const q = position[i];
      const v = velocity[i];
      if (!Number.isFinite(q) || !Number.isFinite(v)) {
        if (free) {
          const what = Number.isFinite(q) ? `velocity ${v}` : `position ${q}`;
          this.setFault("nonfinite_state", `joint "${this.joints[i].name}" ${what}`, now);
        }
        return STATE_UNTRUSTED;
      }
    }
    const margin = this.config.positionMargin;
    const velocityFactor = 1 + this.config.velocityMargin;
    for (let i = 0; i < n; i++) {
      const q = position[i];
      if (q > this.upper[i] + margin || q < this.lower[i] - margin) {
        if (free) {
          this.setFault(
            "position_out_of_range",
            `joint "${this.joints[i].name}" position ${q} is beyond [${this.lower[i]}, ${this.upper[i]}] by more than ${margin}`,
            now,
          );
        }
        return STATE_OUT_OF_RANGE;
      }
      const v = velocity[i];
      const vLimit = this.velocityMax[i] * velocityFactor;
      if (v > vLimit || v < -vLimit) {
        if (free) {
          this.setFault(
            "velocity_out_of_range",
            `joint "${this.joints[i].name}" velocity ${v} exceeds ${this.velocityMax[i]}·(1 + ${this.config.velocityMargin})`,
            now,
          );
        }
        return STATE_OUT_OF_RANGE;
      }
    }
    return STATE_OK;
  }

  private setFault(reason: FaultReason, detail: string, now: number): void {
    this.latched = { reason, detail, since: now };
  }

  /**
   * b. The safe stop on a trusted state. With the dynamics: brake through the model with the
   * deceleration −2ω·q̇ until every joint is slower than REST_SPEED, then hold the pose where it
   * stopped with a = ω²(q_hold − q) − 2ω·q̇; τ = M·a + h + D·q̇ (limits.hold). Without the dynamics:
   * τ = −safeStopDamping·q̇ + gravity. Not rate-limited (it must act at once); the dynamic limits
   * and the hard rules still apply after it.
   */
  private safeStop(state: JointState, g: Float64Array | undefined, out: Float64Array): void {
    const n = this.dof;
    const velocity = state.velocity;
    const limits = this.dynamicLimits;
    if (limits === undefined) {
      const b = this.config.safeStopDamping;
      for (let i = 0; i < n; i++) out[i] = -b * velocity[i] + (g !== undefined ? g[i] : 0);
      return;
    }
    const omega = this.config.safeStopBandwidth;
    if (!this.holdCaptured) {
      this.holdPose.set(state.position);
      if (this.restNow) this.holdCaptured = true;
    }
    const a = this.acceleration;
    for (let i = 0; i < n; i++) {
      a[i] = omega * omega * (this.holdPose[i] - state.position[i]) - 2 * omega * velocity[i];
    }
    const M = limits.M;
    for (let i = 0; i < n; i++) {
      let s = limits.hold[i];
      for (let j = 0; j < n; j++) s += M[i * n + j] * a[j];
      out[i] = s;
    }
  }

  /**
   * b'. No trusted state (stale, missing, malformed, non-finite): the gravity torque of the last
   * trusted pose, minus a brake on the last trusted velocity (through the model: −2ω·M·q̇) that
   * fades by (1 − 2ωT) each tick, as the brake would slow the arm. Nothing known: zero effort.
   */
  private holdBlind(dt: number, out: Float64Array): void {
    if (!this.hasLastGravity) {
      out.fill(0);
      return;
    }
    const brake = 2 * this.config.safeStopBandwidth;
    const fade = this.momentumFade;
    for (let i = 0; i < this.dof; i++) out[i] = this.lastGravity[i] - brake * fade * this.lastMomentum[i];
    // A bad dt (≤ 0 or not finite) ends the brake: gravity alone is never wrong by much.
    const decay = 1 - brake * dt;
    this.momentumFade = Number.isFinite(decay) && dt > 0 ? Math.max(0, fade * decay) : 0;
  }

  /** e'. The limits from the dynamics (dynamic-limits.ts), counted per joint changed. */
  private applyDynamicLimits(limits: DynamicLimits, out: Float64Array): void {
    const before = this.beforeLimits;
    before.set(out);
    const result = limits.constrain(out);
    if (result === LimitResult.Unchanged) return;
    let changed = 0;
    for (let i = 0; i < this.dof; i++) if (Math.abs(out[i] - before[i]) > EPSILON) changed++;
    if (result === LimitResult.Relaxed) this.tick.dynamicLimitRelaxed = Math.max(1, changed);
    else if (changed > 0) this.tick.dynamicLimit = changed;
  }

  /** Keeps what the blind hold needs from a trusted tick, and the observer's prediction. */
  private rememberTrusted(
    state: JointState,
    g: Float64Array | undefined,
    limits: DynamicLimits | undefined,
    out: Float64Array,
  ): void {
    const n = this.dof;
    if (limits !== undefined) {
      limits.commit(out, state.stamp);
      const M = limits.M;
      for (let i = 0; i < n; i++) {
        let s = 0;
        for (let j = 0; j < n; j++) s += M[i * n + j] * state.velocity[j];
        this.lastMomentum[i] = s;
      }
      this.lastGravity.set(limits.gravity);
      this.momentumFade = 1;
    } else {
      if (g !== undefined) this.lastGravity.set(g);
      else this.lastGravity.fill(0);
      this.lastMomentum.fill(0);
      this.momentumFade = 0;
    }
    this.hasLastGravity = true;
  }

  /** The gravity torque if it is usable (length dof, all finite), else undefined (counted). */
  private usableGravity(gravity: Float64Array | undefined): Float64Array | undefined {
    if (gravity === undefined || gravity === null) return undefined;
    let usable = gravity.length === this.dof;
    for (let i = 0; usable && i < this.dof; i++) usable = Number.isFinite(gravity[i]);
    if (usable) return gravity;
    this.tick.badGravity = 1;
    return undefined;
  }

  /** c. Copies a good command into out, or writes the safe command (gravity, or zero). */
  private takeCommand(
    command: ArrayLike<number> | undefined,
    g: Float64Array | undefined,
    out: Float64Array,
  ): void {
    const n = this.dof;
    let good = false;
    if (command === undefined || command === null) {
      this.tick.missingCommand = 1;
    } else if (command.length !== n) {
      this.tick.wrongLength = 1;
    } else {
      good = true;
      for (let i = 0; i < n; i++) {
        const x = command[i];
        if (!Number.isFinite(x)) {
          good = false;
          break;
        }
        out[i] = x;
      }
      if (!good) this.tick.nonfiniteCommand = 1;
    }
    if (good) return;
    for (let i = 0; i < n; i++) out[i] = g !== undefined ? g[i] : 0;
  }

  /** d. Effort limit, then the soft-limit effort bounds (net of gravity; see soft-limits.ts). */
  private applySoftLimits(state: JointState, g: Float64Array | undefined, out: Float64Array): void {
    const bounds = this.bounds;
    for (let i = 0; i < this.dof; i++) {
      const x = this.clampEffort(i, out[i]);
      let y = x;
      if (this.softJoint[i] === 1) {
        softEffortBounds(
          this.joints[i],
          state.position[i],
          state.velocity[i],
          this.effortMax[i],
          g !== undefined ? g[i] : 0,
          bounds,
        );
        if (y < bounds[0]) y = bounds[0];
        else if (y > bounds[1]) y = bounds[1];
        if (Math.abs(y - x) > EPSILON) this.tick.softLimit++;
      }
      out[i] = y;
    }
  }

  /** e. |out − reference| ≤ torqueRateLimit·dt; a bad dt (≤ 0 or non-finite) allows no change. */
  private applyRateLimit(g: Float64Array | undefined, dt: number, out: Float64Array): void {
    const ok = dt > 0 && Number.isFinite(dt);
    const rate = this.config.torqueRateLimit;
    for (let i = 0; i < this.dof; i++) {
      const step = ok ? (typeof rate === "number" ? rate : rate[i]) * dt : 0;
      const reference = this.fromHold ? (g !== undefined ? g[i] : 0) : this.previous[i];
      const x = out[i];
      let y = x;
      if (y > reference + step) y = reference + step;
      else if (y < reference - step) y = reference - step;
      if (Math.abs(y - x) > EPSILON) this.tick.rateLimit++;
      out[i] = y;
    }
  }

  /**
   * f. The hard rules (see the file comment): no effort pushing further past a hard position or
   * velocity limit, then ±effort·effortScale, then finite. With no trusted state only the last two.
   */
  private applyHardRules(
    state: JointState | undefined,
    g: Float64Array | undefined,
    out: Float64Array,
  ): void {
    for (let i = 0; i < this.dof; i++) {
      let x = out[i];
      if (state !== undefined) {
        const q = state.position[i];
        const v = state.velocity[i];
        const vMax = this.velocityMax[i];
        const pastUpper = q >= this.upper[i];
        const pastLower = q <= this.lower[i];
        const high = pastUpper || v >= vMax;
        const low = pastLower || v <= -vMax;
        let lo = Number.NEGATIVE_INFINITY;
        let hi = Number.POSITIVE_INFINITY;
        if (high) hi = 0;
        if (low) lo = 0;
        if (g !== undefined && high !== low) {
          const gi = g[i];
          if (high && gi < 0) hi = gi;
          if (low && gi > 0) lo = gi;
        }
        if (x > hi) {
          if (x - hi > EPSILON) {
            if (pastUpper) this.tick.positionLimit++;
            else this.tick.velocityLimit++;
          }
          x = hi;
        } else if (x < lo) {
          if (lo - x > EPSILON) {
            if (pastLower) this.tick.positionLimit++;
            else this.tick.velocityLimit++;
          }
          x = lo;
        }
      }
      x = this.clampEffort(i, x);
      if (!Number.isFinite(x)) {
        this.tick.nonfiniteOutput++;
        x = 0;
      }
      out[i] = x;
    }
  }

  /** ±effort·effortScale, counting a joint at most once per tick. */
  private clampEffort(i: number, x: number): number {
    const e = this.effortMax[i];
    const y = Math.min(Math.max(x, -e), e);
    if (Math.abs(y - x) > EPSILON && this.clampedThisTick[i] === 0) {
      this.clampedThisTick[i] = 1;
      this.tick.effortClamp++;
    }
    return y;
  }

  private finishReport(): SafetyReport {
    const report = this.report;
    let any = false;
    for (let k = 0; k < INTERVENTION_KINDS.length; k++) {
      const kind = INTERVENTION_KINDS[k];
      if (this.tick[kind] > 0) {
        this.counts[kind]++;
        any = true;
      }
    }
    report.anyIntervention = any;
    report.faulted = this.latched !== undefined;
    report.fault = this.latched;
    return report;
  }
}

/** Whether every |v_i| < speed. */
function slowerThan(v: ArrayLike<number>, speed: number): boolean {
  for (let i = 0; i < v.length; i++) if (!(Math.abs(v[i]) < speed)) return false;
  return true;
}

/** Rejects a joint the filter cannot make safe, with a one-line message naming it. */
function checkJoint(j: JointSpec, useSoftLimits: boolean): void {
  const where = `safety filter: joint "${j.name}"`;
  if (!(j.effort > 0)) throw new SafetyConfigError(`${where}: effort limit must be > 0, got ${j.effort}`);
  if (!(j.velocity > 0))
    throw new SafetyConfigError(`${where}: velocity limit must be > 0, got ${j.velocity}`);
  if (j.type !== "continuous" && !(j.lower <= j.upper)) {
    throw new SafetyConfigError(`${where}: needs lower ≤ upper, got ${j.lower} and ${j.upper}`);
  }
  const s = j.safety;
  if (s === undefined || !useSoftLimits) return;
  if (!(s.softLower <= s.softUpper)) {
    throw new SafetyConfigError(
      `${where}: <safety_controller> needs soft_lower_limit ≤ soft_upper_limit, got ${s.softLower} and ${s.softUpper}`,
    );
  }
  // Zero gains are legal URDF but, under ros2_control's law, allow no effort (k_velocity = 0) or
  // no motion (k_position = 0) at all: almost surely a mistake, and one the arm would not survive
  // being taught with. Say so instead of silently freezing the joint.
  if (!(s.kVelocity > 0 && Number.isFinite(s.kVelocity))) {
    throw new SafetyConfigError(
      `${where}: <safety_controller> k_velocity must be a finite number > 0 (0 allows no effort at all), got ${s.kVelocity}; or set useSoftLimits false`,
    );
  }
  if (j.type !== "continuous" && !(s.kPosition > 0 && Number.isFinite(s.kPosition))) {
    throw new SafetyConfigError(
      `${where}: <safety_controller> k_position must be a finite number > 0 (0 allows no motion at all), got ${s.kPosition}; or set useSoftLimits false`,
    );
  }
}
