/**
 * Cost of one control tick on the simulated arm, as the learner's policy will run it: observation,
 * a SAC-sized actor (17-256-256-8, ReLU, stochastic), gravity compensation (RNEA), the safety
 * filter and the driver send. Physics (the driver's advance between ticks) is outside the timed
 * region, as it is on a real arm.
 *
 * Two figures, both printed as JSON:
 * - `stepped`: ControlLoop.timing over many episodes run flat out (compute time of tick(),
 *   median / p99 / max, µs), and the policy's own share, timed alone on the same observations;
 * - `realtime`: a few seconds of the twin paced to wall-clock time at 50 Hz: how late each tick
 *   woke (median / p99 / max, µs) — the jitter a real arm would see from this process.
 *
 *   npx tsc -p . && node dist/bench/tick.js [--episodes N] [--realtime-seconds S]
 */
import { runEpisodes } from "../src/app/episodes.js";
import { defaultConfig, withOverrides } from "../src/config/config.js";
import { MlpPolicy } from "../src/control/policies/mlp.js";
import { createControlStack } from "../src/control/stack.js";
import { Rng } from "../src/util/rng.js";

function flag(name: string, fallback: number): number {
  const i = process.argv.indexOf(name);
  return i > 0 ? Number(process.argv[i + 1]) : fallback;
}
const EPISODES = flag("--episodes", 40);
const REALTIME_SECONDS = flag("--realtime-seconds", 5);
const HIDDEN = 256;

/** A SAC-shaped actor with Glorot-uniform random weights: the cost does not depend on the values. */
function randomActor(observationSize: number, actionSize: number, rng: Rng): MlpPolicy {
  const sizes = [observationSize, HIDDEN, HIDDEN, 2 * actionSize];
  const weights: Float32Array[] = [];
  const biases: Float32Array[] = [];
  for (let l = 0; l + 1 < sizes.length; l++) {
    const bound = Math.sqrt(6 / (sizes[l] + sizes[l + 1]));
    weights.push(Float32Array.from({ length: sizes[l] * sizes[l + 1] }, () => rng.range(-bound, bound)));
    biases.push(new Float32Array(sizes[l + 1]));
  }
  return new MlpPolicy(
    { sizes, activation: "relu", weights, biases, actionSize },
    { stochastic: true, rng, name: "actor-256x256" },
  );
}

async function measure(realtime: boolean, episodes: number) {
  const config = withOverrides(defaultConfig(), { "sim.realtime": realtime, seed: 5 });
  const stack = createControlStack(config);
  const policy = randomActor(stack.task.observationSize, stack.task.actionSize, new Rng(5));
  await stack.driver.start();
  // Warm-up episode (JIT), then measure from a clean timer.
  await runEpisodes(stack, policy, { episodes: 1, seed: 4 });
  stack.loop.timing.clear();
  let policyUs: number[] = [];
  const obs = new Float32Array(stack.task.observationSize);
  const action = new Float32Array(stack.task.actionSize);
  const summary = await runEpisodes(stack, policy, {
    episodes,
    seed: 5,
    onTransition: (t) => {
      // The policy alone, on the observation it just acted on (second call, same cost).
      if (policyUs.length < 20_000) {
        obs.set(t.obs);
        const started = process.hrtime.bigint();
        policy.act(
          obs,
          {
            state: stack.driver.readState()!,
            torqueScale: stack.runner.torqueScale,
            actionDamping: Float64Array.from(stack.gains.actionDamping),
          },
          action,
        );
        policyUs.push(Number(process.hrtime.bigint() - started) / 1000);
      }
    },
  });
  await stack.driver.stop();
  policyUs = policyUs.sort((a, b) => a - b);
  const q = (p: number) => policyUs[Math.min(policyUs.length - 1, Math.floor(p * policyUs.length))];
  return {
    ticks: stack.loop.ticks,
    episodes: summary.episodes,
    tick: stack.loop.timing.summary(),
    policyOnly: { medianUs: q(0.5), p99Us: q(0.99) },
    fault: summary.fault,
  };
}

const stepped = await measure(false, EPISODES);
const realtimeEpisodes = Math.max(1, Math.round((REALTIME_SECONDS * 50) / 100));
const realtime = await measure(true, realtimeEpisodes);
const round = (x: number) => Math.round(x * 10) / 10;
process.stdout.write(
  `${JSON.stringify(
    {
      policy: "MLP 17-256-256-8, ReLU, stochastic (SAC actor shape)",
      stepped: {
        episodes: stepped.episodes,
        tickComputeUs: {
          median: round(stepped.tick.compute.medianUs),
          p99: round(stepped.tick.compute.p99Us),
          max: round(stepped.tick.compute.maxUs),
        },
        policyOnlyUs: { median: round(stepped.policyOnly.medianUs), p99: round(stepped.policyOnly.p99Us) },
      },
      realtime50Hz: {
        episodes: realtime.episodes,
        tickComputeUs: {
          median: round(realtime.tick.compute.medianUs),
          p99: round(realtime.tick.compute.p99Us),
        },
        wakeLatenessUs: {
          median: round(realtime.tick.lateness.medianUs),
          p99: round(realtime.tick.lateness.p99Us),
          max: round(realtime.tick.lateness.maxUs),
        },
      },
      faults: [stepped.fault, realtime.fault].filter((f) => f !== undefined),
    },
    null,
    2,
  )}\n`,
);
