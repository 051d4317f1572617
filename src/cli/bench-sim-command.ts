/**
 * `mbpo-arm bench sim` and `node dist/bench/sim.js`: physics steps per second of the digital twin
 * (the whole SimDriver step: damping, friction, joint-limit stops, ABA, integration), timed beside
 * MuJoCo's mj_step on the same URDF in the same run.
 *
 * Both start from the same state (mjprobe's bench state: joints part-way through their ranges,
 * all moving), at 1 kHz with zero command, and run `steps` steps after a warm-up. The three timings
 * (ours, MuJoCo as loaded, MuJoCo with contacts off) are repeated in turn and the MEDIAN of each is
 * reported (every sample is listed too): the machine is shared and noisy.
 *
 * What MuJoCo does that we do not: collision detection on the URDF's <collision> geoms (and
 * contact forces when they touch), and Coulomb friction as a friction-loss constraint in its
 * solver (we smooth it with tanh). Its joint limits and damping are the same physics as ours.
 * The like-for-like figure is therefore the ratio to MuJoCo with contacts off (our twin has no
 * collisions); the ratio to MuJoCo as loaded is reported beside it.
 */
import { SimDriver } from "../drivers/sim.js";
import { loadRobotDescription } from "../robot/description.js";

export interface SimBenchOptions {
  urdf: string;
  steps: number;
  mujoco: boolean;
}

export interface TimingStats {
  /** Median over the repeats (the headline figure). */
  stepsPerS: number;
  best: number;
  samples: number[];
}

export interface SimBenchResult {
  bench: "sim_step";
  urdf: string;
  dof: number;
  physicsRateHz: number;
  steps: number;
  repeats: number;
  statistic: "median";
  ours: TimingStats & {
    nsPerStep: number;
    /** Share of the timed steps in which a joint-limit stop acted (those run the stop solver). */
    limitContactFraction: number;
    /** Share of the timed steps that computed the mass matrix (CRBA) for the stop solver. */
    massMatrixFraction: number;
  };
  mujoco:
    | {
        version: string;
        /** mj_step as MuJoCo loads the URDF: collision geoms on, contacts solved. */
        withContacts: TimingStats & { maxContacts: number };
        /** mj_step with contacts disabled (mjDSBL_CONTACT), as a model without collision geometry. */
        withoutContacts: TimingStats & { maxContacts: number };
      }
    | { unavailable: string };
  /** ours / MuJoCo, medians: above 1 means our step is faster. */
  ratioOursOverMujoco: number | null;
  ratioOursOverMujocoNoContact: number | null;
  notes: string[];
}

const REPEATS = 5;
const RATE_HZ = 1000;

/** The state mjprobe's bench mode starts from, so both simulators integrate the same motion. */
function benchState(sim: SimDriver, model: ReturnType<typeof loadRobotDescription>): void {
  const q = model.joints.map((joint, j) => {
    const sign = j % 2 ? -1 : 1;
    if (Number.isFinite(joint.lower) && Number.isFinite(joint.upper)) {
      return joint.lower + (joint.upper - joint.lower) * (0.5 + 0.15 * sign);
    }
    return 0.3 * sign * (1 + 0.25 * j);
  });
  const qd = model.joints.map((_, j) => 0.5 * (j % 2 ? -1 : 1));
  sim.setState(q, qd);
}

function stats(samples: number[]): TimingStats {
  const sorted = [...samples].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  const median = sorted.length % 2 ? sorted[mid] : 0.5 * (sorted[mid - 1] + sorted[mid]);
  return {
    stepsPerS: Math.round(median),
    best: Math.round(sorted[sorted.length - 1]),
    samples: samples.map(Math.round),
  };
}

