/**
 * The digital twin: the arm's rigid-body dynamics (from its URDF) integrated in-process, behind
 * the same Driver interface as the real robot.
 *
 * One physics step (period dt = 1 / physicsRateHz):
 *   τ_net = τ_applied − damping·q̇ − friction·tanh(q̇ / frictionSmoothing)
 *   q̈     = ABA(q, q̇, τ_net)                       (Dynamics.forwardDynamics)
 *   q̇    += q̈·dt, then q += q̇·dt                    (semi-implicit, i.e. symplectic, Euler)
 * with the joint-limit stops solved implicitly inside the velocity update (see resolveStops).
 * The applied effort is the last command, clamped at the URDF effort limit, held constant over
 * the control period (zero-order hold), as a current-mode servo does. A twin with a reality gap
 * (src/drivers/sim-reality.ts) is built on the drawn model instead of the URDF's, and its actuators
 * produce torqueConstant × the applied effort, clamped at torqueCeiling; its state is read
 * stateLatency old and quantised.
 *
 * Timing: "stepped" moves only when advance(dt) is called (training, as fast as possible);
 * "realtime" steps itself on a timer to follow wall-clock time (a stand-in for a real robot).
 *
 * No allocation per physics step: every array is made in the constructor.
 */
import { COULOMB_SMOOTHING, Dynamics } from "../robot/dynamics.js";
import type { RobotModel } from "../robot/types.js";
import { Rng } from "../util/rng.js";
import type { Driver, JointState } from "./driver.js";

export interface SimDriverOptions {
  /** The robot (parsed URDF). Joint order and limits come from here. */
  model: RobotModel;
  /** Physics steps per simulated second. Default 1000. */
  physicsRateHz?: number;
  /**
   * "stepped" (default): moves only when advance(dt) is called. "realtime": steps itself to
   * follow wall-clock time, in whole physics steps, at most maxStepsPerWake at a time.
   */
  timing?: "stepped" | "realtime";
  /** Start position (rad or m). Default: 0 per joint, or the middle of its range when 0 is outside. */
  initialPosition?: ArrayLike<number>;
  /** Start velocity. Default 0. */
  initialVelocity?: ArrayLike<number>;
  /** Joint-limit stop spring (N·m/rad), acting past a hard limit. Default 1e6 (a metal stop). */
  limitStiffness?: number;
  /** Joint-limit stop damper (N·m·s/rad), acting while past a hard limit. Default 10. */
  limitDamping?: number;
  /**
   * Velocity scale v_s (rad/s) of the tanh that smooths Coulomb friction. Default
   * COULOMB_SMOOTHING (0.25), as the learner's URDF prior reads the friction.
   * Friction is integrated explicitly, so its slope friction/v_s (plus damping) times dt times the
   * joint's inverse effective inertia must stay below 2; the constructor checks this on a set of
   * poses and throws when it does not hold (raise v_s or physicsRateHz then).
   */
  frictionSmoothing?: number;
  /** Standard deviation of Gaussian noise on the reported position (rad). Default 0 (off). */
  positionNoise?: number;
  /** Standard deviation of Gaussian noise on the reported velocity (rad/s). Default 0 (off). */
  velocityNoise?: number;
  /**
   * Per joint: produced torque per commanded torque (a torque-constant error). Default 1 each.
   * The effort reported is the produced torque over this factor, as a current sensor read with the
   * nominal torque constant reports it.
   */
  torqueConstant?: ArrayLike<number>;
  /** Per joint: the largest |produced torque| (current saturation). Default: the URDF effort limit. */
  torqueCeiling?: ArrayLike<number>;
  /** Age (s) of the state readState reports, rounded to whole physics steps. Default 0. */
  stateLatency?: number;
  /** Quantisation of the reported position (rad per count) and velocity (rad/s per unit). Default 0 (off). */
  positionResolution?: number;
  velocityResolution?: number;
  /** Seed of the noise. Default 0. */
  seed?: number;
  /**
   * Realtime only: the most physics steps run at one wake-up. A backlog beyond this (a stalled
   * event loop) is dropped, not caught up, so the twin falls behind wall time instead of taking a
   * huge burst of steps. Default: 50 ms worth of steps.
   */
  maxStepsPerWake?: number;
  /** Driver name. Default "sim". */
  name?: string;
}

