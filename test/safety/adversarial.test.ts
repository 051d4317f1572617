/**
 * The adversarial suite, a fixed-seed subset of bench/safety-adversarial (which runs thousands of
 * episodes per variant): every attacker of test/safety/adversary.ts, on the nominal twin and on
 * twins 30% lighter, 30% heavier and unevenly off, with the default settings and with the soft
 * limits and the rate limit off (the dynamic limits alone). Every physics step is checked: 0 ticks
 * past a hard velocity limit, 0 past or touching a hard position limit, no fault latched. And the
 * harness is not vacuous: without the dynamic limits the same attackers do get past.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { ATTACKERS, loadArm, MODEL_VARIANTS, runAdversarialEpisode } from "./adversary.js";

const arm = loadArm();
const BARE = { use_soft_limits: false, torque_rate_limit: 1e9 };

for (const [settingsName, safety, episodes] of [
  ["default settings", {}, 4],
  ["soft limits and rate limit off", BARE, 2],
] as const) {
  test(`adversarial, ${settingsName}: no attacker drives a joint past a hard limit, on any twin`, (t) => {
    let worst = 0;
    let count = 0;
    for (const model of MODEL_VARIANTS) {
      for (const attacker of ATTACKERS) {
        for (let e = 0; e < episodes; e++) {
          const seed = 7_000 + 100 * ATTACKERS.indexOf(attacker) + e;
          const o = runAdversarialEpisode(arm, attacker, seed, { model, ticks: 100, safety });
          const what = `${attacker} on the ${model} twin, seed ${seed}`;
          assert.equal(
            o.velocityTicks,
            0,
            `${what}: ${o.velocityTicks} ticks past a velocity limit (worst ${o.worstVelocityRatio.toFixed(3)}×)`,
          );
          assert.equal(o.positionTicks, 0, `${what}: ${o.positionTicks} ticks at or past a position limit`);
          assert.equal(o.fault, undefined, `${what}: ${o.fault}`);
          worst = Math.max(worst, o.worstVelocityRatio);
          count++;
        }
      }
    }
    t.diagnostic(`${count} episodes, worst |q̇|/limit ${worst.toFixed(3)}`);
  });
}

test("adversarial: without the dynamic limits the same attackers get past the velocity limits", () => {
  let violations = 0;
  for (const attacker of ["bang-bang", "lookahead"] as const) {
    for (let e = 0; e < 4; e++) {
      const o = runAdversarialEpisode(arm, attacker, 7_000 + e, {
        model: "nominal",
        ticks: 100,
        safety: { dynamic_limits: false },
      });
      violations += o.velocityTicks;
    }
  }
  assert.ok(violations > 0, "the attackers are strong enough to matter");
});
