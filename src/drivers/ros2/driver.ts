/**
 * The ROS 2 driver: joint states in from `/joint_states` (sensor_msgs/JointState, sensor-data QoS),
 * efforts out on `/effort_controller/commands` (std_msgs/Float64MultiArray, the input of
 * ros2_control's effort_controllers/JointGroupEffortController), in that controller's joint order.
 * Time is the node's ROS clock, so `use_sim_time` (Gazebo's /clock) is honoured, and a state's age
 * is judged by its header stamp.
 */
import type { Driver, JointState } from "../driver.js";
import { JointStateMapper, jointOrder } from "./joint-map.js";
import type { Float64MultiArrayMsg, JointStateMsg, RclNode, Rclnodejs, RclPublisher } from "./rclnodejs.js";
import { stampSeconds, timeSeconds } from "./rclnodejs.js";

export const JOINT_STATE_TYPE = "sensor_msgs/msg/JointState";
export const FLOAT64_MULTI_ARRAY_TYPE = "std_msgs/msg/Float64MultiArray";

export interface Ros2DriverOptions {
  rcl: Pick<Rclnodejs, "QoS">;
  node: RclNode;
  /** The model's joint order (every array the driver takes or returns). */
  jointNames: readonly string[];
  /** The effort controller's `joints` order (default: the model's). */
  controllerJoints?: readonly string[];
  jointStatesTopic?: string;
  commandTopic?: string;
  /** Called with one line for each joint_states message that could not be used. */
  onProblem?: (detail: string) => void;
}

export class Ros2Driver implements Driver {
  readonly name = "ros2";
  readonly jointNames: readonly string[];
  readonly timing = "realtime" as const;
  readonly jointStatesTopic: string;
  readonly commandTopic: string;
  /** Joint states received and used, and rejected. */
  received = 0;
  rejected = 0;
  /** Whether the last state's velocity was estimated from positions (the message had none). */
  velocityEstimated = false;
  /** The last problem with a joint_states message (one line), if any. */
  lastProblem: string | undefined;

  private readonly rcl: Pick<Rclnodejs, "QoS">;
  private readonly node: RclNode;
  private readonly mapper: JointStateMapper;
  private readonly order: Int32Array;
  private readonly onProblem: ((detail: string) => void) | undefined;
  private readonly state: JointState;
  private readonly scratch: { position: Float64Array; velocity: Float64Array; effort: Float64Array };
  private readonly flags = { hasVelocity: false, hasEffort: false };
  private readonly command: Float64MultiArrayMsg;
  private readonly commandData: Float64Array;
  private publisher: RclPublisher<Float64MultiArrayMsg> | undefined;
  private hasState = false;
  private started = false;
  private stopped = false;

  constructor(options: Ros2DriverOptions) {
    this.rcl = options.rcl;
    this.node = options.node;
    this.jointNames = options.jointNames;
    this.jointStatesTopic = options.jointStatesTopic ?? "/joint_states";
    this.commandTopic = options.commandTopic ?? "/effort_controller/commands";
    this.onProblem = options.onProblem;
    this.mapper = new JointStateMapper(options.jointNames);
    this.order = jointOrder(
      options.jointNames,
      options.controllerJoints ?? options.jointNames,
      "effort controller joints",
    );
    const n = options.jointNames.length;
    this.state = {
      stamp: Number.NaN,
      position: new Float64Array(n),
      velocity: new Float64Array(n),
      effort: new Float64Array(n),
    };
    this.scratch = {
      position: new Float64Array(n),
      velocity: new Float64Array(n),
      effort: new Float64Array(n),
    };
    this.commandData = new Float64Array(n);
    this.command = { layout: { dim: [], data_offset: 0 }, data: this.commandData };
  }

  async start(): Promise<void> {
    if (this.started) return;
    this.started = true;
    this.publisher = this.node.createPublisher<Float64MultiArrayMsg>(
      FLOAT64_MULTI_ARRAY_TYPE,
      this.commandTopic,
    );
    this.node.createSubscription<JointStateMsg>(
      JOINT_STATE_TYPE,
      this.jointStatesTopic,
      { qos: this.rcl.QoS.profileSensorData },
      (msg) => this.onJointState(msg),
    );
  }

  /** Publishes zero effort once and ignores later commands. */
  async stop(): Promise<void> {
    if (this.stopped || this.publisher === undefined) {
      this.stopped = true;
      return;
    }
    this.commandData.fill(0);
    this.publisher.publish(this.command);
    this.stopped = true;
  }

  readState(): JointState | undefined {
    return this.hasState ? this.state : undefined;
  }

  sendEffort(effort: Float64Array): void {
    if (this.stopped || this.publisher === undefined) return;
    const order = this.order;
    for (let k = 0; k < order.length; k++) this.commandData[k] = effort[order[k]];
    this.publisher.publish(this.command);
  }

  now(): number {
    return timeSeconds(this.node.now());
  }

  /** Takes one joint_states message (the subscription callback; public for tests). */
  onJointState(msg: JointStateMsg): void {
    const s = this.scratch;
    const result = this.mapper.map(msg, s.position, s.velocity, s.effort, this.flags);
    if (!result.ok) {
      this.reject(result.error);
      return;
    }
    const stamp = msg.header?.stamp;
    const t = stamp !== undefined ? stampSeconds(stamp) : Number.NaN;
    if (!Number.isFinite(t)) {
      this.reject("joint_states: header stamp is missing or not a number");
      return;
    }
    const state = this.state;
    const n = state.position.length;
    if (this.flags.hasVelocity) {
      state.velocity.set(s.velocity);
      this.velocityEstimated = false;
    } else {
      // No velocities published: estimate them from successive positions and stamps.
      // A repeated stamp keeps the last estimate; the first state has none, so zero.
      const dt = t - state.stamp;
      if (!this.hasState) state.velocity.fill(0);
      else if (dt > 0)
        for (let i = 0; i < n; i++) state.velocity[i] = (s.position[i] - state.position[i]) / dt;
      this.velocityEstimated = true;
    }
    if (this.flags.hasEffort) state.effort.set(s.effort);
    else state.effort.fill(0);
    state.position.set(s.position);
    state.stamp = t;
    this.hasState = true;
    this.received++;
  }

  private reject(detail: string): void {
    this.rejected++;
    this.lastProblem = detail;
    this.onProblem?.(detail);
  }
}
