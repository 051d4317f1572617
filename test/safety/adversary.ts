/**
 * Attackers against the safety filter, on the twin, through the real control loop: the harness
 * behind test/safety/adversarial.test.ts (a small fixed-seed subset) and bench/safety-adversarial.ts
 * (thousands of episodes per variant).
 *
 * One episode: the arm starts at rest at a random pose inside its soft limits; an attacker commands
 * torques for `ticks` control periods through ControlLoop.tick (gravity compensation, then the
 * SafetyFilter built by the stack's createSafetyFilter with the NOMINAL model); the twin steps its
 * physics at 1 kHz, and every physics step is checked: a joint faster than its URDF velocity limit,
 * or past a hard position limit (or touching a stop), counts that tick as a violation.
 *
 * The twin can differ from the model the filter believes: every link's mass and rotational inertia,
 * and every joint's armature, scaled by a factor per link/joint (the `model` variants).
 *
 * The attackers (all saturate the effort limit; the filter clamps what is past it):
 *  - bang-bang: ±effort on every joint, each with its own period (1–25 ticks) and phase;
 *  - coupling: drive one joint's acceleration as hard as the coupling allows, τ = e ∘ sign(row k of
 *    M⁻¹) in the direction the joint already moves, so that the other joints' torques add to it;
 *  - constant: a constant ±effort per joint, into the limits;
 *  - random: uniform in ±effort, new every tick; smoothed: the same, low-passed;
 *  - lookahead: knows the filter: runs its own copy of the dynamic limits at the measured state and
 *    picks, of every ±effort corner and every coupling vector, the one whose FILTERED torque gives
 *    the fastest predicted joint (relative to its limit) or the nearest approach to a position limit.
 */
import { resolve } from "node:path";
import { defaultConfig } from "../../src/config/config.js";
import { ControlLoop, type TorqueSource } from "../../src/control/loop.js";
import { createSafetyFilter } from "../../src/control/stack.js";
import type { JointState } from "../../src/drivers/driver.js";
import { SimDriver } from "../../src/drivers/sim.js";
import { Dynamics } from "../../src/robot/dynamics.js";
import type { RobotModel } from "../../src/robot/types.js";
import { loadUrdf } from "../../src/robot/urdf.js";
import { DynamicLimits } from "../../src/safety/dynamic-limits.js";
import type { SafetyFilter } from "../../src/safety/filter.js";
import { packageRoot } from "../../src/util/paths.js";
import { Rng } from "../../src/util/rng.js";

export const ATTACKERS = ["bang-bang", "coupling", "constant", "random", "smoothed", "lookahead"] as const;
export type AttackerName = (typeof ATTACKERS)[number];

/** How the twin differs from the URDF the filter believes. */
export type ModelVariant = "nominal" | "light" | "heavy" | "mixed";
export const MODEL_VARIANTS: readonly ModelVariant[] = ["nominal", "light", "heavy", "mixed"];

export interface EpisodeOutcome {
  attacker: AttackerName;
  /** Ticks in which some physics step had a joint faster than its URDF velocity limit. */
  velocityTicks: number;
  /** Ticks in which some physics step had a joint past (or touching) a hard position limit. */
  positionTicks: number;
  /** Largest |q̇|/limit seen at any physics step. */
  worstVelocityRatio: number;
  /** Largest distance (rad) past a hard position limit at any physics step (0: none). */
  worstPositionExcess: number;
  /** The fault that latched, if any. */
  fault?: string;
  /** Time of SafetyFilter.filter() per tick (µs). */
  filterMicros: number[];
  /** Ticks in which the dynamic limits changed the command. */
  constrainedTicks: number;
  /** Of those, ticks in which no torque could keep every bound (braking as hard as allowed). */
  relaxedTicks: number;
}

export interface AdversaryOptions {
  model: ModelVariant;
  /** Config overrides on the safety section, e.g. { use_soft_limits: false }. */
  safety?: Partial<ReturnType<typeof defaultConfig>["safety"]>;
  ticks: number;
  /** Called after every physics step (diagnostics). */
  trace?: (
    tick: number,
    step: number,
    state: JointState,
    sent: Float64Array,
    limits: DynamicLimits | undefined,
  ) => void;
}

export const ARM_URDF = resolve(packageRoot(), "urdf/arm.urdf");

/** A copy of the model with link masses and inertias, and joint armatures, scaled by `factor(k)`. */
export function perturbedModel(
  model: RobotModel,
  factor: (kind: "link" | "armature", index: number) => number,
): RobotModel {
  const links = model.links.map((link, k) => {
    const f = factor("link", k);
    return {
      ...link,
      inertial: {
        mass: link.inertial.mass * f,
        com: [...link.inertial.com] as typeof link.inertial.com,
        inertia: link.inertial.inertia.map((x) => x * f) as typeof link.inertial.inertia,
      },
    };
  });
  const joints = model.joints.map((j, i) => ({ ...j, armature: j.armature * factor("armature", i) }));
  return { ...model, links, joints };
}