/**
 * Velocities below this (rad/s or m/s) are set to zero. Under explicit friction a joint at rest
 * decays geometrically towards zero velocity and would reach subnormal numbers, which make every
 * floating-point operation on them (all of ABA) many times slower. 1e-20 rad/s moves a joint by
 * less than one rounding step of its position in a lifetime.
 */
const VELOCITY_FLUSH = 1e-20;

/**
 * The stop solver reuses the mass matrix while no joint has moved more than this (rad or m) since
 * it was computed: a joint resting on its stop then costs no CRBA per step, and M(q) changes by
 * about this fraction, far below the stop's own compliance.
 */
const MASS_MATRIX_REUSE = 1e-6;

/** Largest explicit step factor (slope · dt · inverse inertia) that the friction/damping may reach. */
const EXPLICIT_STABILITY_LIMIT = 2;

export class SimDriver implements Driver {
  readonly name: string;
  readonly jointNames: readonly string[];
  readonly timing: "stepped" | "realtime";
  readonly physicsRateHz: number;
  /** Physics period (s). */
  readonly dt: number;
  readonly dynamics: Dynamics;

  /** Commands that held a non-finite value (each such value was replaced by zero). */
  nonFiniteEfforts = 0;
  /** Effort values clamped at the URDF effort limit. */
  saturatedEfforts = 0;
  /** Physics steps in which a joint-limit stop acted. */
  limitContactSteps = 0;
  /** Mass matrices computed by the stop solver (see MASS_MATRIX_REUSE). */
  massMatrixUpdates = 0;
  /** Realtime only: physics steps skipped because the event loop stalled (see maxStepsPerWake). */
  droppedSteps = 0;

  private readonly dof: number;
  private readonly lower: Float64Array;
  private readonly upper: Float64Array;
  private readonly effortLimit: Float64Array;
  private readonly damping: Float64Array;
  private readonly friction: Float64Array;
  private readonly limitStiffness: number;
  private readonly limitDamping: number;
  private readonly frictionSmoothing: number;
  private readonly positionNoise: number;
  private readonly velocityNoise: number;
  private readonly positionResolution: number;
  private readonly velocityResolution: number;
  private readonly torqueConstant: Float64Array;
  private readonly torqueCeiling: Float64Array;
  private readonly rng: Rng;
  private readonly maxStepsPerWake: number;

  // Physics state and per-step scratch.
  private readonly q: Float64Array;
  private readonly qd: Float64Array;
  private readonly qdd: Float64Array;
  private readonly tauNet: Float64Array;
  /** The effort commanded: the last command, sanitised and clamped at the URDF limit. */
  private readonly applied: Float64Array;
  /** The torque the actuators produce for it: × torqueConstant, clamped at torqueCeiling. */
  private readonly produced: Float64Array;
  /**
   * State latency: the last latencySteps + 1 physics states (q, q̇ per row), a ring written after
   * every step; readState reports the oldest. Empty without latency.
   */
  private readonly latencySteps: number;
  private readonly historyQ: Float64Array;
  private readonly historyQd: Float64Array;
  /**
   * Sensor noise: one draw per joint per physics step, as a sensor takes one sample per period:
   * reading twice between steps gives the same values (a real driver hands out its last message).
   */
  private readonly positionNoiseDraw: Float64Array;
  private readonly velocityNoiseDraw: Float64Array;
  /** The physics step the noise was drawn for (−1: never). */
  private noiseStep = -1;
  /** Stop scratch: which side each joint touches (+1 upper, −1 lower, 0 free), M, M v*, system. */
  private readonly side: Int8Array;
  private readonly M: Float64Array;
  /** The joint positions M was computed at (NaN: never). */
  private readonly massMatrixAt: Float64Array;
  private readonly Mv: Float64Array;
  private readonly A: Float64Array;
  private readonly b: Float64Array;

  /** Physics steps since construction; simulated time is steps · dt (no summed rounding). */
  private steps = 0;
  /** advance(): the fraction of a physics step carried to the next call. */
  private carry = 0;
  /** The reported state: one object, refilled by readState(). */
  private readonly state: JointState;

