/**
 * The ROS 2 driver for the commands that are not the ROS node (`run --driver ros2`, `env serve
 * --driver ros2`): start() loads rclnodejs, creates a plain node and waits for the first joint
 * state; the control loop then paces itself on wall-clock time. Settings come from the CLI's
 * config; use `mbpo-arm node` (or `ros2 launch`) for parameters, services and the ROS timer.
 */
import type { Driver, JointState } from "../driver.js";
import { Ros2Driver } from "./driver.js";
import { loadRclnodejs, type RclNode, type Rclnodejs } from "./rclnodejs.js";

export interface StandaloneRos2DriverOptions {
  jointNames: readonly string[];
  controllerJoints?: readonly string[];
  /** How long start() waits for the first joint state (s). */
  firstStateTimeout?: number;
  nodeName?: string;
  /** For tests: a stand-in for rclnodejs. */
  rcl?: Rclnodejs;
}

export class StandaloneRos2Driver implements Driver {
  readonly name = "ros2";
  readonly timing = "realtime" as const;
  readonly jointNames: readonly string[];
  private readonly options: StandaloneRos2DriverOptions;
  private rcl: Rclnodejs | undefined;
  private node: RclNode | undefined;
  private inner: Ros2Driver | undefined;

  constructor(options: StandaloneRos2DriverOptions) {
    this.options = options;
    this.jointNames = options.jointNames;
  }

  async start(): Promise<void> {
    if (this.inner !== undefined) return;
    const rcl = this.options.rcl ?? (await loadRclnodejs());
    await rcl.init(undefined, process.argv);
    rcl.removeSignalHandlers();
    const node = rcl.createNode(this.options.nodeName ?? "mbpo_arm");
    const inner = new Ros2Driver({
      rcl,
      node,
      jointNames: this.jointNames,
      controllerJoints: this.options.controllerJoints,
    });
    this.rcl = rcl;
    this.node = node;
    this.inner = inner;
    await inner.start();
    rcl.spin(node);
    const timeout = this.options.firstStateTimeout ?? 5;
    const deadline = performance.now() + timeout * 1000;
    while (inner.readState() === undefined) {
      if (performance.now() > deadline) {
        const why = inner.lastProblem !== undefined ? ` (last message: ${inner.lastProblem})` : "";
        await this.stop();
        throw new Error(`no usable joint state on ${inner.jointStatesTopic} within ${timeout} s${why}`);
      }
      await new Promise<void>((resolve) => setTimeout(resolve, 10));
    }
  }

  /** Zero effort, then the node and ROS are shut down. */
  async stop(): Promise<void> {
    await this.inner?.stop();
    this.node?.destroy();
    if (this.rcl !== undefined && !this.rcl.isShutdown()) this.rcl.shutdown();
    this.node = undefined;
  }

  readState(): JointState | undefined {
    return this.inner?.readState();
  }

  sendEffort(effort: Float64Array): void {
    this.inner?.sendEffort(effort);
  }

  now(): number {
    return this.inner !== undefined ? this.inner.now() : performance.now() / 1000;
  }
}
