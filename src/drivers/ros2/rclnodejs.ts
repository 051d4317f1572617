/**
 * The part of rclnodejs (1.x) this package uses, typed here so that the project builds and its
 * tests run where rclnodejs is not installed (it is an optionalDependency: it compiles only against
 * a sourced ROS 2 distro). Every name, argument order and field type follows rclnodejs's own
 * typings (types/node.d.ts, parameter.d.ts, time.d.ts, service.d.ts): timer periods are bigint
 * nanoseconds, integer parameters are bigint, float64[] message fields arrive as Float64Array.
 * test/ros2/fake-rclnodejs.ts implements exactly this interface.
 */

/** rclnodejs.ParameterType (a const enum in its typings; these are its values). */
export const ParameterType = {
  PARAMETER_NOT_SET: 0,
  PARAMETER_BOOL: 1,
  PARAMETER_INTEGER: 2,
  PARAMETER_DOUBLE: 3,
  PARAMETER_STRING: 4,
  PARAMETER_BYTE_ARRAY: 5,
  PARAMETER_BOOL_ARRAY: 6,
  PARAMETER_INTEGER_ARRAY: 7,
  PARAMETER_DOUBLE_ARRAY: 8,
  PARAMETER_STRING_ARRAY: 9,
} as const;
export type ParameterTypeValue = (typeof ParameterType)[keyof typeof ParameterType];

export interface RclTime {
  readonly nanoseconds: bigint;
}

export interface RclClock {
  now(): RclTime;
}

export interface RclTimer {
  cancel(): void;
  isCanceled(): boolean;
}

export interface RclPublisher<M> {
  readonly topic: string;
  publish(message: M): void;
}

export interface RclSubscription {
  readonly topic: string;
}

export interface RclLogger {
  debug(message: string): boolean;
  info(message: string): boolean;
  warn(message: string): boolean;
  error(message: string): boolean;
}

/** A service's response handle: fill `template` (or a message of that type) and send it. */
export interface RclServiceResponse<R> {
  readonly template: R;
  send(response: R): void;
}

export interface RclParameter {
  readonly name: string;
  readonly type: ParameterTypeValue;
  value: unknown;
}

export type RclRange = object;

export interface RclParameterDescriptor {
  readonly name: string;
  readonly type: ParameterTypeValue;
  readonly description: string;
  readonly readOnly: boolean;
  additionalConstraints: string;
}

export interface RclSetParametersResult {
  successful: boolean;
  reason: string;
}

/** Publisher, subscription and service options (rclnodejs's `Options`). */
export interface RclOptions {
  enableTypedArray?: boolean;
  /** A QoS profile name such as rclnodejs.QoS.profileSensorData, or a `new rclnodejs.QoS(...)`. */
  qos?: string | object;
}

export interface RclNode {
  name(): string;
  getLogger(): RclLogger;
  getClock(): RclClock;
  now(): RclTime;
  createTimer(period: bigint, callback: () => void): RclTimer;
  createPublisher<M>(typeClass: string, topic: string, options?: RclOptions): RclPublisher<M>;
  createSubscription<M>(
    typeClass: string,
    topic: string,
    options: RclOptions,
    callback: (message: M) => void,
  ): RclSubscription;
  destroySubscription?(subscription: RclSubscription): void;
  createService<Q, R>(
    typeClass: string,
    serviceName: string,
    options: RclOptions,
    callback: (request: Q, response: RclServiceResponse<R>) => void,
  ): unknown;
  declareParameter(
    parameter: RclParameter,
    descriptor?: RclParameterDescriptor,
    ignoreOverride?: boolean,
  ): RclParameter;
  getParameter(name: string): RclParameter;
  /** Removes a parameter that is not read-only (rclnodejs throws for a read-only one). */
  undeclareParameter(name: string): void;
  addOnSetParametersCallback(callback: (parameters: RclParameter[]) => RclSetParametersResult): void;
  destroy(): void;
}

/** The module object: `import rclnodejs from "rclnodejs"`. */
export interface Rclnodejs {
  init(context?: unknown, argv?: string[]): Promise<void>;
  createNode(nodeName: string, namespace?: string): RclNode;
  spin(node: RclNode, timeout?: number): void;
  shutdown(): void;
  isShutdown(): boolean;
  /** Stops rclnodejs from shutting ROS down on SIGINT, so the node can stop the arm first. */
  removeSignalHandlers(): void;
  Parameter: new (name: string, type: ParameterTypeValue, value?: unknown) => RclParameter;
  ParameterDescriptor: new (
    name: string,
    type: ParameterTypeValue,
    description?: string,
    readOnly?: boolean,
    range?: RclRange,
  ) => RclParameterDescriptor;
  FloatingPointRange: new (from: number, to: number, step?: number, tolerance?: number) => RclRange;
  IntegerRange: new (from: bigint, to: bigint, step?: bigint) => RclRange;
  QoS: RclQoSClass;
}