  // Realtime pacing.
  private timer: ReturnType<typeof setInterval> | undefined;
  private wallAnchorMs = 0;
  private stepsSinceAnchor = 0;
  private running = false;

  constructor(options: SimDriverOptions) {
    const model = options.model;
    const n = model.dof;
    this.dof = n;
    this.name = options.name ?? "sim";
    this.jointNames = model.joints.map((j) => j.name);
    this.timing = options.timing ?? "stepped";
    if (this.timing !== "stepped" && this.timing !== "realtime")
      throw new Error(`SimDriver: option "timing" must be "stepped" or "realtime", got "${this.timing}"`);
    this.physicsRateHz = positiveOption("physicsRateHz", options.physicsRateHz, 1000);
    this.dt = 1 / this.physicsRateHz;
    this.limitStiffness = nonNegativeOption("limitStiffness", options.limitStiffness, 1e6);
    this.limitDamping = nonNegativeOption("limitDamping", options.limitDamping, 10);
    this.frictionSmoothing = positiveOption(
      "frictionSmoothing",
      options.frictionSmoothing,
      COULOMB_SMOOTHING,
    );
    this.positionNoise = nonNegativeOption("positionNoise", options.positionNoise, 0);
    this.velocityNoise = nonNegativeOption("velocityNoise", options.velocityNoise, 0);
    this.positionResolution = nonNegativeOption("positionResolution", options.positionResolution, 0);
    this.velocityResolution = nonNegativeOption("velocityResolution", options.velocityResolution, 0);
    this.latencySteps = Math.round(
      nonNegativeOption("stateLatency", options.stateLatency, 0) * this.physicsRateHz,
    );
    this.rng = new Rng(options.seed ?? 0);
    this.maxStepsPerWake = Math.max(
      1,
      Math.round(positiveOption("maxStepsPerWake", options.maxStepsPerWake, 0.05 * this.physicsRateHz)),
    );
    this.dynamics = new Dynamics(model);

    this.lower = Float64Array.from(model.joints, (j) => j.lower);
    this.upper = Float64Array.from(model.joints, (j) => j.upper);
    this.effortLimit = Float64Array.from(model.joints, (j) => j.effort);
    this.damping = Float64Array.from(model.joints, (j) => j.damping);
    this.friction = Float64Array.from(model.joints, (j) => j.friction);
    this.torqueConstant = perJointOption("torqueConstant", options.torqueConstant, n, 1);
    this.torqueCeiling = perJointOption("torqueCeiling", options.torqueCeiling, n, Number.POSITIVE_INFINITY);
    for (let i = 0; i < n; i++)
      this.torqueCeiling[i] = Math.min(this.torqueCeiling[i], this.effortLimit[i] * this.torqueConstant[i]);

    this.q = new Float64Array(n);
    this.qd = new Float64Array(n);
    this.qdd = new Float64Array(n);
    this.tauNet = new Float64Array(n);
    this.applied = new Float64Array(n);
    this.produced = new Float64Array(n);
    const rows = this.latencySteps > 0 ? this.latencySteps + 1 : 0;
    this.historyQ = new Float64Array(rows * n);
    this.historyQd = new Float64Array(rows * n);
    this.positionNoiseDraw = new Float64Array(n);
    this.velocityNoiseDraw = new Float64Array(n);
    this.side = new Int8Array(n);
    this.M = new Float64Array(n * n);
    this.massMatrixAt = new Float64Array(n).fill(Number.NaN);
    this.Mv = new Float64Array(n);
    this.A = new Float64Array(n * n);
    this.b = new Float64Array(n);
    this.state = {
      stamp: 0,
      position: new Float64Array(n),
      velocity: new Float64Array(n),
      effort: new Float64Array(n),
    };

    for (let i = 0; i < n; i++) {
      const zeroInside = this.lower[i] <= 0 && this.upper[i] >= 0;
      this.q[i] = zeroInside ? 0 : 0.5 * (this.lower[i] + this.upper[i]);
    }
    if (options.initialPosition !== undefined || options.initialVelocity !== undefined) {
      this.setState(options.initialPosition ?? this.q, options.initialVelocity ?? this.qd);
    } else this.fillHistory();
    this.checkExplicitStability();
  }

