/**
 * The twin's reality gap: how a real arm differs from the URDF that the controller, the safety
 * filter and the learner believe. One draw per seed, within stated ranges, gives the twin:
 *
 *   rigid body   each link's mass × (1 + u), centre of mass + δ (each coordinate), rotational
 *                inertia about the centre of mass × (1 + u); each joint's armature × (1 + u)
 *   friction     each joint's viscous damping × s_v and Coulomb friction × s_c
 *   actuator     produced torque = commanded × k (torque-constant error), clamped at
 *                c × the URDF effort limit (current saturation)
 *   sensing      the state read is `latency` old (control periods), its position quantised to the
 *                encoder's counts and its velocity to the servo's velocity unit, plus Gaussian noise
 *
 * with u ~ U(−e, e) for an error e, s ~ U(lo, hi) for a scale range, drawn per link or joint in a
 * fixed order from one random stream of the seed. Scaling an inertia tensor by a positive factor
 * and moving a centre of mass keep every link physically valid.
 *
 * The preset "none" is today's twin bit for bit (every factor exactly 1, no latency, no
 * quantisation, no noise). "realistic" is what a desk arm of Dynamixel servos is likely to differ
 * by from a careful URDF; the sources of each range are beside it.
 */
import type { Inertial, Mat3, RobotModel, Vec3 } from "../robot/types.js";
import { Rng } from "../util/rng.js";

/** The ranges a reality is drawn from (config `sim.reality`, snake_case there). */
export interface RealityRanges {
  /** Each link's mass × (1 + U(−e, e)). */
  massError: number;
  /** Each centre-of-mass coordinate + U(−e, e) (m). */
  comError: number;
  /** Each link's rotational inertia about its centre of mass × (1 + U(−e, e)). */
  inertiaError: number;
  /** Each joint's armature (reflected rotor inertia) × (1 + U(−e, e)). */
  armatureError: number;
  /** Each joint's viscous damping × U(lo, hi). */
  viscousScale: [number, number];
  /** Each joint's Coulomb friction × U(lo, hi). */
  coulombScale: [number, number];
  /** Each joint's produced torque = commanded × (1 + U(−e, e)). */
  torqueConstantError: number;
  /** Each joint's largest produced torque, as a fraction U(lo, hi) of its URDF effort limit. */
  currentLimit: [number, number];
  /** Age of the state read, U(lo, hi) control periods, one value for the arm. */
  latencyPeriods: [number, number];
  /** Position quantisation (rad per encoder count; 0: none). */
  positionResolution: number;
  /** Velocity quantisation (rad/s per unit; 0: none). */
  velocityResolution: number;
  /** Standard deviations of Gaussian noise on the position (rad) and velocity (rad/s) read. */
  positionNoise: number;
  velocityNoise: number;
}

