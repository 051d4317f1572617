/**
 * The one interface the control loop drives a robot through: the embedded simulator, a ROS 2
 * graph (rclnodejs) and a Dynamixel servo bus all implement it.
 */

/** The latest measured joint state, in the model's joint order and SI units. */
export interface JointState {
  /** When the state was measured, in seconds on the driver's clock (see Driver.now). */
  stamp: number;
  position: Float64Array;
  velocity: Float64Array;
  effort: Float64Array;
}

export interface Driver {
  readonly name: string;
  /** Joint names in the order used by every array this driver takes or returns. */
  readonly jointNames: readonly string[];
  /**
   * How time passes: "stepped" drivers only move when advance() is called (simulation run as fast
   * as possible); "realtime" drivers move on their own and the control loop paces itself.
   */
  readonly timing: "stepped" | "realtime";
  start(): Promise<void>;
  /** Stops the robot safely (zero effort) and releases resources. Safe to call twice. */
  stop(): Promise<void>;
  /** The latest joint state, or undefined before the first one arrives. Must not allocate. */
  readState(): JointState | undefined;
  /** Commands joint efforts (N·m or N), already safety-filtered. The array may be reused by the caller. */
  sendEffort(effort: Float64Array): void;
  /** The driver's clock in seconds (simulated time for the simulator, sim time or wall time otherwise). */
  now(): number;
  /** Stepped drivers only: advance the robot by dt seconds, applying the last effort sent. */
  advance?(dt: number): void;
}
