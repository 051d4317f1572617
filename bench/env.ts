/**
 * The in-process reference for bench/env.py: EpisodeRunner.step on the simulator, exactly what
 * one `env serve` step runs (the client's action, gravity compensation, safety filter, one control
 * period of physics, the observation and reward), without the protocol around it. Prints one JSON
 * object: steps per second over --steps steps of one long episode with random actions, after a
 * warm-up.
 *
 *   npx tsc -p . && node dist/bench/env.js [--steps N]
 */
import { defaultConfig, withOverrides } from "../src/config/config.js";
import type { Policy } from "../src/control/policy.js";
import { createControlStack } from "../src/control/stack.js";
import { Rng } from "../src/util/rng.js";

const stepsArg = process.argv.indexOf("--steps");
const STEPS = stepsArg > 0 ? Number(process.argv[stepsArg + 1]) : 20_000;
const WARMUP = 2_000;

const stack = createControlStack(withOverrides(defaultConfig(), { "task.episode_steps": 10_000_000 }));
const rng = new Rng(1, 2);
/** Uniform random actions, as a learner exploring sends. */
const policy: Policy = {
  name: "bench",
  reset() {},
  act(_obs, _ctx, out) {
    for (let i = 0; i < out.length; i++) out[i] = rng.range(-1, 1);
  },
};

await stack.driver.start();
await stack.runner.beginEpisode(0, stack.task.sampleEpisode(new Rng(1, 1)));
for (let i = 0; i < WARMUP; i++) await stack.runner.step(policy);
const started = performance.now();
for (let i = 0; i < STEPS; i++) await stack.runner.step(policy);
const seconds = (performance.now() - started) / 1000;
await stack.driver.stop();
process.stdout.write(
  `${JSON.stringify({ steps: STEPS, seconds, stepsPerSecond: STEPS / seconds, usPerStep: (seconds / STEPS) * 1e6 })}\n`,
);
