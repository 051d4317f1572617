/**
 * The servo-bus emulator as its own process (for the benchmark: servos and driver then do not
 * share an event loop, as on a real bus).
 *
 *   node dist/test/drivers/dynamixel/emulator-main.js --port <servo end of a pty pair> [--calibration FILE]
 *
 * Prints "ready" once it listens; exits on SIGTERM or when stdin closes.
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
await emulator.listen(option("port"));
process.stdout.write("ready\n");
const quit = async () => {
  await emulator.close();
  process.exit(0);
};
process.on("SIGTERM", quit);
process.stdin.on("end", quit);
process.stdin.resume();
