/**
 * Bootstrapping: real transitions for the learner from a recording made before learning starts.
 *
 * Two kinds of file are accepted:
 * - a transition log of ours (any run's DIR/transitions.mcap, or `bootstrap --out`): its
 *   /mbpo/transition messages are the transitions, taken as they are;
 * - any rosbag2 MCAP recording of the arm (e.g. a teleoperation session): /joint_states (joints
 *   matched by name, in any order, extra joints ignored) and the effort applied, from the command
 *   topic (std_msgs/Float64MultiArray, as ros2_control's effort controllers take it) or, where the
 *   bag has none, from JointState.effort. Both are resampled onto the control rate (resample.ts),
 *   split where data is missing, cut into episodes of the task's length, and scored by the task.
 *
 * A teleop recording has no goal and no normalised action, so both are derived:
 * - goal (hindsight): where the end effector is at the end of each episode window. Each window is
 *   then a demonstration of reaching that point from where the window starts.
 * - action: the inverse of what the control loop does with one. The loop sends
 *   effort = gravity(q) + action · torqueScale − action_damping · q̇ (torqueScale = URDF effort
 *   limit × action_torque_fraction; gravity only with gravity_compensation on), so
 *   action = (effort − gravity(q) + action_damping · q̇) / torqueScale, clipped to [−1, 1]. The effort itself is kept as
 *   measured (unclipped) for the dynamics model; clipped actions are counted in the report.
 */
import type { Config } from "../config/config.js";
import { resolveArmGains } from "../control/arm-gains.js";
import type { RealTransitionInput } from "../mbpo/replay-buffer.js";
import type { Dynamics } from "../robot/dynamics.js";
import { Kinematics } from "../robot/kinematics.js";
import type { RobotModel } from "../robot/types.js";
import { ReachTask } from "../tasks/reach.js";
import type { Task } from "../tasks/task.js";
import { FLOAT64_MULTI_ARRAY, JOINT_STATE } from "./definitions.js";
import { createRecording, type EpisodeRecording } from "./episode-recording.js";
import { realTransitionFromMessage, TOPICS, type TransitionMessage } from "./log-messages.js";
import { BagFormatError, type DecodedMessage, type ReadReport, readRos2Mcap } from "./mcap-reader.js";
import { HoldAverager, Interpolator, type Series, SeriesBuilder, splitAtGaps } from "./resample.js";

/** What the conversion needs from the control stack (a ControlStack has all of it). */
export interface BootstrapContext {
  model: RobotModel;
  dynamics: Dynamics;
  task: Task;
  config: Pick<
    Config,
    "control_rate_hz" | "gravity_compensation" | "action_torque_fraction" | "action_damping"
  >;
}

export interface BootstrapOptions {
  /** Joint-state topic of a teleop bag (default /joint_states). */
  jointStatesTopic?: string;
  /**
   * Command topic of a teleop bag. Given: it must be in the bag. Not given: /effort_controller/commands
   * where the bag has it, else JointState.effort.
   */
  commandsTopic?: string;
  /** Joint order of the command arrays (default: the robot model's joint order). */
  commandJoints?: readonly string[];
  /** Longest time without a joint state or command that is not a gap (s; default 3 control periods). */
  maxGap?: number;
  /**
   * "auto" (default): a transition log's /mbpo/transition messages when the file has them, else the
   * joint states. "joint-states": always convert from joint states and efforts, as for teleop (e.g.
   * to treat a scripted run's log as a demonstration with hindsight goals).
   */
  from?: "auto" | "joint-states";
}

export interface BootstrapResult {
  file: string;
  kind: "transition-log" | "teleop";
  transitions: RealTransitionInput[];
  /** Teleop: the converted episodes (windows), in the log's form (bootstrap --out writes them). */
  episodes: EpisodeRecording[];
  /** Teleop: stretches of recording without gaps, and where the effort came from. */
  segments: number;
  effortSource: "log" | "commands" | "joint-state-effort";
  /** Teleop: transitions whose derived action was clipped to [−1, 1] in some joint. */
  clippedActions: number;
  /** Messages in the file, and the read report (damage, completeness). */
  read: ReadReport;
}

