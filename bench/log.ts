/**
 * The transition log's two costs, printed as JSON:
 *
 * - `import`: bootstrap import speed on a generated 100,000-message rosbag2-style teleop bag
 *   (50,000 /joint_states with an extra gripper joint in another order, 50,000 effort commands,
 *   zstd chunks): loadBootstrap() from file to RealTransitionInput[], in messages per second
 *   (target: above 200,000), beside the read-and-decode part alone.
 * - `tick`: what logging adds to the control loop, from runs of the same episodes on the simulator
 *   with and without the log, alternated in one process: the recorder's work per tick (state copy
 *   in the policy wrapper plus the row copy in onTransition), the hand-off per episode (postMessage
 *   of the episode's buffers), and the tick's compute time (ControlLoop.timing) with and without.
 *
 * Best of five imports (wall and CPU time) and median of three runs each way, with the machine's
 * load average printed beside them: on a shared machine the wall-clock figures move with the load.
 *
 *   npx tsc -p . && node dist/bench/log.js [--messages N] [--episodes N]
 */
import { mkdtempSync, rmSync, statSync } from "node:fs";
import { cpus, loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { runEpisodes } from "../src/app/episodes.js";
import { openTransitionLog } from "../src/app/transitions.js";
import { defaultConfig } from "../src/config/config.js";
import { createPolicy } from "../src/control/policies/index.js";
import { type ControlStack, createControlStack } from "../src/control/stack.js";
import { loadBootstrap } from "../src/data/bootstrap.js";
import { FLOAT64_MULTI_ARRAY, JOINT_STATE } from "../src/data/definitions.js";
import { readRos2Mcap } from "../src/data/mcap-reader.js";
import { loadZstd, Ros2McapWriter } from "../src/data/mcap-writer.js";
import { recordEpisodes, type TransitionLog } from "../src/data/transition-log.js";

function flag(name: string, fallback: number): number {
  const i = process.argv.indexOf(name);
  return i > 0 ? Number(process.argv[i + 1]) : fallback;
}
const MESSAGES = flag("--messages", 100_000);
const EPISODES = flag("--episodes", 30);
const dir = mkdtempSync(join(tmpdir(), "mbpo-bench-log-"));

/** A teleop-like bag: joint states and commands at 50 Hz, stamps on the tick, received 1 ms later. */
async function generateBag(file: string, stack: ControlStack, messages: number): Promise<void> {
  await loadZstd();
  const writer = new Ros2McapWriter(file, { library: "mbpo-arm bench" });
  writer.addTopic("/joint_states", JOINT_STATE);
  writer.addTopic("/effort_controller/commands", FLOAT64_MULTI_ARRAY);
  const names = ["joint3", "gripper_joint", "joint1", "joint4", "joint2"];
  const g = new Float64Array(stack.model.dof);
  const q = new Float64Array(stack.model.dof);
  const home = [0, -0.6, 0.3, 0.9];
  const ticks = messages / 2;
  for (let k = 0; k < ticks; k++) {
    const t = k * 0.02;
    for (let j = 0; j < q.length; j++) q[j] = home[j] + 0.3 * Math.sin((1.3 + 0.4 * j) * t + j);
    stack.dynamics.gravity(q, g);
    const stamp = 1_700_000_000_000_000_000n + BigInt(k) * 20_000_000n;
    const js = (j: number) => (j < 0 ? 0.01 : q[j]);
    const order = [2, -1, 0, 3, 1];
    writer.write("/joint_states", stamp + 1_000_000n, {
      header: {
        stamp: { sec: Number(stamp / 1_000_000_000n), nanosec: Number(stamp % 1_000_000_000n) },
        frame_id: "",
      },
      name: names,
      position: order.map(js),
      velocity: order.map((j) => (j < 0 ? 0 : 0.3 * Math.cos(t + j))),
      effort: order.map((j) => (j < 0 ? 0 : g[j])),
    });
    writer.write("/effort_controller/commands", stamp + 1_000_000n, {
      layout: { dim: [], data_offset: 0 },
      data: Float64Array.from(g, (gj, j) => gj + 0.3 * Math.sin(0.7 * t + j)),
    });
  }
  writer.close();
}

async function importSpeed() {
  const stack = createControlStack(defaultConfig());
  const file = join(dir, "teleop.mcap");
  await generateBag(file, stack, MESSAGES);
  // Warm-up on the same file (JIT, WebAssembly), then the best of three of each.
  await loadBootstrap(file, stack);
  let decodeBest = Number.POSITIVE_INFINITY;
  let importBest = Number.POSITIVE_INFINITY;
  let importCpuBest = Number.POSITIVE_INFINITY;
  let transitions = 0;
  for (let round = 0; round < 5; round++) {
    let t0 = performance.now();
    let decoded = 0;
    await readRos2Mcap(file, {
      onMessage: () => {
        decoded++;
      },
    });
    decodeBest = Math.min(decodeBest, (performance.now() - t0) / 1000);
    if (decoded !== MESSAGES) throw new Error(`decoded ${decoded} of ${MESSAGES}`);
    t0 = performance.now();
    const cpu0 = process.cpuUsage();
    const result = await loadBootstrap(file, stack);
    importBest = Math.min(importBest, (performance.now() - t0) / 1000);
    const cpu = process.cpuUsage(cpu0);
    importCpuBest = Math.min(importCpuBest, (cpu.user + cpu.system) / 1e6);
    transitions = result.transitions.length;
  }
  return {
    messages: MESSAGES,
    fileBytes: statSync(file).size,
    transitions,
    readAndDecodeSeconds: decodeBest,
    readAndDecodeMessagesPerSecond: Math.round(MESSAGES / decodeBest),
    bootstrapSeconds: importBest,
    bootstrapMessagesPerSecond: Math.round(MESSAGES / importBest),
    /** CPU time of the process (all its threads) for the best import: less sensitive to a busy machine. */
    bootstrapCpuSeconds: importCpuBest,
    bootstrapMessagesPerCpuSecond: Math.round(MESSAGES / importCpuBest),
    targetMessagesPerSecond: 200_000,
  };
}

function quantiles(values: number[]) {
  const s = [...values].sort((a, b) => a - b);
  const at = (q: number) => s[Math.min(s.length - 1, Math.floor(q * (s.length - 1)))];
  return { median: at(0.5), p99: at(0.99), max: s[s.length - 1] };
}

/** One run of EPISODES episodes; with `log`, the run writes a transition log as `run` does. */
async function runOnce(withLog: boolean) {
  const stack = createControlStack(defaultConfig());
  let policy = createPolicy("pd", {
    task: stack.task,
    model: stack.model,
    seed: 1,
    pd: { kp: stack.gains.resetKp, kd: stack.gains.resetKd },
  });
  const recordNs: number[] = [];
  const handOffNs: number[] = [];
  let log: TransitionLog | undefined;
  let onTransition:
    | ((t: Parameters<ReturnType<typeof recordEpisodes>["onTransition"]>[0]) => void)
    | undefined;
  let onEpisode: ((r: Parameters<ReturnType<typeof recordEpisodes>["onEpisode"]>[0]) => void) | undefined;
  if (withLog) {
    log = await openTransitionLog(stack, join(dir, `run-${Date.now()}`, "transitions.mcap"));
    const recorder = recordEpisodes(log, stack.driver, policy, stack.model.dof);
    policy = recorder.policy;
    onTransition = (t) => {
      const t0 = process.hrtime.bigint();
      recorder.onTransition(t);
      recordNs.push(Number(process.hrtime.bigint() - t0));
    };
    onEpisode = (r) => {
      const t0 = process.hrtime.bigint();
      recorder.onEpisode(r);
      handOffNs.push(Number(process.hrtime.bigint() - t0));
    };
  }
  await stack.driver.start();
  const started = performance.now();
  const summary = await runEpisodes(stack, policy, { episodes: EPISODES, seed: 1, onTransition, onEpisode });
  const seconds = (performance.now() - started) / 1000;
  await stack.driver.stop();
  const stats = log !== undefined ? await log.close() : undefined;
  return { summary, seconds, recordNs, handOffNs, stats };
}

async function tickCost() {
  await runOnce(true); // warm-up: JIT, worker start-up, WebAssembly
  await runOnce(false);
  const withLog: Awaited<ReturnType<typeof runOnce>>[] = [];
  const without: Awaited<ReturnType<typeof runOnce>>[] = [];
  for (let round = 0; round < 3; round++) {
    withLog.push(await runOnce(true));
    without.push(await runOnce(false));
  }
  const record = quantiles(withLog.flatMap((r) => r.recordNs));
  const handOff = quantiles(withLog.flatMap((r) => r.handOffNs));
  const tickWith = quantiles(withLog.map((r) => r.summary.tick.medianUs));
  const tickWithout = quantiles(without.map((r) => r.summary.tick.medianUs));
  const secondsWith = quantiles(withLog.map((r) => r.seconds));
  const secondsWithout = quantiles(without.map((r) => r.seconds));
  return {
    episodesPerRun: EPISODES,
    runsEach: 3,
    recordPerTickNs: record,
    handOffPerEpisodeUs: { median: handOff.median / 1000, p99: handOff.p99 / 1000, max: handOff.max / 1000 },
    tickComputeMedianUs: { withLog: tickWith.median, withoutLog: tickWithout.median },
    tickComputeP99Us: {
      withLog: quantiles(withLog.map((r) => r.summary.tick.p99Us)).median,
      withoutLog: quantiles(without.map((r) => r.summary.tick.p99Us)).median,
    },
    runSeconds: { withLog: secondsWith.median, withoutLog: secondsWithout.median },
    runTimeRatioWithOverWithout: secondsWith.median / secondsWithout.median,
    logBytesPerRun: withLog[0].stats?.bytes,
    logMessagesPerRun: withLog[0].stats?.messages,
  };
}

try {
  const result = {
    import: await importSpeed(),
    tick: await tickCost(),
    machine: { cpus: cpus().length, loadAverage1m: loadavg()[0] },
  };
  process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
} finally {
  rmSync(dir, { recursive: true, force: true });
}