function twinModel(nominal: RobotModel, variant: ModelVariant, rng: Rng): RobotModel {
  switch (variant) {
    case "nominal":
      return nominal;
    case "light":
      return perturbedModel(nominal, () => 0.7);
    case "heavy":
      return perturbedModel(nominal, () => 1.3);
    case "mixed":
      return perturbedModel(nominal, () => 0.7 + 0.6 * rng.uniform());
  }
}

/** Runs one episode; `seed` fixes the start pose, the attacker's choices and a mixed twin. */
export function runAdversarialEpisode(
  nominal: RobotModel,
  attacker: AttackerName,
  seed: number,
  options: AdversaryOptions,
): EpisodeOutcome {
  const rng = new Rng(seed);
  const n = nominal.dof;
  const twin = twinModel(nominal, options.model, rng);
  const config = defaultConfig();
  Object.assign(config.safety, options.safety ?? {});
  const dynamics = new Dynamics(nominal);
  const safety = createSafetyFilter(config, nominal, dynamics);
  const sim = new SimDriver({ model: twin, physicsRateHz: 1000, timing: "stepped" });
  const loop = new ControlLoop({
    driver: sim,
    joints: nominal.joints,
    dynamics,
    safety,
    controlRateHz: config.control_rate_hz,
    gravityCompensation: true,
  });
  const start = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const j = nominal.joints[i];
    const lo = j.safety?.softLower ?? j.lower;
    const hi = j.safety?.softUpper ?? j.upper;
    start[i] = lo + (hi - lo) * rng.uniform();
  }
  sim.setState(start);
  const source = makeAttacker(attacker, nominal, dynamics, safety, rng, options);
  const outcome: EpisodeOutcome = {
    attacker,
    velocityTicks: 0,
    positionTicks: 0,
    worstVelocityRatio: 0,
    worstPositionExcess: 0,
    filterMicros: [],
    constrainedTicks: 0,
    relaxedTicks: 0,
  };
  // Time the filter alone (the attacker's own work runs inside the tick too).
  const filter = safety.filter.bind(safety);
  safety.filter = (...args: Parameters<SafetyFilter["filter"]>) => {
    const t0 = process.hrtime.bigint();
    const report = filter(...args);
    outcome.filterMicros.push(Number(process.hrtime.bigint() - t0) / 1000);
    return report;
  };
  const stepsPerTick = Math.round(1000 / config.control_rate_hz);
  for (let t = 0; t < options.ticks; t++) {
    const report = loop.tick(source);
    if (report.interventions.dynamicLimit > 0 || report.interventions.dynamicLimitRelaxed > 0) {
      outcome.constrainedTicks++;
    }
    if (report.interventions.dynamicLimitRelaxed > 0) outcome.relaxedTicks++;
    let velocityHit = false;
    let positionHit = false;
    const contactsBefore = sim.limitContactSteps;
    for (let s = 0; s < stepsPerTick; s++) {
      sim.step();
      const state = sim.readState();
      options.trace?.(t, s, state, loop.sent, safety.dynamicLimits);
      for (let i = 0; i < n; i++) {
        const j = nominal.joints[i];
        const ratio = Math.abs(state.velocity[i]) / j.velocity;
        if (ratio > outcome.worstVelocityRatio) outcome.worstVelocityRatio = ratio;
        if (ratio > 1) velocityHit = true;
        if (j.type !== "continuous") {
          const excess = Math.max(state.position[i] - j.upper, j.lower - state.position[i], 0);
          if (excess > outcome.worstPositionExcess) outcome.worstPositionExcess = excess;
          if (excess > 0) positionHit = true;
        }
      }
    }
    if (sim.limitContactSteps > contactsBefore) positionHit = true;
    if (velocityHit) outcome.velocityTicks++;
    if (positionHit) outcome.positionTicks++;
  }
  if (safety.fault !== undefined) outcome.fault = `${safety.fault.reason}: ${safety.fault.detail}`;
  return outcome;
}