/**
 * Loads a bootstrap file into real transitions (RealTransitionInput, what Learner.addReal takes).
 * Throws a one-line error for a file that cannot be used (not MCAP, a .db3 bag, a missing joint or
 * topic); damage part-way through is reported in `read.problem` and what came before it is used.
 */
export async function loadBootstrap(
  file: string,
  context: BootstrapContext,
  options: BootstrapOptions = {},
): Promise<BootstrapResult> {
  const jointTopic = options.jointStatesTopic ?? TOPICS.jointStates;
  const commandTopic = options.commandsTopic ?? TOPICS.commands;
  const collector = new Collector(file, context, options, jointTopic, commandTopic);
  const fromLog = options.from !== "joint-states";
  const read = await readRos2Mcap(file, {
    topics: new Set([...(fromLog ? [TOPICS.transition] : []), jointTopic, commandTopic]),
    // The collector copies every value it keeps before the next message.
    reuseMessages: true,
    onMessage: (m) => collector.add(m),
  });
  const topics = [...read.channels.values()];
  const hasLog = fromLog && (read.counts.get(TOPICS.transition) ?? 0) > 0;
  if (hasLog) return collector.fromLog(read);
  const jointChannel = topics.find((c) => c.topic === jointTopic);
  if (jointChannel === undefined || (read.counts.get(jointTopic) ?? 0) === 0) {
    const listed = [...read.counts].map(([t, n]) => `${t} (${n})`).join(", ") || "none";
    throw new BagFormatError(
      `${file}: no ${TOPICS.transition} and no messages on ${jointTopic}; nothing to bootstrap from (topics: ${listed}). Name the joint-state topic with --joint-states` +
        (read.problem !== undefined ? `; also: ${read.problem}` : ""),
    );
  }
  if (jointChannel.type !== JOINT_STATE && jointChannel.type !== "sensor_msgs/JointState") {
    throw new BagFormatError(`${file}: ${jointTopic} has type ${jointChannel.type}; expected ${JOINT_STATE}`);
  }
  const commandChannel = topics.find((c) => c.topic === commandTopic);
  if (options.commandsTopic !== undefined && (read.counts.get(commandTopic) ?? 0) === 0) {
    // Named by the user: a typo must not quietly turn into JointState.effort.
    const candidates = topics
      .filter((c) => c.type === FLOAT64_MULTI_ARRAY || c.type === "std_msgs/Float64MultiArray")
      .map((c) => c.topic);
    throw new BagFormatError(
      `${file}: --commands ${commandTopic}: ${commandChannel === undefined ? "no such topic" : "no messages on it"} in the bag (its ${FLOAT64_MULTI_ARRAY} topics: ${candidates.join(", ") || "none"}); leave --commands out to take the effort from JointState.effort`,
    );
  }
  if (
    commandChannel !== undefined &&
    commandChannel.type !== FLOAT64_MULTI_ARRAY &&
    commandChannel.type !== "std_msgs/Float64MultiArray"
  ) {
    throw new BagFormatError(
      `${file}: ${commandTopic} has type ${commandChannel.type}; expected ${FLOAT64_MULTI_ARRAY}`,
    );
  }
  return collector.fromTeleop(read);
}

interface JointStateMessage {
  header: { stamp: { sec: number; nanosec: number } };
  name: string[];
  position: ArrayLike<number>;
  velocity: ArrayLike<number>;
  effort: ArrayLike<number>;
}

/** Gathers the messages of one file, then converts them. */
class Collector {
  private readonly dof: number;
  private readonly jointNames: string[];
  private readonly logTransitions: RealTransitionInput[] = [];
  /** Joint states: position, velocity, effort (3·dof values per row); NaN where absent. */
  private readonly states: SeriesBuilder;
  private readonly commands: SeriesBuilder;
  /**
   * Times are kept in float64 seconds relative to an origin per clock: joint states on their stamp
   * clock, commands on the recorder's (receive) clock until the two are related at the end.
   */
  private origin: bigint | undefined;
  private originSec = 0;
  private originNanosec = 0;
  private commandOrigin: bigint | undefined;
  /** logTime − header stamp of joint states (ns), to put command receive times on the stamp clock. */
  private readonly clockOffsets: number[] = [];
  private lastNames: string[] | undefined;
  private readonly index: Int32Array;
  private readonly commandIndex: Int32Array;
  private velocityMissing = false;
  private effortMissing = false;