  /** Simulated time (s): physics steps taken times dt. */
  get simTime(): number {
    return this.steps * this.dt;
  }

  async start(): Promise<void> {
    if (this.running) return;
    this.running = true;
    if (this.timing === "realtime") {
      this.wallAnchorMs = performance.now();
      this.stepsSinceAnchor = 0;
      const wakeMs = Math.max(1, 1000 / this.physicsRateHz);
      this.timer = setInterval(() => this.catchUpToWallTime(), wakeMs);
      // The twin alone does not keep the process alive (the control loop's own timers do).
      this.timer.unref();
    }
  }

  /** Zero effort; a realtime twin stops stepping. Safe to call twice. */
  async stop(): Promise<void> {
    this.applied.fill(0);
    this.produced.fill(0);
    if (this.timer !== undefined) clearInterval(this.timer);
    this.timer = undefined;
    this.running = false;
  }

  /**
   * The current state (stateLatency old, stamped with the time it was measured). Returns the SAME
   * object every call (no allocation), refilled each time: callers that keep a state past the next
   * call must copy its arrays. A running realtime twin first catches up to wall time. Noise, when
   * configured, is drawn once per physics step (two reads between steps agree), then the values
   * are quantised.
   */
  readState(): JointState {
    if (this.timing === "realtime" && this.running) this.catchUpToWallTime();
    const { state, produced, torqueConstant } = this;
    const n = this.dof;
    let q = this.q;
    let qd = this.qd;
    let offset = 0;
    state.stamp = this.simTime;
    if (this.latencySteps > 0) {
      // The oldest row of the ring: the one the next step overwrites.
      offset = ((this.steps + 1) % (this.latencySteps + 1)) * n;
      q = this.historyQ;
      qd = this.historyQd;
      state.stamp = Math.max(0, this.steps - this.latencySteps) * this.dt;
    }
    if ((this.positionNoise > 0 || this.velocityNoise > 0) && this.noiseStep !== this.steps) {
      this.noiseStep = this.steps;
      for (let i = 0; i < n; i++) {
        this.positionNoiseDraw[i] = this.positionNoise > 0 ? this.positionNoise * this.rng.normal() : 0;
        this.velocityNoiseDraw[i] = this.velocityNoise > 0 ? this.velocityNoise * this.rng.normal() : 0;
      }
    }
    for (let i = 0; i < n; i++) {
      let position = q[offset + i];
      let velocity = qd[offset + i];
      if (this.positionNoise > 0) position += this.positionNoiseDraw[i];
      if (this.velocityNoise > 0) velocity += this.velocityNoiseDraw[i];
      state.position[i] = quantise(position, this.positionResolution);
      state.velocity[i] = quantise(velocity, this.velocityResolution);
      state.effort[i] = produced[i] / torqueConstant[i];
    }
    return state;
  }

  /**
   * Sets the effort applied from now on (copied). A non-finite value is applied as zero and
   * counted in nonFiniteEfforts; values beyond the URDF effort limit saturate there.
   */
  sendEffort(effort: Float64Array): void {
    if (effort.length !== this.dof)
      throw new Error(`SimDriver.sendEffort: expected ${this.dof} efforts, got ${effort.length}`);
    let nonFinite = false;
    for (let i = 0; i < this.dof; i++) {
      let value = effort[i];
      if (!Number.isFinite(value)) {
        value = 0;
        nonFinite = true;
      }
      const limit = this.effortLimit[i];
      if (value > limit || value < -limit) {
        value = value > 0 ? limit : -limit;
        this.saturatedEfforts++;
      }
      this.applied[i] = value;
      const torque = value * this.torqueConstant[i];
      const ceiling = this.torqueCeiling[i];
      this.produced[i] = Math.min(ceiling, Math.max(-ceiling, torque));
    }
    if (nonFinite) this.nonFiniteEfforts++;
  }

  /** Simulated time (s). A running realtime twin first catches up to wall time, as in readState. */
  now(): number {
    if (this.timing === "realtime" && this.running) this.catchUpToWallTime();
    return this.simTime;
  }

