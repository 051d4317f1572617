/** The one line `train` (and the node's learn mode) ends with. */
import assert from "node:assert/strict";
import { it } from "node:test";
import { formatTrainSummary } from "../../src/cli/train-command.js";
import type { TrainSummary } from "../../src/train/run-dir.js";

const timing = { count: 10, medianUs: 100, p99Us: 900, maxUs: 1500 };
const summary: TrainSummary = {
  algo: "mbpo",
  task: "reach",
  seed: 1,
  backend: "wasm",
  stepsTarget: 2000,
  realSteps: 2000,
  episodes: 20,
  evals: 4,
  finalEvalSuccess: 1,
  bestEvalSuccess: 1,
  stepsTo90: 1500,
  wallSeconds: 100,
  seconds: { episodes: 40, update: 60, model: 10, rollouts: 5, sac: 45, eval: 5 },
  episodeTicks: timing,
  holdTicks: timing,
  holdLateness: { ...timing, p99Us: 3000 },
  completed: true,
  interrupted: false,
  checkpoint: "/runs/a/checkpoint",
  bootstrap: null,
} as unknown as TrainSummary;

it("names the run directory it is given and the steps against their target", () => {
  const line = formatTrainSummary(summary, "/runs/a");
  assert.match(line, /^train done: mbpo on reach, 2000\/2000 real steps in 20 episodes, 100\.0 s;/);
  assert.match(line, /90% at 1500 steps;.* backend wasm; run in \/runs\/a$/);
});

it("a run without a target (the node's steps:=0, until stopped) is not 'N/0 steps'", () => {
  const line = formatTrainSummary(
    { ...summary, stepsTarget: 0, realSteps: 200, completed: false },
    "/runs/a",
  );
  assert.match(line, /^train interrupted: mbpo on reach, 200 \(no target\) real steps in 20 episodes/);
});