  constructor(
    private readonly file: string,
    private readonly context: BootstrapContext,
    private readonly options: BootstrapOptions,
    private readonly jointTopic: string,
    private readonly commandTopic: string,
  ) {
    this.dof = context.model.dof;
    this.jointNames = context.model.joints.map((j) => j.name);
    this.states = new SeriesBuilder(3 * this.dof);
    this.commands = new SeriesBuilder(this.dof);
    this.index = new Int32Array(this.dof);
    const order = options.commandJoints ?? this.jointNames;
    this.commandIndex = Int32Array.from(this.jointNames, (name) => {
      const i = order.indexOf(name);
      if (i < 0) throw new BagFormatError(`--command-joints does not name joint "${name}"`);
      return i;
    });
  }

  add(m: DecodedMessage): void {
    if (m.topic === TOPICS.transition) this.addLogTransition(m.message as TransitionMessage);
    else if (m.topic === this.jointTopic) this.addJointState(m.message as JointStateMessage, m.logTime);
    else if (m.topic === this.commandTopic)
      this.addCommand(m.message as { data: ArrayLike<number> }, m.logTime);
  }

  private addLogTransition(m: TransitionMessage): void {
    const { task } = this.context;
    const where = `${this.file}: /mbpo/transition (episode ${m.episode}, step ${m.step})`;
    if (m.joint_names.length !== this.dof || m.joint_names.some((n, i) => n !== this.jointNames[i])) {
      throw new BagFormatError(
        `${where} is for joints ${m.joint_names.join(", ")}; this robot has ${this.jointNames.join(", ")}`,
      );
    }
    if (m.observation.length !== task.observationSize || m.action.length !== task.actionSize) {
      throw new BagFormatError(
        `${where} has ${m.observation.length} observation and ${m.action.length} action values; task ${task.name} uses ${task.observationSize} and ${task.actionSize}`,
      );
    }
    this.logTransitions.push(realTransitionFromMessage(m));
  }

  private addJointState(m: JointStateMessage, logTime: bigint): void {
    if (m.name !== this.lastNames && !sameNames(m.name, this.lastNames)) this.matchJoints(m.name);
    this.lastNames = m.name;
    const { sec, nanosec } = m.header.stamp;
    const stamped = sec !== 0 || nanosec !== 0;
    if (this.origin === undefined) {
      this.origin = stamped ? BigInt(sec) * 1_000_000_000n + BigInt(nanosec) : logTime;
      this.originSec = Number(this.origin / 1_000_000_000n);
      this.originNanosec = Number(this.origin % 1_000_000_000n);
    }
    if (stamped && this.clockOffsets.length < 1001) {
      this.clockOffsets.push(Number(logTime - (BigInt(sec) * 1_000_000_000n + BigInt(nanosec))));
    }
    // Relative seconds in plain numbers (exact to well below a nanosecond over days of recording).
    const time = stamped
      ? sec - this.originSec + (nanosec - this.originNanosec) / 1e9
      : Number(logTime - this.origin) / 1e9;
    const row = this.states.push(time);
    const v = this.states.values;
    const n = this.dof;
    const hasVelocity = m.velocity.length === m.name.length;
    const hasEffort = m.effort.length === m.name.length;
    if (!hasVelocity) this.velocityMissing = true;
    if (!hasEffort) this.effortMissing = true;
    for (let j = 0; j < n; j++) {
      const k = this.index[j];
      v[row + j] = m.position[k];
      v[row + n + j] = hasVelocity ? m.velocity[k] : Number.NaN;
      v[row + 2 * n + j] = hasEffort ? m.effort[k] : Number.NaN;
    }
  }

  private matchJoints(names: string[]): void {
    if (names.length === 0)
      throw new BagFormatError(`${this.file}: a message on ${this.jointTopic} has no joint names`);
    this.jointNames.forEach((joint, j) => {
      const k = names.indexOf(joint);
      if (k < 0) {
        throw new BagFormatError(
          `${this.file}: joint "${joint}" is not in ${this.jointTopic} (it has ${names.join(", ")})`,
        );
      }
      this.index[j] = k;
    });
  }