  /**
   * Stepped timing: advances by dt seconds in whole physics steps (round(dt · rate), with the
   * rounding remainder carried to the next call so that no time is lost on average).
   */
  advance(dt: number): void {
    if (this.timing !== "stepped")
      throw new Error("SimDriver.advance: only a stepped simulator can be advanced; this one is realtime");
    if (!(dt >= 0) || !Number.isFinite(dt))
      throw new Error(`SimDriver.advance: dt must be a finite number ≥ 0, got ${dt}`);
    const wanted = dt * this.physicsRateHz + this.carry;
    const count = Math.round(wanted);
    this.carry = wanted - count;
    for (let k = 0; k < count; k++) this.step();
  }

  /** Simulator only (tests, training resets): sets positions and velocities; time goes on. */
  setState(position: ArrayLike<number>, velocity?: ArrayLike<number>): void {
    checkVector("setState position", position, this.dof);
    if (velocity !== undefined) checkVector("setState velocity", velocity, this.dof);
    for (let i = 0; i < this.dof; i++) {
      this.q[i] = position[i];
      this.qd[i] = velocity === undefined ? 0 : velocity[i];
    }
    this.fillHistory();
  }

  /** Latency: every row of the state ring holds the current state (at the start and after setState). */
  private fillHistory(): void {
    for (let row = 0; row <= this.latencySteps && this.latencySteps > 0; row++) {
      this.historyQ.set(this.q, row * this.dof);
      this.historyQd.set(this.qd, row * this.dof);
    }
  }

  /** One physics step. Public for the benchmark; the control path uses advance(). */
  step(): void {
    const n = this.dof;
    const dt = this.dt;
    const { q, qd, qdd, tauNet, produced, damping, friction, lower, upper } = this;
    const invSmoothing = 1 / this.frictionSmoothing;
    for (let i = 0; i < n; i++) {
      const v = qd[i];
      tauNet[i] = produced[i] - damping[i] * v - friction[i] * Math.tanh(v * invSmoothing);
    }
    this.dynamics.forwardDynamics(q, qd, tauNet, qdd);
    // Velocity first, then position with the new velocity (symplectic Euler). A joint that would
    // end the step past a hard limit hands the step to resolveStops.
    let touching = false;
    for (let i = 0; i < n; i++) {
      let v = qd[i] + dt * qdd[i];
      if (v < VELOCITY_FLUSH && v > -VELOCITY_FLUSH) v = 0;
      qd[i] = v;
      const next = q[i] + dt * v;
      if (next > upper[i] || next < lower[i]) touching = true;
    }
    if (touching) this.resolveStops();
    for (let i = 0; i < n; i++) q[i] += dt * qd[i];
    this.steps++;
    if (this.latencySteps > 0) {
      const offset = (this.steps % (this.latencySteps + 1)) * n;
      this.historyQ.set(q, offset);
      this.historyQd.set(qd, offset);
    }
  }

