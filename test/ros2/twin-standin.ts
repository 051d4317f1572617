/**
 * twin-standin: plays a ros2_control arm over real DDS, on the project's own simulator, so that
 * `mbpo-arm node` and `mbpo-arm train --driver ros2` can run for real without hardware or Gazebo.
 *
 * It stands in for the two controllers of config/controllers.yaml:
 *   joint_state_broadcaster  publishes sensor_msgs/msg/JointState on /joint_states (position,
 *                            velocity, effort; stamped with this node's ROS clock) at --rate Hz
 *                            (default: the controller manager's update_rate in that file)
 *   effort_controller        takes std_msgs/msg/Float64MultiArray on /effort_controller/commands,
 *                            one effort per joint in the order of its `joints` list, and holds the
 *                            last one until the next arrives (zero-order hold)
 * The arm itself is SimDriver with "realtime" timing: it steps its physics on its own to follow
 * wall-clock time. Once a second it prints one line: sim time, counts, the last effort applied.
 *
 * Not a test (`npm test` runs *.test.js only). Run it with a ROS 2 distro sourced:
 *   node dist/test/ros2/twin-standin.js [--rate HZ] [--urdf PATH] [--seconds S]
 *       [--controllers PATH] [--physics-rate HZ]
 * --seconds 0 (the default) runs until SIGINT or SIGTERM.
 */