export const REALITY_PRESETS = {
  /** Today's twin: exactly the URDF. */
  none: {
    massError: 0,
    comError: 0,
    inertiaError: 0,
    armatureError: 0,
    viscousScale: [1, 1],
    coulombScale: [1, 1],
    torqueConstantError: 0,
    currentLimit: [1, 1],
    latencyPeriods: [0, 0],
    positionResolution: 0,
    velocityResolution: 0,
    positionNoise: 0,
    velocityNoise: 0,
  },
  /**
   * A desk arm of Dynamixel X-series servos against its URDF.
   * - Masses ±15 %, inertias and armatures ±25 %: Tan et al. 2018 ("Sim-to-Real: Learning Agile
   *   Locomotion For Quadruped Robots", RSS, Table I) randomise mass over 80–120 % and inertia over
   *   50–150 % of the model to cover a real Minitaur; we stay inside the ±30 % the safety filter
   *   assumes (safety.model_error), because a gap beyond it voids the filter's guarantee. The
   *   armature is a rotor-inertia estimate (urdf/arm.urdf says so).
   * - Centres of mass ±5 mm: cables, screws and horns that a CAD model leaves out, on links a few
   *   centimetres long.
   * - Viscous ×0.8–2.5, Coulomb ×0.8–3: the Dynamixel e-Manual gives no friction figures, and a
   *   gearbox's friction varies with load, temperature and wear; Tan et al. randomise motor friction
   *   over 0–0.05 N·m, about 0–1.5 × our URDF's 0.03 N·m, on far less geared motors.
   * - Torque constant ±10 %: the XM430-W350 data sheet's torque-current curve is not a straight
   *   line, and NdFeB magnets lose about 0.1 %/K (a 50 K rise: −5 %); Tan et al.: motor strength
   *   80–120 %.
   * - Current saturation at 85–100 % of the URDF effort: the URDF's 4.1 N·m is the stall torque at
   *   12 V; the default Current Limit register (1193 × 2.69 mA = 3.2 A) and the supply sag below it.
   * - Latency 0–1 control period: Tan et al. 0–40 ms; a U2D2's USB latency timer (16 ms unless set
   *   to 1 ms) plus the bus round trip, at our 50 Hz.
   * - Quantisation: the X series' 4096 counts per revolution (2π/4096 rad) and its Present Velocity
   *   unit of 0.229 rev/min (0.02398 rad/s); velocity noise 0.01 rad/s on top.
   */
  realistic: {
    massError: 0.15,
    comError: 0.005,
    inertiaError: 0.25,
    armatureError: 0.25,
    viscousScale: [0.8, 2.5],
    coulombScale: [0.8, 3],
    torqueConstantError: 0.1,
    currentLimit: [0.85, 1],
    latencyPeriods: [0, 1],
    positionResolution: (2 * Math.PI) / 4096,
    velocityResolution: (0.229 * 2 * Math.PI) / 60,
    positionNoise: 0,
    velocityNoise: 0.01,
  },
} satisfies Record<string, RealityRanges>;

export type RealityPreset = keyof typeof REALITY_PRESETS;

export const REALITY_PRESET_NAMES = Object.keys(REALITY_PRESETS) as RealityPreset[];

/** One drawn reality: the twin's own robot, actuators and sensors. */
export interface Reality {
  /** The arm as it is: the URDF's structure with the drawn masses, inertias, armatures and friction. */
  model: RobotModel;
  /** Per joint: produced torque per commanded torque. */
  torqueConstant: Float64Array;
  /** Per joint: the largest |produced torque| (N·m or N). */
  torqueCeiling: Float64Array;
  /** Age of the state read (control periods). */
  latencyPeriods: number;
  positionResolution: number;
  velocityResolution: number;
  positionNoise: number;
  velocityNoise: number;
}

/** The random stream of reality draws (apart from the learner's and the twin's noise streams). */
const REALITY_STREAM = 7001;

/** Draws the reality for `seed`; the same nominal model, ranges and seed give the same reality. */
export function drawReality(nominal: RobotModel, ranges: RealityRanges, seed: number): Reality {
  checkRanges(ranges);
  const rng = new Rng(seed, REALITY_STREAM);
  // Every draw is taken even where its range is empty (giving exactly 1, or lo), so that the same
  // seed is the same arm whichever ranges are narrowed or switched off.
  const error = (e: number) => 1 + rng.range(-e, e);
  const scale = ([lo, hi]: [number, number]) => rng.range(lo, hi);
  const model = structuredClone(nominal);
  // The root link's inertia never moves on a fixed base; it is drawn anyway, so that the order of
  // draws depends on nothing but the link count.
  for (const link of model.links) link.inertial = drawInertial(link.inertial, ranges, error, rng);
  const n = model.dof;
  const torqueConstant = new Float64Array(n);
  const torqueCeiling = new Float64Array(n);
  model.joints.forEach((joint, i) => {
    joint.armature *= error(ranges.armatureError);
    joint.damping *= scale(ranges.viscousScale);
    joint.friction *= scale(ranges.coulombScale);
    torqueConstant[i] = error(ranges.torqueConstantError);
    torqueCeiling[i] = joint.effort * scale(ranges.currentLimit);
  });
  return {
    model,
    torqueConstant,
    torqueCeiling,
    latencyPeriods: scale(ranges.latencyPeriods),
    positionResolution: ranges.positionResolution,
    velocityResolution: ranges.velocityResolution,
    positionNoise: ranges.positionNoise,
    velocityNoise: ranges.velocityNoise,
  };
}