  /**
   * Joint-limit stops, implicitly. Each stop is a one-sided spring-damper on the penetration past
   * the limit, p = s·(q − limit) with s = +1 at the upper and −1 at the lower limit, pushing back
   * with f = k·p⁺ + c·ṗ⁺ ≥ 0, evaluated at the END of the step (q⁺ = q + dt·q̇⁺). Why implicit: the
   * wrist's effective inertia is about 1e-4 kg·m², so an explicit stiff spring would need
   * k < 4/(dt²·(M⁻¹)ᵢᵢ), a few hundred N·m/rad at 1 kHz; implicitly any k is stable, and a joint
   * cannot tunnel because the stop acts on where the step would END.
   *
   * With v* the free velocity already in qd, M(q̇⁺ − v*) = −Σ s_i f_i dt e_i, and f linear in q̇⁺:
   *   (M + h·E_A) q̇⁺ = M v* − Σ_A s_i·dt·k·p_i e_i,   h = dt·(c + dt·k),
   * for the set A of joints in contact. A stop that would pull (f < 0) leaves A, a free joint that
   * the solution would carry past its limit joins it, and the system is solved again (at most
   * 2·dof + 1 solves). Runs only in steps where some joint would end past a limit.
   */
  private resolveStops(): void {
    const n = this.dof;
    const dt = this.dt;
    const k = this.limitStiffness;
    const h = dt * (this.limitDamping + dt * k);
    const { q, qd, lower, upper, side, M, Mv, A, b } = this;
    for (let i = 0; i < n; i++) {
      const next = q[i] + dt * qd[i];
      side[i] = next > upper[i] ? 1 : next < lower[i] ? -1 : 0;
    }
    let moved = false;
    for (let i = 0; i < n; i++) {
      // Written so that NaN (never computed) counts as moved.
      if (!(Math.abs(q[i] - this.massMatrixAt[i]) <= MASS_MATRIX_REUSE)) moved = true;
    }
    if (moved) {
      this.dynamics.massMatrix(q, M);
      this.massMatrixAt.set(q);
      this.massMatrixUpdates++;
    }
    for (let i = 0; i < n; i++) {
      let s = 0;
      for (let j = 0; j < n; j++) s += M[i * n + j] * qd[j];
      Mv[i] = s;
    }
    let contact = false;
    for (let round = 0; round <= 2 * n; round++) {
      A.set(M);
      b.set(Mv);
      for (let i = 0; i < n; i++) {
        if (side[i] === 0) continue;
        const penetration = side[i] > 0 ? q[i] - upper[i] : lower[i] - q[i];
        A[i * n + i] += h;
        b[i] -= side[i] * dt * k * penetration;
      }
      solveSpdInPlace(A, b, n);
      // Check the solution: a stop may not pull, and a free joint may not end past its limit
      // (another joint's stop can push it there through the coupling in M).
      let changed = false;
      contact = false;
      for (let i = 0; i < n; i++) {
        if (side[i] === 0) {
          const next = q[i] + dt * b[i];
          side[i] = next > upper[i] ? 1 : next < lower[i] ? -1 : 0;
          if (side[i] !== 0) changed = true;
          continue;
        }
        const penetration = side[i] > 0 ? q[i] - upper[i] : lower[i] - q[i];
        const impulse = dt * k * penetration + h * side[i] * b[i]; // f·dt
        if (impulse < 0) {
          side[i] = 0;
          changed = true;
        } else contact = true;
      }
      if (!changed) break;
    }
    for (let i = 0; i < n; i++) qd[i] = b[i];
    if (contact) this.limitContactSteps++;
  }

  /** Realtime: runs the physics steps that wall time says are due, at most maxStepsPerWake. */
  private catchUpToWallTime(): void {
    const due =
      Math.floor(((performance.now() - this.wallAnchorMs) * this.physicsRateHz) / 1000) -
      this.stepsSinceAnchor;
    if (due <= 0) return;
    let count = due;
    if (count > this.maxStepsPerWake) {
      // Drop the backlog: move the anchor forward so that these steps are never due again.
      const dropped = count - this.maxStepsPerWake;
      this.droppedSteps += dropped;
      this.wallAnchorMs += (dropped * 1000) / this.physicsRateHz;
      count = this.maxStepsPerWake;
    }
    for (let k = 0; k < count; k++) this.step();
    this.stepsSinceAnchor += count;
  }

  /**
   * Friction and damping are explicit: joint i's velocity error is multiplied each step by
   * 1 − dt·(damping + friction/v_s)·(M⁻¹)ᵢᵢ near rest, which must stay above −1. (M⁻¹)ᵢᵢ depends
   * on the pose, so it is sampled at the start pose and 32 poses spread over the joint ranges.
   */
  private checkExplicitStability(): void {
    const n = this.dof;
    const pose = new Float64Array(n);
    const zero = new Float64Array(n);
    const unit = new Float64Array(n);
    const base = new Float64Array(n);
    const response = new Float64Array(n);
    for (let sample = 0; sample <= 32; sample++) {
      for (let i = 0; i < n; i++) {
        // A different irrational stride per joint spreads the samples over the range.
        const fraction = (sample * (0.6180339887 + 0.1 * Math.SQRT2 * i)) % 1;
        const lo = Number.isFinite(this.lower[i]) ? this.lower[i] : -Math.PI;
        const hi = Number.isFinite(this.upper[i]) ? this.upper[i] : Math.PI;
        pose[i] = sample === 0 ? this.q[i] : lo + (hi - lo) * fraction;
      }
      unit.fill(0);
      this.dynamics.forwardDynamics(pose, zero, unit, base);
      for (let i = 0; i < n; i++) {
        unit.fill(0);
        unit[i] = 1;
        this.dynamics.forwardDynamics(pose, zero, unit, response);
        const inverseInertia = response[i] - base[i];
        const slope = this.damping[i] + this.friction[i] / this.frictionSmoothing;
        const factor = this.dt * slope * inverseInertia;
        if (factor >= EXPLICIT_STABILITY_LIMIT) {
          const needed =
            this.friction[i] / (EXPLICIT_STABILITY_LIMIT / (this.dt * inverseInertia) - this.damping[i]);
          const advice =
            needed > 0 && Number.isFinite(needed)
              ? `raise frictionSmoothing above ${needed.toPrecision(2)} rad/s or physicsRateHz`
              : "raise physicsRateHz";
          throw new Error(
            `SimDriver: joint "${this.jointNames[i]}": damping ${this.damping[i]} and friction ${this.friction[i]} over frictionSmoothing ${this.frictionSmoothing} rad/s are unstable at ${this.physicsRateHz} Hz (step factor ${factor.toFixed(2)} ≥ ${EXPLICIT_STABILITY_LIMIT}); ${advice}`,
          );
        }
      }
    }
  }
}

