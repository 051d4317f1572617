/**
 * The `reach` task: bring the end effector to a random target point in the reachable workspace.
 *
 * Each episode starts from a fixed home pose (with an optional small random perturbation) and
 * samples a target by forward kinematics of a random joint pose, so that every target is reachable
 * and a joint pose achieving it is known (the PD policy tracks that pose). The goal pose lies within
 * ±targetSpread of the home pose on every joint: targets fill a region in front of the arm (10 cm
 * from the start at the median, 15 cm at the 90th percentile, 24 cm at most, with the default
 * 0.6 rad on urdf/arm.urdf), as FetchReach samples within 15 cm of its gripper. A spread wider than
 * the joint ranges gives the whole workspace, targets behind the arm included.
 *
 * Reward, termination, success and distance read only the observation (and the task's constant
 * configuration), never episode state: the MBPO learner scores model-predicted observations with
 * them, and external learners send observation batches. That is why the observation carries the
 * target and the end-effector position, not only the joint state.
 */
import { Kinematics } from "../robot/kinematics.js";
import type { RobotModel } from "../robot/types.js";
import { armReach } from "../robot/workspace.js";
import { Rng } from "../util/rng.js";
import type { Task, TaskEpisode } from "./task.js";

/**
 * A comfortable elbow-up pose of urdf/arm.urdf (rad): turret forward, upper arm tilted back, forearm
 * slightly up, wrist pointing down and forward. The tool point sits about 0.18 m in front of the
 * base and 0.16 m above it, far from every limit, and gravity loads stay below 0.4 N·m.
 */
export const ARM_HOME_POSE: readonly number[] = [0, -0.6, 0.3, 0.9];
/** The arc (m) a target may be from the home pose per joint at full reach (derivedTargetSpread). */
export const TARGET_ARC = 0.263;
/** Episodes sampled (fixed seed) to measure how far from the home tool point targets lie (goalInRange). */
const GOAL_RANGE_SAMPLES = 512;
/** The <robot name> of urdf/arm.urdf, the one arm ARM_HOME_POSE is for. */
export const ARM_ROBOT_NAME = "mbpo_arm";

/** Everything the reach task can be told, with the defaults in DEFAULT_REACH_CONFIG. */
export interface ReachConfig {
  /** Control steps per episode before truncation. */
  episodeSteps: number;
  /** The control rate the episode length is meant for (Hz); informational, reported by params(). */
  controlRateHz: number;
  /** Distance (m) from end effector to target within which the state counts as success. */
  successRadius: number;

  /**
   * Reward: r = −distanceWeight·d + precisionWeight·exp(−(d / precisionScale)²)
   *             − actionWeight·‖a‖² − velocityWeight·‖q̇‖² + bonus.
   */
  distanceWeight: number;
  /**
   * The Gaussian precision term (dm_control's "tolerance" shape): −d alone changes by only 0.01
   * per step between 3 cm and 2 cm, too little for a critic to resolve; this peak rises steeply
   * over the last few centimetres, so that settling on the target pays.
   */
  precisionWeight: number;
  /** Width (m) of the precision term: at d = precisionScale it is down to e⁻¹ of its peak. */
  precisionScale: number;
  actionWeight: number;
  /** Weight on the squared joint speed in (rad/s)² (not the scaled observation values). */
  velocityWeight: number;
  /** Added to the reward while the next state is inside the success radius. */
  successBonus: number;
  /** Reward of a transition into an invalid (non-finite) observation, which also terminates. */
  invalidReward: number;

  /**
   * Start pose (rad, one per joint). Empty (the default) means ARM_HOME_POSE on urdf/arm.urdf
   * (robot name "mbpo_arm"), otherwise the middle of each joint's soft range.
   */
  homePose: number[];
  /** Each start joint is the home pose plus uniform noise in ±startNoise (rad), kept inside the soft limits. */
  startNoise: number;

  /** Goal joint poses are sampled uniformly inside the soft limits shrunk by this margin (rad)... */
  targetMargin: number;
  /** ...and within ±targetSpread (rad) of the home pose on every joint. */
  targetSpread: number;
  /**
   * Height of the table (m, base frame). A target pose is rejected when the end effector, or any link
   * frame that is above this height in the home pose, lies below it (links below it in the home pose
   * are mounts on the table, such as the base and the turret, and are not checked).
   */
  floorHeight: number;
  /** Targets closer than this (m) to the base's vertical axis are rejected (the turret singularity). */
  minTargetRadius: number;
  /** Rejection sampling gives up after this many tries with an error. */
  maxTargetTries: number;
}

