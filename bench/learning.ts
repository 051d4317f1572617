/**
 * MBPO against its model-free baseline (SAC, same G, real data only) on the simulated `reach`
 * task: the real steps each needs to reach 90% evaluation success (20 episodes, mean action),
 * per seed, with a step cap. Everything runs in this process through the real control stack
 * (createControlStack: simulator, gravity compensation, safety filter, EpisodeRunner); the learner
 * is src/mbpo/mbpo.ts's, called between episodes.
 *
 *   node dist/bench/learning.js [--algos mbpo,sac] [--seeds 1,2,3] [--steps 5000]
 *                               [--profile quick|eager|paper] [--eval-every 500] [--eval-episodes 20]
 *                               [--backend wasm] [--out DIR] [--json]
 *                               [--set section.key=JSON ...] [--param key=JSON ...]
 *                               [--bootstrap-episodes N] [--reality none|realistic]
 *                               [--model-prior none,urdf] [--urdf FILE] [--identify N]
 *   node dist/bench/learning.js --merge DIR1,DIR2,... [--steps CAP] [--out DIR]
 *
 * --profile names a set of hyperparameter overrides (src/mbpo/hyperparameters.ts,
 * HYPERPARAMETER_PROFILES); without it DEFAULT_PROFILE (quick) runs, as in `train`; paper is the
 * papers' defaults. --set overrides one value on top
 * (e.g. --set mbpo.sacUpdatesPerRealStep=10 --set sac.hiddenSizes=[128,128]); --param sets one
 * of the node's parameters (config/mbpo_arm.yaml, dotted, e.g. --param action_damping=0.2 or
 * --param task.success_radius=0.03) for the control stack and the learner alike.
 * --bootstrap-episodes N first records N episodes of the PD policy (which tracks each episode's
 * goal pose) on the simulator into a transitions.mcap, imports that file as a teleop recording
 * (src/data/bootstrap.ts: joint states and efforts, hindsight goals, derived actions) and hands it
 * to the learner as `train --bootstrap` does (Learner.addBootstrap, then pretrain) before the first
 * episode; the demonstrations use their own episode seeds, so they never show an evaluation goal.
 * --reality PRESET gives the twin that reality gap (src/drivers/sim-reality.ts), drawn from each
 * run's seed: every seed is another arm, while the learner, the filter and the controller see the
 * URDF. --model-prior runs MBPO once per prior named (mbpo.modelPrior: none learns the whole Δ,
 * urdf the residual over the URDF's prediction; without the option, the profile's: quick's is urdf;
 * SAC has no model and runs once). --urdf runs on another arm (a .urdf or .xacro; its gains and
 * home pose derived from it as for any run: src/control/arm-gains.ts). --identify N first records N
 * episodes of `run --policy excite --seed S`'s policy on each seed's twin, fits them with
 * `identify`'s code (and compares the fit with the twin's drawn values), and learns with the
 * identified URDF as the node's description (controller, filter, learner, prior), the twin staying
 * the truth (sim.urdf), and with the fitted state latency as `state_latency`: the workflow of
 * README "A real arm is not its URDF"; the excitation steps are reported beside the steps to 90%,
 * not inside them. Prints a line per episode (progress) to stderr, then the results; writes
 * curves.csv, results.json and curves.svg to --out (default bench-results/learning). --merge runs
 * nothing: it combines the results.json of runs made by separate processes into one set of outputs
 * and one summary (--steps sets the plot's x range).
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { type IdentifyReport, identifyTransitions } from "../src/cli/identify-command.js";
import { createLogger } from "../src/cli/logger.js";
import { runCommand } from "../src/cli/run-command.js";
import { type Config, defaultConfig, descriptionOptions, withOverrides } from "../src/config/config.js";
import type { EpisodeResult } from "../src/control/episode.js";
import { createPolicy } from "../src/control/policies/index.js";
import { MlpPolicy } from "../src/control/policies/mlp.js";
import { PdPolicy } from "../src/control/policies/pd.js";
import type { Policy } from "../src/control/policy.js";
import { RecordingPolicy } from "../src/control/recording-policy.js";
import { type ControlStack, createControlStack } from "../src/control/stack.js";
import { loadBootstrap } from "../src/data/bootstrap.js";
import { TRANSITIONS_FILE } from "../src/data/transition-log.js";
import type { JointState } from "../src/drivers/driver.js";
import { evaluationEpisodes } from "../src/env/episodes.js";
import { DEFAULT_PROFILE, resolveHyperparameters } from "../src/mbpo/hyperparameters.js";
import {
  type ActorWeights,
  type Algorithm,
  controlSpecFromConfig,
  type Learner,
  type RealTransitionInput,
} from "../src/mbpo/learner.js";
import { createLearner } from "../src/mbpo/mbpo.js";
import type { TaskEpisode } from "../src/tasks/task.js";
import { Rng } from "../src/util/rng.js";

function option(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && i + 1 < process.argv.length ? process.argv[i + 1] : fallback;
}

const algos = option("algos", "mbpo,sac").split(",") as Algorithm[];
const seeds = option("seeds", "1").split(",").map(Number);
const stepCap = Number(option("steps", "5000"));
const profile = option("profile", DEFAULT_PROFILE);
const evalEvery = Number(option("eval-every", "500"));
const evalEpisodes = Number(option("eval-episodes", "20"));
const backend = option("backend", "wasm");
const outDir = resolve(option("out", "bench-results/learning"));
const json = process.argv.includes("--json");
const bootstrapEpisodes = Number(option("bootstrap-episodes", "0"));
const reality = option("reality", "none");
/** --urdf FILE: the arm (a .urdf or .xacro); default the node's, urdf/arm.urdf. */
const urdf = option("urdf", "");
/** --identify N: learn on the description identified from N excitation episodes (0: the URDF as given). */
const identifyEpisodes = Number(option("identify", "0"));
if (!Number.isInteger(identifyEpisodes) || identifyEpisodes < 0) {
  throw new Error(`--identify: expected a number of excitation episodes, got "${option("identify", "")}"`);
}
/** --set section.key=JSON overrides, by section. */
const overrides: Record<string, Record<string, unknown>> = {};
process.argv.forEach((arg, i) => {
  if (arg !== "--set") return;
  const text = process.argv[i + 1] ?? "";
  const match = /^(\w+)\.(\w+)=(.+)$/.exec(text);
  if (match === null) throw new Error(`--set: expected section.key=JSON, got "${text}"`);
  const [, section, key, value] = match;
  overrides[section] ??= {};
  try {
    overrides[section][key] = JSON.parse(value);
  } catch {
    throw new Error(`--set ${section}.${key}: "${value}" is not a JSON value`);
  }
});
/** --model-prior none,urdf: one MBPO run per prior; default the profile's (with --set applied). */
const profilePrior = resolveHyperparameters(overrides, profile).mbpo.modelPrior;
const modelPriors = option("model-prior", profilePrior).split(",");
/** --param key=JSON overrides of the node's parameters. */
const params: Record<string, unknown> = {};
process.argv.forEach((arg, i) => {
  if (arg !== "--param") return;
  const text = process.argv[i + 1] ?? "";
  const match = /^([\w.]+)=(.+)$/.exec(text);
  if (match === null) throw new Error(`--param: expected key=JSON, got "${text}"`);
  try {
    params[match[1]] = JSON.parse(match[2]);
  } catch {
    throw new Error(`--param ${match[1]}: "${match[2]}" is not a JSON value`);
  }
});
const SUCCESS_TARGET = 0.9;