function positiveOption(name: string, value: number | undefined, fallback: number): number {
  const v = value ?? fallback;
  if (!(v > 0) || !Number.isFinite(v))
    throw new Error(`SimDriver: option "${name}" must be a finite number > 0, got ${value}`);
  return v;
}

function nonNegativeOption(name: string, value: number | undefined, fallback: number): number {
  const v = value ?? fallback;
  if (!(v >= 0) || !Number.isFinite(v))
    throw new Error(`SimDriver: option "${name}" must be a finite number ≥ 0, got ${value}`);
  return v;
}

function perJointOption(
  name: string,
  values: ArrayLike<number> | undefined,
  n: number,
  fallback: number,
): Float64Array {
  const out = new Float64Array(n).fill(fallback);
  if (values === undefined) return out;
  if (values.length !== n)
    throw new Error(`SimDriver: option "${name}" needs ${n} values, got ${values.length}`);
  for (let i = 0; i < n; i++) {
    if (!(values[i] > 0)) throw new Error(`SimDriver: option "${name}"[${i}] must be > 0, got ${values[i]}`);
    out[i] = values[i];
  }
  return out;
}

/** x rounded to the nearest multiple of resolution (0: x itself). */
function quantise(x: number, resolution: number): number {
  return resolution > 0 ? Math.round(x / resolution) * resolution : x;
}

function checkVector(what: string, values: ArrayLike<number>, n: number): void {
  if (values.length !== n) throw new Error(`SimDriver.${what}: expected ${n} values, got ${values.length}`);
  for (let i = 0; i < n; i++) {
    if (!Number.isFinite(values[i]))
      throw new Error(`SimDriver.${what}: value ${i} must be finite, got ${values[i]}`);
  }
}

/** Solves A x = b in place (x into b) for a symmetric positive definite n×n A (row-major), by Cholesky. */
function solveSpdInPlace(A: Float64Array, b: Float64Array, n: number): void {
  // A ← L (lower triangle), A = L Lᵀ.
  for (let j = 0; j < n; j++) {
    let d = A[j * n + j];
    for (let k = 0; k < j; k++) d -= A[j * n + k] * A[j * n + k];
    if (!(d > 0)) throw new Error("SimDriver: mass matrix is not positive definite");
    const ljj = Math.sqrt(d);
    A[j * n + j] = ljj;
    for (let i = j + 1; i < n; i++) {
      let s = A[i * n + j];
      for (let k = 0; k < j; k++) s -= A[i * n + k] * A[j * n + k];
      A[i * n + j] = s / ljj;
    }
  }
  for (let i = 0; i < n; i++) {
    let s = b[i];
    for (let k = 0; k < i; k++) s -= A[i * n + k] * b[k];
    b[i] = s / A[i * n + i];
  }
  for (let i = n - 1; i >= 0; i--) {
    let s = b[i];
    for (let k = i + 1; k < n; k++) s -= A[k * n + i] * b[k];
    b[i] = s / A[i * n + i];
  }
}