/** The defaults, in one place. */
export const DEFAULT_REACH_CONFIG: Readonly<ReachConfig> = Object.freeze({
  episodeSteps: 100,
  controlRateHz: 50,
  successRadius: 0.02,
  distanceWeight: 1.0,
  precisionWeight: 0.5,
  precisionScale: 0.02,
  actionWeight: 0.01,
  velocityWeight: 0.001,
  // Small next to the distance term far away, dominant inside the radius: it pays to stay there.
  successBonus: 0.1,
  invalidReward: -10,
  homePose: [],
  startNoise: 0.05,
  targetMargin: 0.15,
  targetSpread: 0.6,
  floorHeight: 0.05,
  minTargetRadius: 0.08,
  maxTargetTries: 1000,
});

/**
 * Where each part of a reach observation lives: offsets into the Float32Array and its size.
 *
 *   [q | q̇ · velocityScale | end-effector xyz | target xyz | δ = target − end-effector xyz |
 *    tanh(δ / precisionScale)]
 *
 * q holds one entry per joint, except continuous joints, which take two: sin q, cos q (an angle that
 * wraps has no single value to learn from). q̇ is divided by each joint's URDF velocity limit, so it
 * lies in about [−1, 1]. Positions are in the base frame, in metres. The last part is δ again at
 * the success scale: a learner's inputs are standardised over the whole workspace, where a
 * centimetre is a small fraction of δ's spread, while the last centimetres decide success; this
 * part resolves them (and saturates far away).
 */
export interface ReachObservationLayout {
  /** Offset of the joint positions and their length (dof + number of continuous joints). */
  q: number;
  qLength: number;
  /** Offset of the scaled joint velocities (dof entries). */
  qd: number;
  /** Offset of the end-effector position (3). */
  ee: number;
  /** Offset of the target position (3). */
  target: number;
  /** Offset of target − end effector (3). */
  delta: number;
  /** Offset of tanh((target − end effector) / precisionScale) (3). */
  fine: number;
  size: number;
}

export function reachObservationLayout(model: RobotModel): ReachObservationLayout {
  const continuous = model.joints.filter((j) => j.type === "continuous").length;
  const qLength = model.dof + continuous;
  const qd = qLength;
  const ee = qd + model.dof;
  return { q: 0, qLength, qd, ee, target: ee + 3, delta: ee + 6, fine: ee + 9, size: ee + 12 };
}

export class ReachTask implements Task {
  readonly name = "reach";
  readonly dof: number;
  readonly observationSize: number;
  readonly actionSize: number;
  readonly episodeSteps: number;
  readonly goalSize = 3;
  readonly config: Readonly<ReachConfig>;
  readonly layout: ReachObservationLayout;
  /** Observed q̇ = q̇ · velocityScale (1 / URDF velocity limit; 1 when the limit is not finite). */
  readonly velocityScale: Float64Array;
  /** The resolved start pose before noise. */
  readonly homePose: Float64Array;

  private readonly model: RobotModel;
  private readonly kinematics: Kinematics;
  private readonly eeLink: number;
  private readonly continuous: Uint8Array;
  private readonly softLower: Float64Array;
  private readonly softUpper: Float64Array;
  /** Where targets lie: within goalRange.radius (m) of the home tool point; measured on first use. */
  private goalRange: { centre: Float64Array; radius: number } | undefined;
  /** Links whose frame must stay above the floor in a goal pose. */
  private readonly floorCheckedLinks: number[];
  // Scratch for observe() and sampling: no allocation per call.
  private readonly eePosition = new Float64Array(3);
  private readonly linkPositionScratch = new Float64Array(3);