import { existsSync, readFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { parse as parseYaml } from "yaml";
import type {
  Float64MultiArrayMsg,
  JointStateMsg,
  RclNode,
  Rclnodejs,
} from "../../src/drivers/ros2/rclnodejs.js";
import { loadRclnodejs, timeSeconds, toStamp } from "../../src/drivers/ros2/rclnodejs.js";
import { SimDriver } from "../../src/drivers/sim.js";
import { loadUrdf } from "../../src/robot/urdf.js";
import { resolveDataPath } from "../../src/util/paths.js";

/** The topics ros2_control's controllers use (and src/drivers/ros2/driver.ts expects). */
const JOINT_STATES_TOPIC = "/joint_states";
const COMMAND_TOPIC = "/effort_controller/commands";
/** Used when the controllers file gives no update_rate. */
const FALLBACK_RATE_HZ = 100;

interface Options {
  rateHz: number;
  urdfPath: string;
  seconds: number;
  physicsRateHz: number;
  /** From the controllers file, or undefined when it has none (then the URDF's joint order). */
  fileRateHz: number | undefined;
  controllerJoints: string[] | undefined;
}

/** Reads the flags; a bad one throws a one-line error. */
function readOptions(argv: string[]): Options {
  const { values } = parseArgs({
    args: argv,
    options: {
      rate: { type: "string" },
      urdf: { type: "string", default: "urdf/arm.urdf" },
      seconds: { type: "string", default: "0" },
      controllers: { type: "string", default: "config/controllers.yaml" },
      "physics-rate": { type: "string", default: "1000" },
    },
    // Everything after --ros-args belongs to rcl.
    strict: false,
    allowPositionals: true,
  });
  const number = (name: string, text: unknown, min: number): number => {
    const value = Number(text);
    if (typeof text !== "string" || !Number.isFinite(value) || value < min)
      throw new Error(`--${name}: expected a number ≥ ${min}, got ${String(text)}`);
    return value;
  };
  const file = readControllers(String(values.controllers));
  const rateHz =
    values.rate !== undefined ? number("rate", values.rate, 1) : (file.rateHz ?? FALLBACK_RATE_HZ);
  if (rateHz <= 0) throw new Error("--rate must be positive");
  return {
    rateHz,
    urdfPath: resolveDataPath(String(values.urdf)),
    seconds: number("seconds", values.seconds, 0),
    physicsRateHz: number("physics-rate", values["physics-rate"], 1),
    fileRateHz: file.rateHz,
    controllerJoints: file.joints,
  };
}

/**
 * The controller manager's update_rate and the effort controller's joints from a ros2_control
 * controllers file; a missing file gives neither.
 */
function readControllers(path: string): { rateHz?: number; joints?: string[] } {
  const resolved = resolveDataPath(path);
  if (!existsSync(resolved)) return {};
  const doc = parseYaml(readFileSync(resolved, "utf8")) as Record<string, unknown> | null;
  const params = (section: string): Record<string, unknown> => {
    const node = doc?.[section] as { ros__parameters?: Record<string, unknown> } | undefined;
    return node?.ros__parameters ?? {};
  };
  const rate = params("controller_manager").update_rate;
  const joints = params("effort_controller").joints;
  return {
    rateHz: typeof rate === "number" && rate > 0 ? rate : undefined,
    joints: Array.isArray(joints) ? joints.map(String) : undefined,
  };
}

async function main(): Promise<void> {
  const options = readOptions(process.argv.slice(2));
  const model = loadUrdf(options.urdfPath);
  const jointNames = model.joints.map((j) => j.name);
  const n = jointNames.length;

  // commandIndex[k]: the model joint that element k of a command drives.
  const controllerJoints = options.controllerJoints ?? jointNames;
  if (controllerJoints.length !== n)
    throw new Error(`effort controller has ${controllerJoints.length} joints, the URDF has ${n}`);
  const commandIndex = controllerJoints.map((name) => {
    const i = jointNames.indexOf(name);
    if (i < 0) throw new Error(`effort controller joint "${name}" is not in ${options.urdfPath}`);
    return i;
  });

  // rclnodejs is optional: loadRclnodejs imports it dynamically and fails with one line.
  let rcl: Rclnodejs;
  try {
    rcl = await loadRclnodejs();
  } catch (error) {
    console.error(`twin-standin: ${(error as Error).message}`);
    process.exitCode = 1;
    return;
  }

  const sim = new SimDriver({ model, physicsRateHz: options.physicsRateHz, timing: "realtime" });
  await rcl.init(undefined, process.argv);
  // Our own handlers below stop the timers before ROS shuts down.
  rcl.removeSignalHandlers();
  const node: RclNode = rcl.createNode("twin_standin");
  const log = node.getLogger();

  // ---- effort_controller: commands in, zero-order hold --------------------------------------
  const effort = new Float64Array(n);
  let commands = 0;
  let rejected = 0;
  let lastProblem = "";
  node.createSubscription<Float64MultiArrayMsg>(
    "std_msgs/msg/Float64MultiArray",
    COMMAND_TOPIC,
    { qos: rcl.QoS.profileDefault },
    (msg) => {
      const data = msg.data;
      // As JointGroupEffortController does, a command of the wrong size is ignored.
      if (data.length !== n) {
        rejected++;
        lastProblem = `command has ${data.length} values, expected ${n}`;
        return;
      }
      for (let k = 0; k < n; k++) effort[commandIndex[k]] = data[k];
      // SimDriver copies it, zeroes non-finite values, clamps at the URDF limit and holds it.
      sim.sendEffort(effort);
      commands++;
    },
  );

  // ---- joint_state_broadcaster: states out -------------------------------------------------
  const publisher = node.createPublisher<JointStateMsg>("sensor_msgs/msg/JointState", JOINT_STATES_TOPIC, {
    qos: rcl.QoS.profileDefault,
  });
  // One message object, refilled each time (rclnodejs serialises it during publish()).
  const msg: JointStateMsg = {
    header: { stamp: { sec: 0, nanosec: 0 }, frame_id: "" },
    name: jointNames,
    position: new Float64Array(n),
    velocity: new Float64Array(n),
    effort: new Float64Array(n),
  };
  let published = 0;
  const publishState = (): void => {
    const state = sim.readState(); // catches the twin up to wall time first
    // Stamped with the ROS clock: the node judges a state's age against its own clock.
    msg.header.stamp = toStamp(timeSeconds(node.now()));
    (msg.position as Float64Array).set(state.position);
    (msg.velocity as Float64Array).set(state.velocity);
    (msg.effort as Float64Array).set(state.effort);
    publisher.publish(msg);
    published++;
  };

  await sim.start();
  const periodNs = BigInt(Math.round(1e9 / options.rateHz));
  const stateTimer = node.createTimer(periodNs, publishState);
  rcl.spin(node);

  const source =
    options.fileRateHz !== undefined && options.rateHz === options.fileRateHz ? " (controllers file)" : "";
  log.info(
    `twin-standin: ${options.urdfPath}, ${n} joints, physics ${options.physicsRateHz} Hz, ` +
      `${JOINT_STATES_TOPIC} at ${options.rateHz} Hz${source}, commands on ${COMMAND_TOPIC} ` +
      `(order: ${controllerJoints.join(", ")})`,
  );

  // ---- once a second: one line --------------------------------------------------------------
  const wallStart = performance.now();
  let commandsAtLastReport = 0;
  const report = (): void => {
    const wall = (performance.now() - wallStart) / 1000;
    const perSecond = commands - commandsAtLastReport;
    commandsAtLastReport = commands;
    const last = Array.from(effort, (v) => v.toFixed(3)).join(", ");
    const problem = rejected > 0 ? ` rejected=${rejected} (${lastProblem})` : "";
    console.log(
      `t_sim=${sim.simTime.toFixed(3)} s wall=${wall.toFixed(1)} s states=${published} ` +
        `commands=${commands} (+${perSecond}/s) last_effort=[${last}] ` +
        `dropped_steps=${sim.droppedSteps}${problem}`,
    );
  };
  const reportTimer = setInterval(report, 1000);

  // ---- stopping ----------------------------------------------------------------------------
  let stopping = false;
  const stop = async (why: string): Promise<void> => {
    if (stopping) return;
    stopping = true;
    clearInterval(reportTimer);
    stateTimer.cancel();
    await sim.stop();
    report();
    console.log(`twin-standin: stopped (${why})`);
    node.destroy();
    if (!rcl.isShutdown()) rcl.shutdown();
    // rclnodejs's spin handles may still hold the event loop: leave now.
    process.exit(process.exitCode ?? 0);
  };
  process.once("SIGINT", () => void stop("SIGINT"));
  process.once("SIGTERM", () => void stop("SIGTERM"));
  if (options.seconds > 0)
    setTimeout(() => void stop(`${options.seconds} s elapsed`), options.seconds * 1000);
}

main().catch((error: unknown) => {
  console.error(`twin-standin: ${error instanceof Error ? error.message : String(error)}`);
  process.exit(1);
});