/** The attacker's torque source (the loop adds gravity compensation to what it asks for). */
function makeAttacker(
  name: AttackerName,
  model: RobotModel,
  dynamics: Dynamics,
  safety: SafetyFilter,
  rng: Rng,
  options: AdversaryOptions,
): TorqueSource {
  const n = model.dof;
  const effort = Float64Array.from(model.joints, (j) => j.effort);
  const M = new Float64Array(n * n);
  const Minv = new Float64Array(n * n);
  const sign = (x: number) => (x >= 0 ? 1 : -1);
  /** Row k of M⁻¹ at q: τ = s·e∘sign(row) maximises s·q̈_k over the effort box. */
  const couplingVector = (state: JointState, k: number, s: number, out: Float64Array) => {
    dynamics.massMatrix(state.position, M);
    invert(M, Minv, n);
    for (let j = 0; j < n; j++) out[j] = s * effort[j] * sign(Minv[k * n + j]);
  };
  switch (name) {
    case "bang-bang": {
      const period = Array.from({ length: n }, () => 1 + Math.floor(rng.uniform() * 25));
      const phase = Array.from({ length: n }, (_, i) => Math.floor(rng.uniform() * period[i]));
      let t = 0;
      return (_state, out) => {
        for (let i = 0; i < n; i++)
          out[i] = (Math.floor((t + phase[i]) / period[i]) % 2 === 0 ? 1 : -1) * effort[i];
        t++;
      };
    }
    case "coupling": {
      const k = Math.floor(rng.uniform() * n);
      let direction = rng.uniform() < 0.5 ? -1 : 1;
      return (state, out) => {
        if (Math.abs(state.velocity[k]) > 0.5) direction = sign(state.velocity[k]);
        couplingVector(state, k, direction, out);
      };
    }
    case "constant": {
      const signs = Array.from({ length: n }, () => (rng.uniform() < 0.5 ? -1 : 1));
      return (_state, out) => {
        for (let i = 0; i < n; i++) out[i] = signs[i] * effort[i];
      };
    }
    case "random":
      return (_state, out) => {
        for (let i = 0; i < n; i++) out[i] = (2 * rng.uniform() - 1) * effort[i];
      };
    case "smoothed": {
      const level = new Float64Array(n);
      return (_state, out) => {
        for (let i = 0; i < n; i++) {
          level[i] = 0.85 * level[i] + 0.15 * 3 * (2 * rng.uniform() - 1) * effort[i];
          out[i] = Math.max(-effort[i], Math.min(effort[i], level[i]));
        }
      };
    }
    case "lookahead":
      return lookaheadAttacker(model, dynamics, safety, options, couplingVector);
  }
}

function lookaheadAttacker(
  model: RobotModel,
  dynamics: Dynamics,
  safety: SafetyFilter,
  _options: AdversaryOptions,
  couplingVector: (state: JointState, k: number, s: number, out: Float64Array) => void,
): TorqueSource {
  const n = model.dof;
  const effortMax = Float64Array.from(model.joints, (j) => j.effort * safety.config.effortScale);
  // Its own copy of the filter's dynamic limits, with the filter's own settings.
  const shadow = new DynamicLimits(dynamics, model.joints, effortMax, safety.config);
  const gravity = new Float64Array(n);
  const candidate = new Float64Array(n);
  const filtered = new Float64Array(n);
  const predicted = new Float64Array(n);
  const best = new Float64Array(n);
  const evaluate = (state: JointState): number => {
    // What the filter would send: gravity added, clamped, then its dynamic limits.
    for (let i = 0; i < n; i++)
      filtered[i] = Math.max(-effortMax[i], Math.min(effortMax[i], candidate[i] + gravity[i]));
    shadow.constrain(filtered);
    shadow.predict(filtered, predicted);
    let score = 0;
    for (let i = 0; i < n; i++) {
      const j = model.joints[i];
      score = Math.max(score, Math.abs(predicted[i]) / j.velocity);
      if (j.type !== "continuous") {
        // Nearness to a hard limit one period ahead, in units of the joint's range.
        const next = state.position[i] + 0.02 * predicted[i];
        const range = j.upper - j.lower;
        score = Math.max(score, 1 - Math.min(j.upper - next, next - j.lower) / (0.1 * range));
      }
    }
    return score;
  };
  return (state, out) => {
    shadow.prepare(state, 0.02);
    dynamics.gravity(state.position, gravity);
    let bestScore = Number.NEGATIVE_INFINITY;
    for (let corner = 0; corner < 1 << n; corner++) {
      for (let i = 0; i < n; i++)
        candidate[i] = (corner >> i) & 1 ? model.joints[i].effort : -model.joints[i].effort;
      const score = evaluate(state);
      if (score > bestScore) {
        bestScore = score;
        best.set(candidate);
      }
    }
    for (let k = 0; k < n; k++) {
      for (const s of [-1, 1]) {
        couplingVector(state, k, s, candidate);
        const score = evaluate(state);
        if (score > bestScore) {
          bestScore = score;
          best.set(candidate);
        }
      }
    }
    out.set(best);
  };
}

/** Minv = M⁻¹ by Gauss–Jordan (test code: clarity over speed). */
function invert(M: Float64Array, Minv: Float64Array, n: number): void {
  const A = Array.from({ length: n }, (_, i) => [
    ...Array.from(M.subarray(i * n, i * n + n)),
    ...Array.from({ length: n }, (_, j) => (i === j ? 1 : 0)),
  ]);
  for (let c = 0; c < n; c++) {
    let p = c;
    for (let r = c + 1; r < n; r++) if (Math.abs(A[r][c]) > Math.abs(A[p][c])) p = r;
    [A[c], A[p]] = [A[p], A[c]];
    for (let r = 0; r < n; r++) {
      if (r === c) continue;
      const f = A[r][c] / A[c][c];
      for (let k = 0; k < 2 * n; k++) A[r][k] -= f * A[c][k];
    }
  }
  for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) Minv[i * n + j] = A[i][n + j] / A[i][i];
}

/** The arm of urdf/arm.urdf. */
export function loadArm(): RobotModel {
  return loadUrdf(ARM_URDF);
}