/** The actor as the control loop runs it. */
function actorPolicy(weights: ActorWeights, stochastic: boolean, rng: Rng): MlpPolicy {
  return new MlpPolicy(
    {
      sizes: weights.sizes,
      activation: weights.activation,
      weights: weights.layers.map((l) => l.weight),
      biases: weights.layers.map((l) => l.bias),
      actionSize: weights.actionSize,
      logStdMin: weights.logStdMin,
      logStdMax: weights.logStdMax,
    },
    { stochastic, rng },
  );
}

interface CurvePoint {
  realSteps: number;
  evalSuccess: number;
  evalReturn: number;
  /** Median over the evaluation episodes of the final end-effector distance to the target (m). */
  evalMedianDistance: number;
  seconds: number;
}

interface RunResult {
  algo: Algorithm;
  seed: number;
  profile: string | null;
  overrides: Record<string, Record<string, unknown>>;
  params: Record<string, unknown>;
  /** PD demonstration episodes the learner was bootstrapped with (0: none), and their transitions. */
  bootstrapEpisodes: number;
  bootstrapTransitions: number;
  /** The twin's reality-gap preset and MBPO's model prior (absent in results from before they existed: none). */
  reality?: string;
  modelPrior?: string;
  /** The arm's description (absent in results from before --urdf: urdf/arm.urdf). */
  urdf?: string;
  /** With --identify: what the excitation and the fit gave (the run learnt on `urdf`, identified). */
  identified?: Identified;
  backend: string;
  stepsTo90: number | null;
  /** A safety fault that latched on the twin and ended the run (the filter's reason), if any. */
  fault?: string;
  realSteps: number;
  wallSeconds: number;
  seconds: { model: number; rollouts: number; sac: number; episodes: number; eval: number };
  curve: CurvePoint[];
}