  private addCommand(m: { data: ArrayLike<number> }, logTime: bigint): void {
    const expected = this.options.commandJoints?.length ?? this.dof;
    if (m.data.length !== expected) {
      throw new BagFormatError(
        `${this.file}: a command on ${this.commandTopic} has ${m.data.length} values; expected ${expected} (${(this.options.commandJoints ?? this.jointNames).join(", ")}). Give the command array's joint order with --command-joints`,
      );
    }
    // Commands carry no stamp: their receive time, moved onto the joint states' stamp clock later.
    if (this.commandOrigin === undefined) this.commandOrigin = logTime;
    const row = this.commands.push(Number(logTime - this.commandOrigin) / 1e9);
    for (let j = 0; j < this.dof; j++) this.commands.values[row + j] = m.data[this.commandIndex[j]];
  }

  fromLog(read: ReadReport): BootstrapResult {
    return {
      file: this.file,
      kind: "transition-log",
      transitions: this.logTransitions,
      episodes: [],
      segments: 0,
      effortSource: "log",
      clippedActions: 0,
      read,
    };
  }

  fromTeleop(read: ReadReport): BootstrapResult {
    const { config, task } = this.context;
    const dt = 1 / config.control_rate_hz;
    const maxGap = this.options.maxGap ?? 3 * dt;
    const n = this.dof;
    const states = this.states.sorted();
    const useCommands = this.commands.count > 0;
    let effort: Series;
    if (useCommands) {
      // A command received at log time L was sent at about stamp time L − (log − stamp offset).
      const offsetNs = BigInt(Math.round(median(this.clockOffsets)));
      const shift = Number(this.commandOrigin! - offsetNs - (this.origin ?? 0n)) / 1e9;
      const commands = this.commands.sorted();
      for (let i = 0; i < commands.times.length; i++) commands.times[i] += shift;
      effort = commands;
    } else {
      if (this.effortMissing) {
        throw new BagFormatError(
          `${this.file}: no commands on ${this.commandTopic} and ${this.jointTopic} has no effort values; nothing says what effort was applied (name the command topic with --commands)`,
        );
      }
      effort = column(states, 2 * n, n);
    }
    const positions = column(states, 0, n);
    const wrap = Uint8Array.from(this.context.model.joints, (j) => (j.type === "continuous" ? 1 : 0));
    const qAt = new Interpolator(positions, wrap);
    const qdAt = this.velocityMissing ? undefined : new Interpolator(column(states, n, n));
    const effortAt = new HoldAverager(effort, maxGap);

    const windows = new WindowBuilder(this.context, this.origin ?? 0n);
    let segments = 0;
    const q = new Float64Array(n);
    const tau = new Float64Array(n);
    for (const [a, b] of splitAtGaps(states.times, maxGap)) {
      const t0 = states.times[a];
      const steps = Math.floor((states.times[b] - t0) / dt + 1e-9);
      if (steps < 1) continue;
      // Grid states of this stretch, then the runs of steps whose effort is known.
      const gq = new Float64Array((steps + 1) * n);
      const gqd = new Float64Array((steps + 1) * n);
      for (let k = 0; k <= steps; k++) {
        qAt.at(t0 + k * dt, q);
        gq.set(q, k * n);
        if (qdAt !== undefined) qdAt.at(t0 + k * dt, gqd, k * n);
      }
      if (qdAt === undefined) finiteDifferenceVelocity(gq, gqd, steps + 1, n, dt);
      let runOpen = false;
      for (let k = 0; k < steps; k++) {
        const known = effortAt.average(t0 + k * dt, t0 + (k + 1) * dt, tau);
        if (!known) {
          if (runOpen) windows.endRun();
          runOpen = false;
          continue;
        }
        if (!runOpen) segments++;
        runOpen = true;
        windows.add(t0 + k * dt, gq, gqd, k, tau);
      }
      if (runOpen) windows.endRun();
    }
    const episodes = windows.finish();
    return {
      file: this.file,
      kind: "teleop",
      transitions: realTransitions(episodes, task),
      episodes,
      segments,
      effortSource: useCommands ? "commands" : "joint-state-effort",
      clippedActions: windows.clipped,
      read,
    };
  }
}