  constructor(model: RobotModel, params: Partial<ReachConfig> = {}) {
    this.config = resolveReachConfig({
      ...params,
      targetSpread: params.targetSpread ?? derivedTargetSpread(model),
    });
    this.model = model;
    this.dof = model.dof;
    this.actionSize = model.dof;
    this.episodeSteps = this.config.episodeSteps;
    this.layout = reachObservationLayout(model);
    this.observationSize = this.layout.size;
    this.kinematics = new Kinematics(model);
    this.eeLink = this.kinematics.linkIndex(model.endEffector);
    this.continuous = Uint8Array.from(model.joints, (j) => (j.type === "continuous" ? 1 : 0));
    this.velocityScale = Float64Array.from(model.joints, (j) =>
      Number.isFinite(j.velocity) && j.velocity > 0 ? 1 / j.velocity : 1,
    );
    // Soft limits where the URDF has a <safety_controller>, hard limits otherwise; a continuous joint
    // samples one turn.
    this.softLower = Float64Array.from(model.joints, (j) =>
      j.type === "continuous" ? -Math.PI : (j.safety?.softLower ?? j.lower),
    );
    this.softUpper = Float64Array.from(model.joints, (j) =>
      j.type === "continuous" ? Math.PI : (j.safety?.softUpper ?? j.upper),
    );
    for (let i = 0; i < this.dof; i++) {
      const width = this.softUpper[i] - this.softLower[i];
      if (!(width > 2 * this.config.targetMargin)) {
        throw new Error(
          `reach: joint "${model.joints[i].name}" soft range ${width.toFixed(3)} rad is not wider than 2·targetMargin (${this.config.targetMargin})`,
        );
      }
    }
    this.homePose = this.resolveHomePose();

    this.kinematics.update(this.homePose);
    this.floorCheckedLinks = [];
    for (let l = 0; l < model.links.length; l++) {
      this.kinematics.linkPosition(l, this.linkPositionScratch);
      if (this.linkPositionScratch[2] >= this.config.floorHeight) this.floorCheckedLinks.push(l);
    }
  }

  sampleEpisode(rng: Rng): TaskEpisode {
    const n = this.dof;
    const { startNoise, targetMargin, targetSpread, maxTargetTries } = this.config;
    const startPosition = new Float64Array(n);
    for (let i = 0; i < n; i++) {
      const q = this.homePose[i] + (startNoise > 0 ? rng.range(-startNoise, startNoise) : 0);
      startPosition[i] = Math.min(this.softUpper[i], Math.max(this.softLower[i], q));
    }
    const goalPosition = new Float64Array(n);
    const goal = new Float64Array(3);
    for (let attempt = 0; attempt < maxTargetTries; attempt++) {
      for (let i = 0; i < n; i++) {
        const lower = Math.max(this.softLower[i] + targetMargin, this.homePose[i] - targetSpread);
        const upper = Math.min(this.softUpper[i] - targetMargin, this.homePose[i] + targetSpread);
        goalPosition[i] = rng.range(lower, upper);
      }
      if (this.acceptableGoalPose(goalPosition, goal)) return { startPosition, goal, goalPosition };
    }
    throw new Error(
      `reach: no target found in ${maxTargetTries} tries; floorHeight ${this.config.floorHeight} m and minTargetRadius ${this.config.minTargetRadius} m leave no workspace`,
    );
  }

  observe(q: Float64Array, qd: Float64Array, goal: Float64Array, out: Float32Array): void {
    const { layout, eePosition } = this;
    let k = layout.q;
    for (let i = 0; i < this.dof; i++) {
      if (this.continuous[i] === 1) {
        out[k++] = Math.sin(q[i]);
        out[k++] = Math.cos(q[i]);
      } else {
        out[k++] = q[i];
      }
    }
    for (let i = 0; i < this.dof; i++) out[layout.qd + i] = qd[i] * this.velocityScale[i];
    this.kinematics.update(q);
    this.kinematics.linkPosition(this.eeLink, eePosition);
    const fineScale = this.config.precisionScale;
    for (let a = 0; a < 3; a++) {
      out[layout.ee + a] = eePosition[a];
      out[layout.target + a] = goal[a];
      out[layout.delta + a] = goal[a] - eePosition[a];
      out[layout.fine + a] = Math.tanh((goal[a] - eePosition[a]) / fineScale);
    }
  }

  reward(_obs: Float32Array, action: Float32Array, nextObs: Float32Array): number {
    if (!allFinite(nextObs)) return this.config.invalidReward;
    const {
      distanceWeight,
      precisionWeight,
      precisionScale,
      actionWeight,
      velocityWeight,
      successBonus,
      successRadius,
    } = this.config;
    const d = this.distance(nextObs);
    let actionSq = 0;
    for (let i = 0; i < action.length; i++) actionSq += action[i] * action[i];
    let speedSq = 0;
    for (let i = 0; i < this.dof; i++) {
      const qd = nextObs[this.layout.qd + i] / this.velocityScale[i];
      speedSq += qd * qd;
    }
    const bonus = d < successRadius ? successBonus : 0;
    const precision = precisionWeight * Math.exp(-((d / precisionScale) ** 2));
    return -distanceWeight * d + precision - actionWeight * actionSq - velocityWeight * speedSq + bonus;
  }

