/**
 * The servo-bus emulator as its own process (for the benchmark: servos and driver then do not
 * share an event loop, as on a real bus).
 *
 *   node dist/test/drivers/dynamixel/emulator-main.js --port <servo end of a pty pair> [--calibration FILE]
 *     [--drop F] [--corrupt F] [--garbage F] [--seed N]
 *
 * --drop, --corrupt and --garbage are the fractions of replies dropped, damaged and sent behind line
 * noise (seeded by --seed). Prints "ready" once it listens; on SIGTERM or when stdin closes, prints
 * one JSON line of counts ({"replies":…,"injected":{"dropped":…,"corrupted":…,"garbage":…}}) and exits.
 */
import { loadCalibration } from "../../../src/drivers/dynamixel/calibration.js";
import { loadUrdf } from "../../../src/robot/urdf.js";
import { packageRoot } from "../../../src/util/paths.js";
import { ServoBusEmulator } from "./emulator.js";

function option(name: string, fallback?: string): string {
  const i = process.argv.indexOf(`--${name}`);
  const value = i >= 0 ? process.argv[i + 1] : fallback;
  if (value === undefined) throw new Error(`emulator: --${name} is required`);
  return value;
}

const model = loadUrdf(`${packageRoot()}/urdf/arm.urdf`);
const calibration = loadCalibration(
  option("calibration", `${packageRoot()}/calibration/arm.yaml`),
  model.joints.map((j) => j.name),
);
const emulator = new ServoBusEmulator(model, calibration.joints);
const fraction = (name: string) => {
  const value = Number(option(name, "0"));
  if (!(value >= 0 && value <= 1)) throw new Error(`emulator: --${name} must be a fraction 0–1`);
  return value;
};
emulator.setLineNoise({
  drop: fraction("drop"),
  corrupt: fraction("corrupt"),
  garbage: fraction("garbage"),
  seed: Number(option("seed", "1")),
});
await emulator.listen(option("port"));
process.stdout.write("ready\n");
const quit = async () => {
  await emulator.close();
  process.stdout.write(
    `${JSON.stringify({ replies: emulator.counts.replies, injected: emulator.injected })}\n`,
    () => process.exit(0),
  );
};
process.on("SIGTERM", quit);
process.stdin.on("end", quit);
process.stdin.resume();