function sameNames(a: string[], b: string[] | undefined): boolean {
  if (b === undefined || a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

function median(values: number[]): number {
  if (values.length === 0) return 0;
  const sorted = [...values].sort((x, y) => x - y);
  return sorted[Math.floor(sorted.length / 2)];
}

/** Columns [from, from+width) of a series, as a series of their own. */
function column(s: Series, from: number, width: number): Series {
  const rows = s.times.length;
  const values = new Float64Array(rows * width);
  for (let i = 0; i < rows; i++) {
    for (let j = 0; j < width; j++) values[i * width + j] = s.values[i * s.n + from + j];
  }
  return { n: width, times: s.times, values };
}

/** Central differences inside, one-sided at the ends. */
function finiteDifferenceVelocity(q: Float64Array, qd: Float64Array, rows: number, n: number, dt: number) {
  for (let k = 0; k < rows; k++) {
    const lo = Math.max(0, k - 1);
    const hi = Math.min(rows - 1, k + 1);
    for (let j = 0; j < n; j++) qd[k * n + j] = (q[hi * n + j] - q[lo * n + j]) / ((hi - lo) * dt);
  }
}

/**
 * Cuts runs of consecutive steps into episodes of the task's length and fills each as the control
 * loop would have: observations with the hindsight goal, derived actions, the task's rewards.
 * Steps are copied straight into the episode's recording; nothing is allocated per step.
 */
class WindowBuilder {
  clipped = 0;
  private readonly done: EpisodeRecording[] = [];
  private current: EpisodeRecording | undefined;
  private readonly torqueScale: Float64Array;
  private readonly actionDamping: number[];
  private readonly gravity: Float64Array;
  private readonly originSeconds: number;
  private readonly goal: HindsightGoal;
  private readonly q: Float64Array;
  private readonly qd: Float64Array;
  private readonly obs: Float32Array;
  private readonly nextObs: Float32Array;
  private readonly action: Float32Array;

  constructor(
    private readonly context: BootstrapContext,
    origin: bigint,
  ) {
    const { model, config, task } = context;
    this.torqueScale = Float64Array.from(model.joints, (j) => j.effort * config.action_torque_fraction);
    this.actionDamping = resolveArmGains(config, model).actionDamping;
    this.gravity = new Float64Array(model.dof);
    this.originSeconds = Number(origin) / 1e9;
    this.goal = new HindsightGoal(task, model);
    this.q = new Float64Array(model.dof);
    this.qd = new Float64Array(model.dof);
    this.obs = new Float32Array(task.observationSize);
    this.nextObs = new Float32Array(task.observationSize);
    this.action = new Float32Array(task.actionSize);
  }

  /** Adds step k of a stretch's grid (states gq, gqd at k and k+1) with the effort tau. */
  add(t: number, gq: Float64Array, gqd: Float64Array, k: number, tau: Float64Array): void {
    const { task, model } = this.context;
    const n = model.dof;
    if (this.current === undefined) {
      const shape = {
        dof: n,
        obsSize: task.observationSize,
        actSize: task.actionSize,
        goalSize: task.goalSize,
      };
      this.current = createRecording(shape, this.done.length, task.episodeSteps);
    }
    const r = this.current;
    const i = r.rows;
    r.stamp[i] = this.originSeconds + t;
    r.step[i] = i;
    for (let j = 0; j < n; j++) {
      r.position[i * n + j] = gq[k * n + j];
      r.velocity[i * n + j] = gqd[k * n + j];
      r.nextPosition[i * n + j] = gq[(k + 1) * n + j];
      r.nextVelocity[i * n + j] = gqd[(k + 1) * n + j];
      r.effort[i * n + j] = tau[j];
    }
    r.rows = i + 1;
    if (r.rows === r.capacity) this.endRun();
  }

  /** Closes the episode in progress (end of a run of steps, or the task's length reached). */
  endRun(): void {
    const r = this.current;
    this.current = undefined;
    if (r === undefined || r.rows === 0) return;
    const { task, dynamics, config, model } = this.context;
    const n = model.dof;
    const o = task.observationSize;
    const { q, qd, obs, nextObs, action } = this;
    const dt = 1 / config.control_rate_hz;
    const last = r.rows - 1;
    copyRow(r.nextPosition, last, q);
    this.goal.of(q, r.goal);
    r.measuredEffort.fill(Number.NaN);
    r.nextMeasuredEffort.fill(Number.NaN);
    for (let i = 0; i < r.rows; i++) {
      copyRow(r.position, i, q);
      // Rows are consecutive grid steps: this row's observation is the last row's next one.
      if (i === 0) {
        copyRow(r.velocity, 0, qd);
        task.observe(q, qd, r.goal, obs);
      } else {
        for (let j = 0; j < o; j++) obs[j] = nextObs[j];
      }
      if (config.gravity_compensation) dynamics.gravity(q, this.gravity);
      else this.gravity.fill(0);
      let clipped = false;
      for (let j = 0; j < n; j++) {
        const a =
          (r.effort[i * n + j] - this.gravity[j] + this.actionDamping[j] * r.velocity[i * n + j]) /
          this.torqueScale[j];
        if (a > 1 || a < -1) clipped = true;
        action[j] = Math.max(-1, Math.min(1, a));
      }
      if (clipped) this.clipped++;
      copyRow(r.nextPosition, i, q);
      copyRow(r.nextVelocity, i, qd);
      task.observe(q, qd, r.goal, nextObs);
      const terminated = task.terminated(nextObs);
      r.nextStamp[i] = r.stamp[i] + dt;
      for (let j = 0; j < o; j++) {
        r.observation[i * o + j] = obs[j];
        r.nextObservation[i * o + j] = nextObs[j];
      }
      for (let j = 0; j < action.length; j++) r.action[i * action.length + j] = action[j];
      r.reward[i] = task.reward(obs, action, nextObs);
      r.terminated[i] = terminated ? 1 : 0;
      r.truncated[i] = !terminated && i === last ? 1 : 0;
    }
    this.done.push(r);
  }

  finish(): EpisodeRecording[] {
    this.endRun();
    return this.done;
  }
}

/** Row `row` of a row-major array with out.length columns, into out. */
function copyRow(from: Float64Array, row: number, out: Float64Array): void {
  const n = out.length;
  for (let j = 0; j < n; j++) out[j] = from[row * n + j];
}

/** The goal a state achieves. For reach: the end effector's position, as the task computes it. */
class HindsightGoal {
  private readonly kinematics: Kinematics;
  private readonly link: number;

  constructor(task: Task, model: RobotModel) {
    if (!(task instanceof ReachTask)) {
      throw new Error(
        `bootstrap: task "${task.name}" has no hindsight goal; teleop bootstrap supports reach`,
      );
    }
    this.kinematics = new Kinematics(model);
    this.link = this.kinematics.linkIndex(model.endEffector);
  }

  of(q: Float64Array, goalOut: Float64Array): void {
    this.kinematics.update(q);
    this.kinematics.linkPosition(this.link, goalOut);
  }
}

/**
 * Real transitions viewing the episodes' arrays (no copies). Rows of an episode are consecutive
 * grid steps, so a row's next state is the following row's state: the same views serve both.
 */
function realTransitions(episodes: EpisodeRecording[], task: Task): RealTransitionInput[] {
  const out: RealTransitionInput[] = [];
  const o = task.observationSize;
  const a = task.actionSize;
  for (const r of episodes) {
    const n = r.dof;
    const last = r.rows - 1;
    let q = r.position.subarray(0, n);
    let qd = r.velocity.subarray(0, n);
    let obs = r.observation.subarray(0, o);
    for (let i = 0; i <= last; i++) {
      const nextQ =
        i < last
          ? r.position.subarray((i + 1) * n, (i + 2) * n)
          : r.nextPosition.subarray(i * n, (i + 1) * n);
      const nextQd =
        i < last
          ? r.velocity.subarray((i + 1) * n, (i + 2) * n)
          : r.nextVelocity.subarray(i * n, (i + 1) * n);
      const nextObs =
        i < last
          ? r.observation.subarray((i + 1) * o, (i + 2) * o)
          : r.nextObservation.subarray(i * o, (i + 1) * o);
      out.push({
        obs,
        action: r.action.subarray(i * a, (i + 1) * a),
        reward: r.reward[i],
        nextObs,
        terminated: r.terminated[i] === 1,
        q,
        qd,
        effort: r.effort.subarray(i * n, (i + 1) * n),
        nextQ,
        nextQd,
        goal: r.goal,
      });
      q = nextQ;
      qd = nextQd;
      obs = nextObs;
    }
  }
  return out;
}