async function runOne(algo: Algorithm, seed: number, modelPrior: string): Promise<RunResult> {
  // The seed draws the twin's reality gap too (one arm per seed); without one it changes nothing.
  const given = withOverrides(
    defaultConfig(),
    { "sim.reality.preset": reality, seed, ...(urdf !== "" ? { urdf: resolve(urdf) } : {}), ...params },
    "--param",
  );
  const identified = identifyEpisodes > 0 ? await identifiedArm(given, seed) : undefined;
  const config =
    identified === undefined
      ? given
      : withOverrides(
          given,
          {
            urdf: identified.urdf,
            "sim.urdf": identified.truth,
            state_latency: identified.latencyPeriods,
          },
          "--identify",
        );
  const stack = createControlStack(config);
  const { task, runner } = stack;
  const learner: Learner = await createLearner({
    algo,
    urdf: stack.urdfPath,
    task: { name: task.name, params: task.params() },
    seed,
    backend,
    profile,
    hyperparameters: algo === "mbpo" ? { ...overrides, mbpo: { ...overrides.mbpo, modelPrior } } : overrides,
    control: controlSpecFromConfig(config, stack.model),
    description: descriptionOptions(config),
  });
  const label = algo === "mbpo" && modelPrior !== "none" ? `${algo}+${modelPrior}` : algo;
  let bootstrapTransitions = 0;
  if (bootstrapEpisodes > 0) {
    const demonstrations = await recordDemonstrations(config, seed);
    bootstrapTransitions = learner.addBootstrap(demonstrations).added;
    const pretrained = await learner.pretrain();
    process.stderr.write(
      `[${label} seed ${seed}] bootstrap: ${bootstrapTransitions} transitions from ${bootstrapEpisodes} PD episodes` +
        (pretrained.modelTrained ? `, model holdout MSE ${pretrained.modelHoldoutMse.toFixed(4)}` : "") +
        "\n",
    );
  }
  const episodeRng = new Rng(seed, 1);
  const actionRng = new Rng(seed, 2);
  // The same 20 evaluation episodes every time, so that curve points differ only by the policy.
  // (src/env/episodes.ts: `env serve` hands out the same set with reset {"seed": S, "eval": k}.)
  const evalSet = evaluationEpisodes(task, seed, evalEpisodes);

  const started = performance.now();
  const seconds = { model: 0, rollouts: 0, sac: 0, episodes: 0, eval: 0 };
  const curve: CurvePoint[] = [];
  let realSteps = 0;
  let stepsTo90: number | null = null;
  let nextEval = evalEvery;
  let episodeIndex = 0;
  const recorder = new RecordingPolicy(task.dof, task.goalSize);

  const evaluate = async (): Promise<void> => {
    const t = performance.now();
    const policy = actorPolicy(await learner.actorWeights(), false, actionRng);
    let successes = 0;
    let returns = 0;
    const distances: number[] = [];
    for (const [i, episode] of evalSet.entries()) {
      const result = await runner.runEpisode(i, episode, policy);
      if (result.fault !== undefined) fault ??= `${result.fault} (evaluation episode ${i})`;
      if (result.success) successes++;
      returns += result.return;
      distances.push(result.finalDistance);
    }
    distances.sort((a, b) => a - b);
    seconds.eval += (performance.now() - t) / 1000;
    const point = {
      realSteps,
      evalSuccess: successes / evalSet.length,
      evalReturn: returns / evalSet.length,
      evalMedianDistance: distances[Math.floor(distances.length / 2)],
      seconds: (performance.now() - started) / 1000,
    };
    curve.push(point);
    process.stderr.write(
      `[${label} seed ${seed}] eval at ${realSteps} real steps: success ${(100 * point.evalSuccess).toFixed(0)}%, return ${point.evalReturn.toFixed(2)}, median final distance ${(100 * point.evalMedianDistance).toFixed(1)} cm (${point.seconds.toFixed(0)} s)\n`,
    );
    if (stepsTo90 === null && point.evalSuccess >= SUCCESS_TARGET) stepsTo90 = realSteps;
  };

  // A latched fault stops the robot for good (as `train` does): the run ends there, reported.
  let fault: string | undefined;
  while (realSteps < stepCap && stepsTo90 === null && fault === undefined) {
    const t = performance.now();
    const episode = task.sampleEpisode(episodeRng);
    recorder.use(actorPolicy(await learner.actorWeights(), true, actionRng));
    const result = await runRecorded(stack, recorder, episodeIndex++, episode, (t) => {
      learner.addReal(t);
      realSteps++;
    });
    seconds.episodes += (performance.now() - t) / 1000;
    if (result.fault !== undefined) {
      fault = result.fault;
      break;
    }
    const report = await learner.update();
    seconds.model += report.seconds.model;
    seconds.rollouts += report.seconds.rollouts;
    seconds.sac += report.seconds.sac;
    const f = report.rolloutsFiltered;
    process.stderr.write(
      `[${label} seed ${seed}] ${realSteps} steps: return ${result.return.toFixed(2)} success ${result.success ? 1 : 0}` +
        (report.modelTrained
          ? ` | model nll ${report.modelHoldoutNll.toFixed(3)} mse ${report.modelHoldoutMse.toFixed(4)}`
          : "") +
        (report.rolloutBranches
          ? ` | k ${report.rolloutLength} kept ${report.rolloutsKept} cut unc ${f.uncertainty} lim ${f.jointLimits} term ${f.terminated}`
          : "") +
        (report.sacUpdates > 0
          ? ` | q ${report.qLoss.toFixed(3)} pi ${report.policyLoss.toFixed(3)} α ${report.alpha.toFixed(3)}`
          : "") +
        ` | s model ${report.seconds.model.toFixed(1)} roll ${report.seconds.rollouts.toFixed(1)} sac ${report.seconds.sac.toFixed(1)}\n`,
    );
    if (realSteps >= nextEval || realSteps >= stepCap) {
      await evaluate();
      nextEval += evalEvery;
    }
  }
  const run: RunResult = {
    algo,
    seed,
    profile: profile ?? null,
    overrides,
    params,
    bootstrapEpisodes,
    bootstrapTransitions,
    reality,
    modelPrior: algo === "mbpo" ? modelPrior : "none",
    urdf: stack.urdfPath,
    ...(identified !== undefined ? { identified } : {}),
    backend: learner.backend ?? backend,
    stepsTo90,
    realSteps,
    wallSeconds: (performance.now() - started) / 1000,
    ...(fault !== undefined ? { fault } : {}),
    seconds,
    curve,
  };
  learner.dispose();
  return run;
}