/** rclnodejs's QoS class: named profiles, and a constructor for a profile of one's own. */
export interface RclQoSClass {
  new (history?: number, depth?: number, reliability?: number, durability?: number): object;
  readonly profileSensorData: string;
  readonly profileDefault: string;
  readonly HistoryPolicy: { readonly RMW_QOS_POLICY_HISTORY_KEEP_LAST: number };
  readonly ReliabilityPolicy: { readonly RMW_QOS_POLICY_RELIABILITY_RELIABLE: number };
  readonly DurabilityPolicy: { readonly RMW_QOS_POLICY_DURABILITY_TRANSIENT_LOCAL: number };
}

// ---- Message shapes (the fields this package reads or writes) ----------------------------------

export interface TimeMsg {
  sec: number;
  nanosec: number;
}

export interface HeaderMsg {
  stamp: TimeMsg;
  frame_id: string;
}

/** sensor_msgs/msg/JointState. float64[] fields are Float64Array (enableTypedArray, the default). */
export interface JointStateMsg {
  header: HeaderMsg;
  name: string[];
  position: Float64Array | number[];
  velocity: Float64Array | number[];
  effort: Float64Array | number[];
}

/** std_msgs/msg/Float64MultiArray. */
export interface Float64MultiArrayMsg {
  layout: {
    dim: { label: string; size: number; stride: number }[];
    data_offset: number;
  };
  data: Float64Array | number[];
}

export interface BoolMsg {
  data: boolean;
}

/** std_srvs/srv/Trigger and SetBool responses. */
export interface TriggerResponse {
  success: boolean;
  message: string;
}
export interface SetBoolRequest {
  data: boolean;
}

export interface KeyValueMsg {
  key: string;
  value: string;
}

/** diagnostic_msgs/msg/DiagnosticStatus (level is a byte: 0 OK, 1 WARN, 2 ERROR, 3 STALE). */
export interface DiagnosticStatusMsg {
  level: number;
  name: string;
  message: string;
  hardware_id: string;
  values: KeyValueMsg[];
}

export interface DiagnosticArrayMsg {
  header: HeaderMsg;
  status: DiagnosticStatusMsg[];
}

// ---- Loading -----------------------------------------------------------------------------------

export const RCLNODEJS_MISSING =
  "rclnodejs is not available: source a ROS 2 distro (e.g. `source /opt/ros/humble/setup.bash`), " +
  "then run `npm install rclnodejs` in the package (it builds against the sourced distro)";

/**
 * Loads rclnodejs, or throws one line saying what to install and source. The module name is a
 * variable so that TypeScript does not look for its typings (it is optional).
 */
export async function loadRclnodejs(moduleName = "rclnodejs"): Promise<Rclnodejs> {
  if (process.env.AMENT_PREFIX_PATH === undefined || process.env.AMENT_PREFIX_PATH === "") {
    throw new Error(`no ROS 2 distro is sourced (AMENT_PREFIX_PATH is unset); ${RCLNODEJS_MISSING}`);
  }
  let mod: { default?: unknown };
  try {
    mod = (await import(moduleName)) as { default?: unknown };
  } catch (err) {
    const cause = String((err as Error).message ?? err).split("\n")[0];
    throw new Error(`${RCLNODEJS_MISSING} (${cause})`);
  }
  return (mod.default ?? mod) as Rclnodejs;
}

/** Seconds of a ROS time (the header stamp), as a float. */
export function stampSeconds(stamp: TimeMsg): number {
  return stamp.sec + stamp.nanosec * 1e-9;
}

/** Seconds of an rclnodejs Time. */
export function timeSeconds(time: RclTime): number {
  const ns = time.nanoseconds;
  // Split to keep full precision: Number(ns) alone rounds at ~2^53 ns (104 days).
  return Number(ns / 1_000_000_000n) + Number(ns % 1_000_000_000n) * 1e-9;
}

export function toStamp(seconds: number): TimeMsg {
  const sec = Math.floor(seconds);
  return { sec, nanosec: Math.min(999_999_999, Math.round((seconds - sec) * 1e9)) };
}
