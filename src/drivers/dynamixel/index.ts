/** The Dynamixel servo-bus driver: Protocol 2.0 over serialport, current (torque) mode. */
import type { RobotModel } from "../../robot/types.js";
import { resolveDataPath } from "../../util/paths.js";
import { loadCalibration } from "./calibration.js";
import { DynamixelDriver } from "./driver.js";

export { type Calibration, CalibrationError, type JointCalibration, loadCalibration } from "./calibration.js";
export { DEFAULT_BAUD, DynamixelDriver, type DynamixelDriverOptions } from "./driver.js";

/** The driver as the config describes it: `dynamixel.port`, `.baud` and `.calibration`. */
export function createDynamixelDriver(
  settings: { port: string; baud: number; calibration: string },
  model: RobotModel,
): DynamixelDriver {
  const jointNames = model.joints.map((j) => j.name);
  const calibration = loadCalibration(resolveDataPath(settings.calibration), jointNames);
  return new DynamixelDriver({ model, calibration, port: settings.port, baud: settings.baud });
}