  /**
   * Only a non-finite observation ends a reach episode (a broken state or a model rollout gone
   * wrong). No physical state is a failure here: the safety filter keeps the arm in its limits, and
   * with rewards that are all negative an early end would be a reward for failing.
   */
  terminated(nextObs: Float32Array): boolean {
    return !allFinite(nextObs);
  }

  success(obs: Float32Array): boolean {
    return this.distance(obs) < this.config.successRadius;
  }

  distance(obs: Float32Array): number {
    const o = this.layout.delta;
    return Math.hypot(obs[o], obs[o + 1], obs[o + 2]);
  }

  achievedGoal(q: Float64Array, out: Float64Array): void {
    this.kinematics.update(q);
    this.kinematics.linkPosition(this.eeLink, out);
  }

  /**
   * Whether a goal lies within the farthest distance from the home tool point that
   * GOAL_RANGE_SAMPLES episodes of a fixed seed put a target (the targets' region, as a ball).
   * Hindsight goals outside it are where the arm went, not where this task will ever send it: on a
   * redundant arm whose policy swings into its joint limits they would teach that the corners pay.
   */
  goalInRange(goal: Float64Array): boolean {
    const range = this.goalRange ?? this.measureGoalRange();
    const { centre } = range;
    return Math.hypot(goal[0] - centre[0], goal[1] - centre[1], goal[2] - centre[2]) <= range.radius;
  }

  /**
   * The std of each joint position spread uniformly over its soft range, (upper − lower)/√12, and
   * 1/√2 for the sine and cosine of a continuous joint (a uniform angle); 0 for the rest. Early
   * exploration moves a joint over a small part of its range (0.1–0.3 rad on the Panda's 1.4–5.2):
   * standardised by that alone, a joint at its soft limit is an input of ten standard deviations,
   * where ReLU critics extrapolate and the actor follows them into the limits.
   */
  observationSpread(): Float64Array {
    const spread = new Float64Array(this.observationSize);
    let k = this.layout.q;
    for (let i = 0; i < this.dof; i++) {
      if (this.continuous[i] === 1) {
        spread[k++] = Math.SQRT1_2;
        spread[k++] = Math.SQRT1_2;
      } else {
        spread[k++] = (this.softUpper[i] - this.softLower[i]) / Math.sqrt(12);
      }
    }
    return spread;
  }

  params(): Record<string, number | string | boolean> {
    const c = this.config;
    return {
      task: this.name,
      episodeSteps: c.episodeSteps,
      controlRateHz: c.controlRateHz,
      successRadius: c.successRadius,
      distanceWeight: c.distanceWeight,
      precisionWeight: c.precisionWeight,
      precisionScale: c.precisionScale,
      actionWeight: c.actionWeight,
      velocityWeight: c.velocityWeight,
      successBonus: c.successBonus,
      invalidReward: c.invalidReward,
      homePose: Array.from(this.homePose).join(","),
      startNoise: c.startNoise,
      targetMargin: c.targetMargin,
      targetSpread: c.targetSpread,
      floorHeight: c.floorHeight,
      minTargetRadius: c.minTargetRadius,
      observationSize: this.observationSize,
    };
  }

  private measureGoalRange(): { centre: Float64Array; radius: number } {
    const centre = new Float64Array(3);
    this.achievedGoal(this.homePose, centre);
    const rng = new Rng(1, 4471);
    let radius = 0;
    for (let i = 0; i < GOAL_RANGE_SAMPLES; i++) {
      const { goal } = this.sampleEpisode(rng);
      radius = Math.max(radius, Math.hypot(goal[0] - centre[0], goal[1] - centre[1], goal[2] - centre[2]));
    }
    this.goalRange = { centre, radius };
    return this.goalRange;
  }

  /** Forward kinematics of a candidate goal pose; writes the target into goalOut when acceptable. */
  private acceptableGoalPose(q: Float64Array, goalOut: Float64Array): boolean {
    const { floorHeight, minTargetRadius } = this.config;
    const p = this.linkPositionScratch;
    this.kinematics.update(q);
    for (const link of this.floorCheckedLinks) {
      this.kinematics.linkPosition(link, p);
      if (p[2] < floorHeight) return false;
    }
    this.kinematics.linkPosition(this.eeLink, p);
    if (p[2] < floorHeight || Math.hypot(p[0], p[1]) < minTargetRadius) return false;
    goalOut.set(p);
    return true;
  }

