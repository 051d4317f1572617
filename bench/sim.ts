/**
 * Physics steps per second of the digital twin beside MuJoCo's mj_step on the same URDF (see
 * src/cli/bench-sim-command.ts for what is timed and how). Prints one JSON object.
 *
 *   node dist/bench/sim.js [--urdf FILE] [--steps N] [--no-mujoco]
 *
 * To see where our step spends its time: node --cpu-prof dist/bench/sim.js --no-mujoco
 */
import { resolve } from "node:path";
import { runSimBenchmark } from "../src/cli/bench-sim-command.js";
import { packageRoot } from "../src/util/paths.js";

function option(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && i + 1 < process.argv.length ? process.argv[i + 1] : fallback;
}

const urdf = resolve(option("urdf", resolve(packageRoot(), "urdf/arm.urdf")));
const steps = Number(option("steps", "200000"));
const result = await runSimBenchmark({ urdf, steps, mujoco: !process.argv.includes("--no-mujoco") });
console.log(JSON.stringify(result, null, 2));