export async function runSimBenchmark(opts: SimBenchOptions): Promise<SimBenchResult> {
  if (!Number.isInteger(opts.steps) || opts.steps < 1)
    throw new Error(`bench sim: --steps must be a positive integer, got ${opts.steps}`);
  const model = loadRobotDescription(opts.urdf);
  const sim = new SimDriver({ model, physicsRateHz: RATE_HZ, timing: "stepped" });
  sim.sendEffort(new Float64Array(model.dof));

  const timeOurs = (steps: number): number => {
    benchState(sim, model);
    const t0 = process.hrtime.bigint();
    for (let k = 0; k < steps; k++) sim.step();
    return Number(process.hrtime.bigint() - t0) / 1e9;
  };
  // Warm-up: let V8 optimise the step (and the stop solver, which runs when a joint rests on a limit).
  timeOurs(Math.min(opts.steps, 100_000));

  const notes: string[] = [];
  type Probe = typeof import("../../test/mujoco/probe.js");
  let probe: Probe | undefined;
  let probePath: string | undefined;
  let unavailable: string | undefined;
  if (!opts.mujoco) unavailable = "not run (--no-mujoco)";
  else {
    try {
      // The MuJoCo helper is a test-only tool (not shipped in the package), hence the dynamic import.
      probe = await import("../../test/mujoco/probe.js");
      probePath = probe.mujocoProbePath();
      if (probePath === undefined) unavailable = probe.MUJOCO_MISSING;
    } catch (err) {
      unavailable = `MuJoCo probe unavailable: ${(err as Error).message}`;
    }
  }

  const ours: number[] = [];
  const withContacts: number[] = [];
  const withoutContacts: number[] = [];
  let maxContacts = 0;
  let maxContactsOff = 0;
  let contactSteps = 0;
  let massMatrixSteps = 0;
  for (let r = 0; r < REPEATS; r++) {
    const contactsBefore = sim.limitContactSteps;
    const updatesBefore = sim.massMatrixUpdates;
    ours.push(opts.steps / timeOurs(opts.steps));
    contactSteps += sim.limitContactSteps - contactsBefore;
    massMatrixSteps += sim.massMatrixUpdates - updatesBefore;
    if (probe !== undefined && probePath !== undefined) {
      const on = probe.mujocoBench(probePath, opts.urdf, opts.steps, false);
      const off = probe.mujocoBench(probePath, opts.urdf, opts.steps, true);
      withContacts.push(on.steps_per_s);
      withoutContacts.push(off.steps_per_s);
      maxContacts = Math.max(maxContacts, on.max_contacts);
      maxContactsOff = Math.max(maxContactsOff, off.max_contacts);
    }
  }

  const oursStats = stats(ours);
  let mujoco: SimBenchResult["mujoco"];
  let ratio: number | null = null;
  let ratioNoContact: number | null = null;
  if (probe !== undefined && probePath !== undefined) {
    const on = { ...stats(withContacts), maxContacts };
    const off = { ...stats(withoutContacts), maxContacts: maxContactsOff };
    mujoco = {
      version: probe.mujocoInfo(probePath, opts.urdf).version,
      withContacts: on,
      withoutContacts: off,
    };
    ratio = Number((oursStats.stepsPerS / on.stepsPerS).toFixed(2));
    ratioNoContact = Number((oursStats.stepsPerS / off.stepsPerS).toFixed(2));
    if (maxContacts > 0) {
      notes.push(
        `MuJoCo as loaded found up to ${maxContacts} contacts between the URDF's collision geoms during the run and solved them; our twin does no collision detection, so the like-for-like ratio is the one with contacts off`,
      );
    } else {
      notes.push(
        "MuJoCo as loaded still runs collision detection on the URDF's collision geoms each step (no contact arose); our twin does none",
      );
    }
    notes.push(
      "MuJoCo models URDF friction as a friction-loss constraint in its solver, ours as tanh-smoothed Coulomb friction; limits, damping and the 1 ms Euler step are alike",
    );
  } else {
    mujoco = { unavailable: unavailable ?? "MuJoCo probe unavailable" };
  }

  return {
    bench: "sim_step",
    urdf: opts.urdf,
    dof: model.dof,
    physicsRateHz: RATE_HZ,
    steps: opts.steps,
    repeats: REPEATS,
    statistic: "median",
    ours: {
      ...oursStats,
      nsPerStep: Number((1e9 / oursStats.stepsPerS).toFixed(1)),
      limitContactFraction: Number((contactSteps / (REPEATS * opts.steps)).toFixed(4)),
      massMatrixFraction: Number((massMatrixSteps / (REPEATS * opts.steps)).toFixed(4)),
    },
    mujoco,
    ratioOursOverMujoco: ratio,
    ratioOursOverMujocoNoContact: ratioNoContact,
    notes,
  };
}