function drawInertial(
  inertial: Inertial,
  ranges: RealityRanges,
  error: (e: number) => number,
  rng: Rng,
): Inertial {
  const mass = inertial.mass * error(ranges.massError);
  const c = ranges.comError;
  const com = inertial.com.map((x) => x + rng.range(-c, c)) as Vec3;
  const k = error(ranges.inertiaError);
  const inertia = inertial.inertia.map((x) => x * k) as Mat3;
  return { mass, com, inertia };
}

/** One line on what a reality changes, for the run's log. */
export function describeReality(reality: Reality, nominal: RobotModel): string {
  const span = (values: number[], unit = "%") => {
    const lo = Math.min(...values);
    const hi = Math.max(...values);
    const f = (v: number) =>
      unit === "%" ? `${v >= 0 ? "+" : ""}${(100 * v).toFixed(0)}%` : `×${v.toFixed(2)}`;
    return lo === hi ? f(lo) : `${f(lo)}…${f(hi)}`;
  };
  const ratio = (a: number, b: number) => (b === 0 ? 1 : a / b);
  // The moving links' masses (a massless frame has no ratio).
  const masses = nominal.jointLink.map(
    (l) => ratio(reality.model.links[l].inertial.mass, nominal.links[l].inertial.mass) - 1,
  );
  const joints = nominal.joints.map((j, i) => ({ j, r: reality.model.joints[i] }));
  return [
    `link masses ${span(masses)}`,
    `armature ${span(joints.map(({ j, r }) => ratio(r.armature, j.armature) - 1))}`,
    `damping ${span(
      joints.map(({ j, r }) => ratio(r.damping, j.damping)),
      "×",
    )}`,
    `friction ${span(
      joints.map(({ j, r }) => ratio(r.friction, j.friction)),
      "×",
    )}`,
    `torque constant ${span(Array.from(reality.torqueConstant, (k) => k - 1))}`,
    `current limit ${span(joints.map(({ j }, i) => reality.torqueCeiling[i] / j.effort - 1))}`,
    `latency ${reality.latencyPeriods.toFixed(2)} periods`,
  ].join(", ");
}

function checkRanges(r: RealityRanges): void {
  const fail = (what: string, got: unknown) => {
    throw new Error(`reality: ${what}, got ${JSON.stringify(got)}`);
  };
  for (const key of ["massError", "inertiaError", "armatureError", "torqueConstantError"] as const) {
    if (!(r[key] >= 0 && r[key] < 1)) fail(`${key} must be in [0, 1)`, r[key]);
  }
  for (const key of [
    "comError",
    "positionResolution",
    "velocityResolution",
    "positionNoise",
    "velocityNoise",
  ] as const) {
    if (!(r[key] >= 0 && Number.isFinite(r[key]))) fail(`${key} must be a finite number ≥ 0`, r[key]);
  }
  for (const key of ["viscousScale", "coulombScale", "currentLimit", "latencyPeriods"] as const) {
    const [lo, hi] = r[key];
    if (!(Number.isFinite(lo) && Number.isFinite(hi) && lo >= 0 && lo <= hi))
      fail(`${key} must be [lo, hi] with 0 ≤ lo ≤ hi`, r[key]);
  }
  if (!(r.currentLimit[0] > 0 && r.currentLimit[1] <= 1))
    fail("currentLimit must lie in (0, 1]", r.currentLimit);
}