  private resolveHomePose(): Float64Array {
    const n = this.dof;
    const names = this.model.joints.map((j) => j.name);
    const requested = this.config.homePose;
    if (requested.length > 0) {
      if (requested.length !== n) {
        throw new Error(
          `reach: homePose has ${requested.length} values; expected ${n} (${names.join(", ")})`,
        );
      }
      requested.forEach((q, i) => {
        if (!(q >= this.softLower[i] && q <= this.softUpper[i])) {
          throw new Error(
            `reach: homePose[${i}] (${names[i]}) = ${q} is outside the soft limits [${this.softLower[i]}, ${this.softUpper[i]}]`,
          );
        }
      });
      return Float64Array.from(requested);
    }
    // urdf/arm.urdf (robot "mbpo_arm") keeps the pose it was tuned and measured with; every other
    // arm starts from the middle of its soft ranges (a description's <safety_controller> sets them).
    const armFits =
      this.model.name === ARM_ROBOT_NAME &&
      ARM_HOME_POSE.length === n &&
      ARM_HOME_POSE.every((q, i) => q >= this.softLower[i] && q <= this.softUpper[i]);
    if (armFits) return Float64Array.from(ARM_HOME_POSE);
    return Float64Array.from(this.softLower, (lo, i) => 0.5 * (lo + this.softUpper[i]));
  }
}

function allFinite(values: Float32Array): boolean {
  for (let i = 0; i < values.length; i++) if (!Number.isFinite(values[i])) return false;
  return true;
}

/**
 * The target spread of an arm whose config does not set one: TARGET_ARC / reach (two digits, at
 * most π), so that a joint's spread moves the tool of a fully stretched arm by about TARGET_ARC.
 * urdf/arm.urdf (reach 0.438 m) gets the 0.6 rad it was tuned with; a UR5e-class arm 0.24.
 */
export function derivedTargetSpread(model: RobotModel): number {
  return Math.min(Math.PI, Number((TARGET_ARC / armReach(model)).toPrecision(2)));
}

/** Defaults filled in and every value checked; errors name the field. */
export function resolveReachConfig(params: Partial<ReachConfig>): ReachConfig {
  const known = Object.keys(DEFAULT_REACH_CONFIG);
  for (const key of Object.keys(params)) {
    if (!known.includes(key))
      throw new Error(`reach: unknown parameter "${key}" (known: ${known.join(", ")})`);
  }
  const defined = Object.fromEntries(Object.entries(params).filter(([, v]) => v !== undefined));
  const c: ReachConfig = { ...DEFAULT_REACH_CONFIG, homePose: [], ...defined };
  const check = (field: keyof ReachConfig, ok: boolean, expected: string) => {
    if (!ok) throw new Error(`reach: ${field} must be ${expected}, got ${JSON.stringify(c[field])}`);
  };
  check("episodeSteps", Number.isInteger(c.episodeSteps) && c.episodeSteps > 0, "a positive integer");
  check("controlRateHz", c.controlRateHz > 0 && Number.isFinite(c.controlRateHz), "a positive number");
  check("successRadius", c.successRadius > 0 && Number.isFinite(c.successRadius), "a positive number");
  check("precisionScale", c.precisionScale > 0 && Number.isFinite(c.precisionScale), "a positive number");
  for (const field of [
    "distanceWeight",
    "precisionWeight",
    "actionWeight",
    "velocityWeight",
    "successBonus",
    "startNoise",
  ] as const) {
    check(field, c[field] >= 0 && Number.isFinite(c[field]), "a finite number ≥ 0");
  }
  check("invalidReward", Number.isFinite(c.invalidReward), "a finite number");
  check(
    "homePose",
    Array.isArray(c.homePose) && c.homePose.every(Number.isFinite),
    "an array of finite numbers",
  );
  check("targetMargin", c.targetMargin >= 0 && Number.isFinite(c.targetMargin), "a finite number ≥ 0");
  check("targetSpread", c.targetSpread > 0 && Number.isFinite(c.targetSpread), "a positive number");
  check("floorHeight", Number.isFinite(c.floorHeight), "a finite number");
  check(
    "minTargetRadius",
    c.minTargetRadius >= 0 && Number.isFinite(c.minTargetRadius),
    "a finite number ≥ 0",
  );
  check("maxTargetTries", Number.isInteger(c.maxTargetTries) && c.maxTargetTries > 0, "a positive integer");
  return c;
}