/**
 * Records bootstrapEpisodes PD episodes on the simulator with `mbpo-arm run`'s own code into a
 * transitions.mcap, and imports it as a teleop recording would be.
 */
async function recordDemonstrations(config: Config, seed: number): Promise<RealTransitionInput[]> {
  const dir = mkdtempSync(join(tmpdir(), "mbpo-bench-demonstrations-"));
  try {
    const { logger } = createLogger({ consoleLevel: "warn", file: null });
    await runCommand({
      // Seeds of their own: the demonstrations' goals are not the evaluation's.
      config: withOverrides(config, { seed: 1000 + seed }, "--bootstrap-episodes"),
      policy: (stack) => new PdPolicy(stack.model, { kp: stack.gains.resetKp, kd: stack.gains.resetKd }),
      episodes: bootstrapEpisodes,
      json: false,
      logger,
      signal: new AbortController().signal,
      outDir: dir,
    });
    const stack = createControlStack(config);
    const imported = await loadBootstrap(join(dir, TRANSITIONS_FILE), stack, { from: "joint-states" });
    return imported.transitions;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

interface Identified {
  /** The identified description (in the output folder) and the twin's own (its sim.urdf). */
  urdf: string;
  truth: string;
  /** Real steps of excitation the fit used (not counted in stepsTo90). */
  excitationSteps: number;
  /** The fitted age of the state (control periods), set as state_latency. */
  latencyPeriods: number;
  conditionNumber: number;
  /** Held-out one-period Δq̇ error, summed over the joints: URDF and identified (rad/s). */
  heldOutError: { nominal: number; identified: number };
  /** The fitted latency's error against the twin's (control periods). */
  latencyError: number;
  /**
   * Each joint's armature, viscous and Coulomb friction against the twin's, as the fit can see
   * them (commanded torque: the twin's value ÷ its torque constant): value / truth − 1, and what
   * identify said of it (identified, grouped, poorly excited, not excited).
   */
  jointParameters: { name: string; determination: string; error: number; urdfError: number }[];
}

/** Identification per seed: one excitation and fit for every run of that seed. */
const identifiedArms = new Map<number, Identified>();

/**
 * Runs identifyEpisodes excitation episodes on this seed's twin (the policy of `run --policy
 * excite --seed S`), fits them with `mbpo-arm identify`'s code, and writes the identified URDF into
 * the output folder. In this process, not through `run`: `run` holds the arm while its log file
 * opens, for as many ticks as that takes in wall-clock time, and the excitation would differ from
 * one benchmark to the next.
 */
async function identifiedArm(config: Config, seed: number): Promise<Identified> {
  const known = identifiedArms.get(seed);
  if (known !== undefined) return known;
  const stack = createControlStack(config);
  const policy = createPolicy("excite", {
    task: stack.task,
    model: stack.model,
    seed,
    pd: { kp: stack.gains.resetKp, kd: stack.gains.resetKd },
  });
  const transitions = await recordEpisodes(stack, policy, identifyEpisodes, new Rng(seed, 1));
  mkdirSync(outDir, { recursive: true });
  const out = join(outDir, `identified-seed${seed}.urdf`);
  const { logger } = createLogger({ consoleLevel: "warn", file: null });
  const report = identifyTransitions({ config, files: [], out, logger }, stack, transitions);
  const sum = (values: number[]) => values.reduce((a, b) => a + b, 0);
  const result: Identified = {
    urdf: out,
    // The twin's own description: sim.urdf where the given twin already differs from the node's.
    truth: config.sim.urdf ?? stack.urdfPath,
    excitationSteps: transitions.length,
    latencyPeriods: report.latencyPeriods ?? 0,
    conditionNumber: report.conditionNumber,
    heldOutError: {
      nominal: sum(report.heldOutVelocityRms.nominal),
      identified: sum(report.heldOutVelocityRms.identified),
    },
    latencyError: (report.latencyPeriods ?? 0) - (stack.reality?.latencyPeriods ?? 0),
    jointParameters: jointErrors(stack, report),
  };
  const worst = (kind: string) => {
    const errors = result.jointParameters
      .filter((p) => p.determination === kind)
      .map((p) => Math.abs(p.error));
    return errors.length === 0 ? "(none)" : `${(100 * Math.max(...errors)).toFixed(1)}%`;
  };
  process.stderr.write(
    `[seed ${seed}] identified from ${result.excitationSteps} excitation steps: latency ${result.latencyPeriods.toFixed(2)} periods ` +
      `(twin ${(result.latencyPeriods - result.latencyError).toFixed(2)}), held-out Δq̇ error ` +
      `${result.heldOutError.identified.toPrecision(2)} rad/s against the URDF's ${result.heldOutError.nominal.toPrecision(2)}; ` +
      `joint parameters within ${worst("identified")} of the twin's where identified, ` +
      `${worst("grouped")} where grouped → ${out}\n`,
  );
  identifiedArms.set(seed, result);
  return result;
}

/** identify's joint parameters against the twin's (see Identified.jointParameters). */
function jointErrors(stack: ControlStack, report: IdentifyReport): Identified["jointParameters"] {
  const twin = stack.reality;
  if (twin === undefined) return [];
  const fitted = new Map(report.parameters.map((p) => [p.name, p]));
  return twin.model.joints.flatMap((joint, i) =>
    (
      [
        ["armature", joint.armature],
        ["viscous", joint.damping],
        ["coulomb", joint.friction],
      ] as const
    ).flatMap(([key, value]) => {
      const p = fitted.get(`${joint.name}.${key}`);
      if (p === undefined) return [];
      const truth = value / twin.torqueConstant[i];
      return [
        {
          name: p.name,
          determination: p.determination,
          error: p.value / truth - 1,
          urdfError: p.nominal / truth - 1,
        },
      ];
    }),
  );
}

/**
 * Runs one episode and hands each transition to `sink` as the learner takes it: the state the
 * action was chosen at (the recorder's) and the one it led to (the driver's: the runner has just
 * read it). The arrays are reused from tick to tick: valid only during the call.
 */
function runRecorded(
  stack: ControlStack,
  recorder: RecordingPolicy,
  index: number,
  episode: TaskEpisode,
  sink: (t: RealTransitionInput) => void,
): Promise<EpisodeResult> {
  const nextQ = new Float64Array(stack.task.dof);
  const nextQd = new Float64Array(stack.task.dof);
  return stack.runner.runEpisode(index, episode, recorder, {
    onTransition: (tr) => {
      const next = stack.driver.readState() as JointState;
      nextQ.set(next.position);
      nextQd.set(next.velocity);
      sink({
        obs: tr.obs,
        action: tr.action,
        reward: tr.reward,
        nextObs: tr.nextObs,
        terminated: tr.terminated,
        q: recorder.observed.position,
        qd: recorder.observed.velocity,
        effort: tr.effort,
        nextQ,
        nextQd,
        goal: recorder.goal,
      });
    },
  });
}

/** Runs `count` episodes of a fixed policy and returns their transitions (copies), as a log holds them. */
async function recordEpisodes(
  stack: ControlStack,
  policy: Policy,
  count: number,
  episodeRng: Rng,
): Promise<RealTransitionInput[]> {
  const recorder = new RecordingPolicy(stack.task.dof, stack.task.goalSize, policy);
  const transitions: RealTransitionInput[] = [];
  const copy = (t: RealTransitionInput): RealTransitionInput => ({
    ...t,
    obs: Float32Array.from(t.obs),
    action: Float32Array.from(t.action),
    nextObs: Float32Array.from(t.nextObs),
    q: Float64Array.from(t.q),
    qd: Float64Array.from(t.qd),
    effort: Float64Array.from(t.effort),
    nextQ: Float64Array.from(t.nextQ),
    nextQd: Float64Array.from(t.nextQd),
    goal: Float64Array.from(t.goal),
  });
  for (let e = 0; e < count; e++) {
    const episode = stack.task.sampleEpisode(episodeRng);
    const result = await runRecorded(stack, recorder, e, episode, (t) => transitions.push(copy(t)));
    if (result.fault !== undefined) throw new Error(`--identify: the excitation faulted: ${result.fault}`);
  }
  return transitions;
}

/** The run's algorithm with its model prior, if any: mbpo, mbpo+urdf, sac. */
function runLabel(run: RunResult): string {
  return run.algo === "mbpo" && (run.modelPrior ?? "none") !== "none"
    ? `${run.algo}+${run.modelPrior}`
    : run.algo;
}

/** Eval success against real steps, one polyline per run. */
function svg(runs: RunResult[]): string {
  const width = 640;
  const height = 360;
  const pad = 48;
  const x = (steps: number) => pad + ((width - 2 * pad) * steps) / stepCap;
  const y = (success: number) => height - pad - (height - 2 * pad) * success;
  const colours: Record<string, string> = { mbpo: "#1f77b4", "mbpo+urdf": "#2ca02c", sac: "#d62728" };
  const lines = runs.map((run) => {
    const points = [{ realSteps: 0, evalSuccess: 0 }, ...run.curve]
      .map((p) => `${x(p.realSteps).toFixed(1)},${y(p.evalSuccess).toFixed(1)}`)
      .join(" ");
    // Runs that started from a bootstrap are dashed.
    const boot = (run.bootstrapEpisodes ?? 0) > 0;
    const dash = boot ? ' stroke-dasharray="6 3"' : "";
    const name = runLabel(run);
    const title = `${name} seed ${run.seed}${boot ? `, bootstrap ${run.bootstrapEpisodes} PD episodes` : ""}`;
    return `<polyline fill="none" stroke="${colours[name] ?? "#555"}" stroke-width="1.5"${dash} points="${points}"><title>${title}</title></polyline>`;
  });
  const ticks = [0, 0.25, 0.5, 0.75, 1].map(
    (s) => `<text x="${pad - 6}" y="${y(s) + 4}" text-anchor="end" font-size="11">${s * 100}%</text>`,
  );
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" font-family="sans-serif">`,
    "<title>reach: evaluation success against real steps, MBPO and SAC</title>",
    `<rect width="100%" height="100%" fill="white"/>`,
    `<line x1="${pad}" y1="${y(0)}" x2="${width - pad}" y2="${y(0)}" stroke="black"/>`,
    `<line x1="${pad}" y1="${y(0)}" x2="${pad}" y2="${y(1)}" stroke="black"/>`,
    `<line x1="${pad}" y1="${y(SUCCESS_TARGET)}" x2="${width - pad}" y2="${y(SUCCESS_TARGET)}" stroke="#999" stroke-dasharray="4 4"/>`,
    ...ticks,
    `<text x="${width / 2}" y="${height - 10}" text-anchor="middle" font-size="12">real steps (cap ${stepCap})</text>`,
    `<text x="${pad}" y="20" font-size="12">reach: eval success (${evalEpisodes} episodes, mean action); blue MBPO (dashed: bootstrapped), green MBPO on the URDF prior, red SAC${profile ? `; profile ${profile}` : ""}</text>`,
    ...lines,
    "</svg>",
  ].join("\n");
}

/** Writes results.json, curves.csv and curves.svg for the runs so far (after every run: a long
 *  benchmark stopped early keeps what it finished). */
function writeResults(runs: RunResult[]): void {
  mkdirSync(outDir, { recursive: true });
  writeFileSync(join(outDir, "results.json"), `${JSON.stringify(runs, null, 2)}\n`);
  writeFileSync(
    join(outDir, "curves.csv"),
    `algo,seed,real_steps,eval_success,eval_return,eval_median_distance,seconds\n${runs
      .flatMap((r) =>
        r.curve.map(
          (p) =>
            `${runLabel(r)},${r.seed},${p.realSteps},${p.evalSuccess},${p.evalReturn},${p.evalMedianDistance},${p.seconds.toFixed(1)}`,
        ),
      )
      .join("\n")}\n`,
  );
  writeFileSync(join(outDir, "curves.svg"), svg(runs));
}

const runs: RunResult[] = [];
const merge = process.argv.includes("--merge") ? option("merge", "") : undefined;
if (merge !== undefined) {
  // Runs made by separate processes (e.g. one per core): their results.json files, combined.
  for (const dir of merge.split(",").filter((d) => d !== "")) {
    const path = join(resolve(dir), "results.json");
    try {
      runs.push(...(JSON.parse(readFileSync(path, "utf8")) as RunResult[]));
    } catch (error) {
      throw new Error(`--merge: cannot read ${path}: ${(error as Error).message.split("\n")[0]}`);
    }
  }
  writeResults(runs);
} else {
  for (const seed of seeds) {
    for (const algo of algos) {
      for (const modelPrior of algo === "mbpo" ? modelPriors : ["none"]) {
        runs.push(await runOne(algo, seed, modelPrior));
        writeResults(runs);
      }
    }
  }
}

const summary = runs.map((r) => ({
  algo: runLabel(r),
  reality: r.reality ?? "none",
  seed: r.seed,
  bootstrapEpisodes: r.bootstrapEpisodes,
  excitationSteps: r.identified?.excitationSteps,
  stepsTo90: r.stepsTo90,
  fault: r.fault,
  realSteps: r.realSteps,
  finalEvalSuccess: r.curve.at(-1)?.evalSuccess ?? null,
  wallSeconds: Math.round(r.wallSeconds),
  seconds: Object.fromEntries(Object.entries(r.seconds).map(([k, v]) => [k, Math.round(v)])),
}));
if (json) {
  console.log(JSON.stringify({ profile: profile ?? null, stepCap, evalEpisodes, runs: summary }, null, 2));
} else {
  console.log(
    `reach, ${evalEpisodes} eval episodes (mean action), target ${SUCCESS_TARGET * 100}%, cap ${stepCap} real steps, profile ${[...new Set(runs.map((r) => r.profile ?? "defaults"))].join(", ")}`,
  );
  for (const s of summary) {
    console.log(
      `${s.algo.padEnd(4)} seed ${s.seed}${s.reality !== "none" ? ` (reality ${s.reality})` : ""}${(s.bootstrapEpisodes ?? 0) > 0 ? ` (bootstrap: ${s.bootstrapEpisodes} PD episodes)` : ""}${s.excitationSteps !== undefined ? ` (identified URDF, after ${s.excitationSteps} excitation steps)` : ""}: ${s.fault !== undefined ? `safety fault after ${s.realSteps} steps (${s.fault}); ` : ""}${s.stepsTo90 === null ? `not reached in ${s.realSteps} steps (final ${((s.finalEvalSuccess ?? 0) * 100).toFixed(0)}%)` : `${s.stepsTo90} real steps to 90%`}, ${s.wallSeconds} s wall (model ${s.seconds.model}, rollouts ${s.seconds.rollouts}, sac ${s.seconds.sac}, episodes ${s.seconds.episodes}, eval ${s.seconds.eval})`,
    );
  }
  for (const seed of new Set(summary.map((r) => r.seed))) {
    // MBPO against SAC without bootstraps, seed by seed.
    const plain = summary.filter((r) => r.seed === seed && !(r.bootstrapEpisodes > 0));
    const m = plain.find((r) => r.algo === "mbpo");
    const s = plain.find((r) => r.algo === "sac");
    if (m?.stepsTo90 && s?.stepsTo90) {
      console.log(
        `seed ${seed}: SAC needed ${(s.stepsTo90 / m.stepsTo90).toFixed(1)}× the real steps of MBPO`,
      );
    } else if (m?.stepsTo90 && s !== undefined && s.fault === undefined) {
      console.log(
        `seed ${seed}: SAC had not reached 90% after ${s.realSteps} real steps: at least ${(s.realSteps / m.stepsTo90).toFixed(1)}× MBPO's`,
      );
    }
    const u = plain.find((r) => r.algo === "mbpo+urdf");
    if (m?.stepsTo90 && u?.stepsTo90) {
      console.log(
        `seed ${seed}: MBPO on the URDF prior needed ${(u.stepsTo90 / m.stepsTo90).toFixed(2)}× the real steps of MBPO without it`,
      );
    }
  }
  console.log(`curves: ${join(outDir, "curves.svg")}`);
}
