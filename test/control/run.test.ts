/**
 * The control stack end to end on the simulator: what the robot is sent always stays within limits,
 * and the PD policy reaches its targets.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { runEpisodes } from "../../src/app/episodes.js";
import { defaultConfig, withOverrides } from "../../src/config/config.js";
import { createPolicy } from "../../src/control/policies/index.js";
import { createControlStack } from "../../src/control/stack.js";

/** Wraps the driver's sendEffort so that every command the robot receives is checked. */
function recordSent(stack: ReturnType<typeof createControlStack>) {
  const seen = { ticks: 0, worstFraction: 0, nonFinite: 0 };
  const send = stack.driver.sendEffort.bind(stack.driver);
  const limits = stack.model.joints.map((j) => j.effort * stack.config.safety.effort_scale);
  stack.driver.sendEffort = (effort: Float64Array) => {
    seen.ticks++;
    effort.forEach((tau, i) => {
      if (!Number.isFinite(tau)) seen.nonFinite++;
      seen.worstFraction = Math.max(seen.worstFraction, Math.abs(tau) / limits[i]);
    });
    send(effort);
  };
  return seen;
}

describe("run on the simulator", () => {
  it("a random policy for 20 episodes never sends an effort beyond its limit", async () => {
    const config = withOverrides(defaultConfig(), { "safety.effort_scale": 0.8, seed: 3 });
    const stack = createControlStack(config);
    const policy = createPolicy("random", { task: stack.task, model: stack.model, seed: 3 });
    const seen = recordSent(stack);
    await stack.driver.start();
    const summary = await runEpisodes(stack, policy, { episodes: 20, seed: 3 });
    await stack.driver.stop();
    assert.equal(summary.episodes, 20);
    assert.equal(summary.fault, undefined);
    assert.ok(seen.ticks >= 20 * stack.task.episodeSteps, `only ${seen.ticks} commands sent`);
    assert.equal(seen.nonFinite, 0);
    assert.ok(seen.worstFraction <= 1 + 1e-12, `an effort reached ${seen.worstFraction} of its limit`);
    // The random policy asks for more than the filter allows now and then: the limit was exercised.
    assert.ok(
      summary.peakEffortFraction.some((p) => p > 0.3),
      `peak ${summary.peakEffortFraction}`,
    );
    for (const p of summary.peakEffortFraction) assert.ok(p <= 0.8 + 1e-12);
  });

  it("the PD policy reaches its target in most episodes, and the same seed gives the same run", async () => {
    const run = async () => {
      const stack = createControlStack(withOverrides(defaultConfig(), { seed: 11 }));
      const policy = createPolicy("pd", { task: stack.task, model: stack.model, seed: 11 });
      await stack.driver.start();
      const results: number[] = [];
      const summary = await runEpisodes(stack, policy, {
        episodes: 10,
        seed: 11,
        onEpisode: (r) => results.push(r.finalDistance),
      });
      await stack.driver.stop();
      return { summary, results };
    };
    const a = await run();
    assert.ok(a.summary.successRate >= 0.9, `PD success ${a.summary.successRate}, distances ${a.results}`);
    assert.equal(a.summary.fault, undefined);
    const b = await run();
    assert.deepEqual(b.results, a.results);
  });

  it("stops at once when aborted, with the driver stopped cleanly", async () => {
    const stack = createControlStack(defaultConfig());
    const policy = createPolicy("zero", { task: stack.task, model: stack.model, seed: 0 });
    const controller = new AbortController();
    await stack.driver.start();
    const summary = await runEpisodes(stack, policy, {
      episodes: 5,
      seed: 0,
      signal: controller.signal,
      onEpisode: () => controller.abort(),
    });
    await stack.driver.stop();
    assert.equal(summary.episodes, 1);
    assert.equal(summary.aborted, true);
  });
});
