/**
 * A fake of the rclnodejs 1.x API subset the driver uses (src/drivers/ros2/rclnodejs.ts), behaving
 * as rclnodejs does where it matters to us: timer periods must be bigint nanoseconds (rclnodejs
 * throws otherwise), integer parameters are bigint, float64[] fields are Float64Array, `~/name`
 * expands to `/<node>/name`, parameter overrides come from `--ros-args -p name:=value` and
 * `--params-file` (the node's own section beating `/**` and plain `-p`, as in rcl), declareParameter applies them and rejects a wrong type or a value out of the
 * descriptor's range, and setting a read-only parameter fails. Time is driven by the test.
 */
import { readFileSync } from "node:fs";
import { parse as parseYaml } from "yaml";
import type {
  ParameterTypeValue,
  RclClock,
  RclLogger,
  RclNode,
  Rclnodejs,
  RclOptions,
  RclParameter,
  RclParameterDescriptor,
  RclPublisher,
  RclServiceResponse,
  RclSetParametersResult,
  RclSubscription,
  RclTime,
  RclTimer,
} from "../../src/drivers/ros2/rclnodejs.js";
import { ParameterType } from "../../src/drivers/ros2/rclnodejs.js";

/** The message types the node may use, with the fields a message of each must have. */
const MESSAGE_FIELDS: Record<string, string[]> = {
  "sensor_msgs/msg/JointState": ["header", "name", "position", "velocity", "effort"],
  "std_msgs/msg/Float64MultiArray": ["layout", "data"],
  "std_msgs/msg/Bool": ["data"],
  "diagnostic_msgs/msg/DiagnosticArray": ["header", "status"],
  "std_msgs/msg/String": ["data"],
};
const SERVICE_TYPES: Record<string, { response: Record<string, unknown> }> = {
  "std_srvs/srv/Trigger": { response: { success: false, message: "" } },
  "std_srvs/srv/SetBool": { response: { success: false, message: "" } },
};

/** rclnodejs's QoS: the named profiles, the policy enums and a profile of one's own. */
class QoS {
  static readonly profileSensorData = "qos_profile_sensor_data";
  static readonly profileDefault = "qos_profile_default";
  static readonly HistoryPolicy = { RMW_QOS_POLICY_HISTORY_KEEP_LAST: 1 };
  static readonly ReliabilityPolicy = { RMW_QOS_POLICY_RELIABILITY_RELIABLE: 1 };
  static readonly DurabilityPolicy = { RMW_QOS_POLICY_DURABILITY_TRANSIENT_LOCAL: 1 };
  constructor(
    readonly history = 0,
    readonly depth = 0,
    readonly reliability = 0,
    readonly durability = 0,
  ) {
    for (const v of [history, depth, reliability, durability])
      if (typeof v !== "number") throw new TypeError("QoS: every policy is a number");
  }
}

/** Whether a subscription's options ask for the last message published before it existed. */
function transientLocal(options: RclOptions): boolean {
  return (
    options.qos instanceof QoS &&
    options.qos.durability === QoS.DurabilityPolicy.RMW_QOS_POLICY_DURABILITY_TRANSIENT_LOCAL
  );
}

class Time implements RclTime {
  constructor(readonly nanoseconds: bigint) {
    if (typeof nanoseconds !== "bigint") throw new TypeError("Time: nanoseconds must be a bigint");
  }
}

class Parameter implements RclParameter {
  constructor(
    readonly name: string,
    readonly type: ParameterTypeValue,
    public value: unknown,
  ) {}
}

class FloatingPointRange {
  constructor(
    readonly fromValue: number,
    readonly toValue: number,
    readonly step = 0,
  ) {}
  inRange(v: number): boolean {
    return v >= this.fromValue - 1e-6 && v <= this.toValue + 1e-6;
  }
  isValidType(t: ParameterTypeValue): boolean {
    return t === ParameterType.PARAMETER_DOUBLE;
  }
}

class IntegerRange {
  constructor(
    readonly fromValue: bigint,
    readonly toValue: bigint,
    readonly step = 1n,
  ) {
    if (typeof fromValue !== "bigint" || typeof toValue !== "bigint") {
      throw new TypeError("IntegerRange: bounds must be bigint");
    }
  }
  inRange(v: bigint): boolean {
    return v >= this.fromValue && v <= this.toValue;
  }
  isValidType(t: ParameterTypeValue): boolean {
    return t === ParameterType.PARAMETER_INTEGER;
  }
}

class ParameterDescriptor implements RclParameterDescriptor {
  additionalConstraints = "";
  constructor(
    readonly name: string,
    readonly type: ParameterTypeValue,
    readonly description = "",
    readonly readOnly = false,
    readonly range?: FloatingPointRange | IntegerRange,
  ) {
    if (range !== undefined && !range.isValidType(type)) {
      throw new TypeError(`ParameterDescriptor ${name}: range does not fit the type`);
    }
  }
  validateParameter(p: RclParameter): void {
    if (p.type !== this.type)
      throw new TypeError(`Parameter ${p.name}: type ${p.type} does not match ${this.type}`);
    checkValueType(p);
    if (this.range instanceof FloatingPointRange && !this.range.inRange(p.value as number)) {
      throw new RangeError(`Parameter ${p.name}: ${p.value} is out of range`);
    }
    if (this.range instanceof IntegerRange && !this.range.inRange(p.value as bigint)) {
      throw new RangeError(`Parameter ${p.name}: ${p.value} is out of range`);
    }
  }
}

function checkValueType(p: RclParameter): void {
  const v = p.value;
  const ok =
    (p.type === ParameterType.PARAMETER_BOOL && typeof v === "boolean") ||
    (p.type === ParameterType.PARAMETER_INTEGER && typeof v === "bigint") ||
    (p.type === ParameterType.PARAMETER_DOUBLE && typeof v === "number") ||
    (p.type === ParameterType.PARAMETER_STRING && typeof v === "string") ||
    (p.type === ParameterType.PARAMETER_DOUBLE_ARRAY &&
      Array.isArray(v) &&
      v.every((x) => typeof x === "number")) ||
    (p.type === ParameterType.PARAMETER_INTEGER_ARRAY &&
      Array.isArray(v) &&
      v.every((x) => typeof x === "bigint")) ||
    (p.type === ParameterType.PARAMETER_BOOL_ARRAY &&
      Array.isArray(v) &&
      v.every((x) => typeof x === "boolean")) ||
    (p.type === ParameterType.PARAMETER_STRING_ARRAY &&
      Array.isArray(v) &&
      v.every((x) => typeof x === "string"));
  if (!ok) throw new TypeError(`Parameter ${p.name}: value ${String(v)} is not of type ${p.type}`);
}

/** A command-line or params-file value, typed as rcl types it. */
function overrideParameter(name: string, value: unknown): Parameter {
  if (typeof value === "boolean") return new Parameter(name, ParameterType.PARAMETER_BOOL, value);
  if (typeof value === "bigint") return new Parameter(name, ParameterType.PARAMETER_INTEGER, value);
  if (typeof value === "number") return new Parameter(name, ParameterType.PARAMETER_DOUBLE, value);
  if (Array.isArray(value)) {
    // rcl types a list by its items, which must all be of one type.
    if (value.length > 0 && value.every((v) => typeof v === "bigint"))
      return new Parameter(name, ParameterType.PARAMETER_INTEGER_ARRAY, value);
    if (value.length > 0 && value.every((v) => typeof v === "number"))
      return new Parameter(name, ParameterType.PARAMETER_DOUBLE_ARRAY, value);
    if (value.length > 0 && value.every((v) => typeof v === "boolean"))
      return new Parameter(name, ParameterType.PARAMETER_BOOL_ARRAY, value);
    if (value.every((v) => typeof v === "string"))
      return new Parameter(name, ParameterType.PARAMETER_STRING_ARRAY, value);
    throw new Error(
      `parameter ${name}: a list must hold values of one type, got ${JSON.stringify(value, (_, v) => (typeof v === "bigint" ? Number(v) : v))}`,
    );
  }
  return new Parameter(name, ParameterType.PARAMETER_STRING, String(value));
}

function parseValue(text: string): unknown {
  return parseYaml(text, { intAsBigInt: true });
}

function flatten(prefix: string, obj: Record<string, unknown>, out: Map<string, Parameter>): void {
  for (const [k, v] of Object.entries(obj)) {
    const name = prefix + k;
    if (v !== null && typeof v === "object" && !Array.isArray(v))
      flatten(`${name}.`, v as Record<string, unknown>, out);
    else out.set(name, overrideParameter(name, v));
  }
}

interface Timer extends RclTimer {
  periodNs: bigint;
  nextNs: bigint;
  callback: () => void;
}

interface Sub {
  type: string;
  topic: string;
  options: RclOptions;
  callback: (msg: unknown) => void;
  /** What createSubscription returned (destroySubscription takes it back). */
  handle?: RclSubscription;
}

interface Service {
  type: string;
  name: string;
  callback: (request: unknown, response: RclServiceResponse<unknown>) => void;
}

export class FakeNode implements RclNode {
  readonly timers: Timer[] = [];
  readonly subscriptions: Sub[] = [];
  readonly services = new Map<string, Service>();
  readonly published = new Map<string, unknown[]>();
  readonly publisherTypes = new Map<string, string>();
  readonly parameters = new Map<string, RclParameter>();
  readonly descriptors = new Map<string, ParameterDescriptor>();
  readonly logs: { level: string; message: string }[] = [];
  private readonly setCallbacks: ((p: RclParameter[]) => RclSetParametersResult)[] = [];
  destroyed = false;

  constructor(
    private readonly fake: FakeRclnodejs,
    private readonly nodeName: string,
  ) {}

  name(): string {
    return this.nodeName;
  }

  getLogger(): RclLogger {
    const log = (level: string) => (message: string) => {
      this.logs.push({ level, message });
      return true;
    };
    return { debug: log("debug"), info: log("info"), warn: log("warn"), error: log("error") };
  }

  getClock(): RclClock {
    return { now: () => this.now() };
  }

  now(): RclTime {
    return new Time(this.fake.clockNs);
  }

  expand(name: string): string {
    if (name.startsWith("~/")) return `/${this.nodeName}/${name.slice(2)}`;
    return name.startsWith("/") ? name : `/${name}`;
  }

  createTimer(period: bigint, callback: () => void, ...rest: unknown[]): RclTimer {
    if (typeof period !== "bigint") throw new TypeError("createTimer: period must be a bigint (nanoseconds)");
    if (typeof callback !== "function") throw new TypeError("createTimer: callback must be a function");
    if (rest.length > 2) throw new TypeError("createTimer: too many arguments");
    let canceled = false;
    const timer: Timer = {
      periodNs: period,
      nextNs: this.fake.clockNs + period,
      callback,
      cancel: () => {
        canceled = true;
      },
      isCanceled: () => canceled,
    };
    this.timers.push(timer);
    return timer;
  }

  createPublisher<M>(typeClass: string, topic: string, options?: RclOptions): RclPublisher<M> {
    checkType(typeClass);
    if (options !== undefined && typeof options !== "object") throw new TypeError("createPublisher: options");
    const expanded = this.expand(topic);
    this.publisherTypes.set(expanded, typeClass);
    const list: unknown[] = [];
    this.published.set(expanded, list);
    return {
      topic: expanded,
      publish: (message: M) => {
        checkMessage(typeClass, message);
        list.push(snapshot(message));
      },
    };
  }

  createSubscription<M>(
    typeClass: string,
    topic: string,
    options: RclOptions,
    callback: (message: M) => void,
  ): RclSubscription {
    checkType(typeClass);
    if (typeof options !== "object" || options === null)
      throw new TypeError("createSubscription: options is an object");
    if (typeof callback !== "function")
      throw new TypeError("createSubscription: callback must be a function");
    const expanded = this.expand(topic);
    const sub: Sub = {
      type: typeClass,
      topic: expanded,
      options,
      callback: callback as (m: unknown) => void,
    };
    this.subscriptions.push(sub);
    // A transient-local subscription gets the last latched message, on a later turn (a spin).
    const latched = this.fake.latched.get(expanded);
    if (latched !== undefined && transientLocal(options)) {
      setImmediate(() => {
        if (!this.subscriptions.includes(sub)) return;
        checkMessage(typeClass, latched);
        sub.callback(latched);
      });
    }
    sub.handle = { topic: expanded };
    return sub.handle;
  }

  destroySubscription(subscription: RclSubscription): void {
    const i = this.subscriptions.findIndex((s) => s.handle === subscription);
    if (i < 0) throw new Error(`destroySubscription: no subscription on ${subscription.topic}`);
    this.subscriptions.splice(i, 1);
  }

  createService<Q, R>(
    typeClass: string,
    serviceName: string,
    options: RclOptions,
    callback: (request: Q, response: RclServiceResponse<R>) => void,
  ): unknown {
    if (!(typeClass in SERVICE_TYPES)) throw new Error(`createService: unknown service type ${typeClass}`);
    if (typeof options !== "object" || options === null)
      throw new TypeError("createService: options is an object");
    if (typeof callback !== "function") throw new TypeError("createService: callback must be a function");
    const name = this.expand(serviceName);
    this.services.set(name, {
      type: typeClass,
      name,
      callback: callback as (q: unknown, r: RclServiceResponse<unknown>) => void,
    });
    return { serviceName: name };
  }

  declareParameter(
    parameter: RclParameter,
    descriptor?: RclParameterDescriptor,
    ignoreOverride = false,
  ): RclParameter {
    if (this.parameters.has(parameter.name))
      throw new Error(`Parameter(${parameter.name}) already declared.`);
    const override = this.fake.override(parameter.name);
    const p = !ignoreOverride && override !== undefined ? override : parameter;
    // Without a descriptor, rclnodejs infers one from the parameter declared: the override's type.
    const d = (descriptor ?? new ParameterDescriptor(p.name, p.type)) as ParameterDescriptor;
    d.validateParameter(p);
    this.descriptors.set(p.name, d);
    this.parameters.set(p.name, p);
    return p;
  }

  getParameter(name: string): RclParameter {
    return this.parameters.get(name) ?? new Parameter(name, ParameterType.PARAMETER_NOT_SET, undefined);
  }

  undeclareParameter(name: string): void {
    if (!this.parameters.has(name)) return;
    if (this.descriptors.get(name)?.readOnly)
      throw new Error(`${name} parameter is read-only and can not be undeclared`);
    this.parameters.delete(name);
    this.descriptors.delete(name);
  }

  addOnSetParametersCallback(callback: (parameters: RclParameter[]) => RclSetParametersResult): void {
    this.setCallbacks.unshift(callback);
  }

  /** What `ros2 param set` does: descriptor checks, read-only, then the node's callbacks. */
  setParameters(parameters: RclParameter[]): RclSetParametersResult {
    for (const p of parameters) {
      const d = this.descriptors.get(p.name);
      if (d === undefined) return { successful: false, reason: `parameter ${p.name} not declared` };
      if (d.readOnly) return { successful: false, reason: `parameter ${p.name} is read-only` };
      try {
        d.validateParameter(p);
      } catch (err) {
        return { successful: false, reason: (err as Error).message };
      }
    }
    for (const cb of this.setCallbacks) {
      const r = cb(parameters);
      if (!r.successful) return r;
    }
    for (const p of parameters) this.parameters.set(p.name, p);
    return { successful: true, reason: "" };
  }

  destroy(): void {
    this.destroyed = true;
  }

  // ---- test drivers ----

  /** Delivers a message to every subscription of the topic; returns how many took it. */
  deliver(topic: string, message: unknown): number {
    let n = 0;
    for (const s of this.subscriptions) {
      if (s.topic !== this.expand(topic)) continue;
      checkMessage(s.type, message);
      s.callback(message);
      n++;
    }
    return n;
  }

  /** Calls a service as a client would, returning the response the node sent. */
  call(service: string, request: unknown = {}): Record<string, unknown> {
    const s = this.services.get(this.expand(service));
    if (s === undefined) throw new Error(`no service ${service}`);
    let sent: Record<string, unknown> | undefined;
    const template = structuredClone(SERVICE_TYPES[s.type].response);
    s.callback(request, {
      template,
      send: (r) => {
        sent = r as Record<string, unknown>;
      },
    });
    if (sent === undefined) throw new Error(`service ${service} sent no response`);
    for (const key of Object.keys(template)) {
      if (!(key in sent)) throw new Error(`service ${service}: response lacks field ${key}`);
    }
    return sent;
  }

  /** Fires the timers due by the fake clock, in time order. */
  fireDueTimers(): number {
    let fired = 0;
    for (;;) {
      const due = this.timers
        .filter((t) => !t.isCanceled() && t.nextNs <= this.fake.clockNs)
        .sort((a, b) => (a.nextNs < b.nextNs ? -1 : a.nextNs > b.nextNs ? 1 : 0))[0];
      if (due === undefined) return fired;
      due.nextNs += due.periodNs;
      due.callback();
      fired++;
    }
  }

  last<T>(topic: string): T | undefined {
    const list = this.published.get(this.expand(topic));
    return list?.[list.length - 1] as T | undefined;
  }
}

function checkType(typeClass: string): void {
  if (!(typeClass in MESSAGE_FIELDS)) throw new Error(`unknown message type ${typeClass}`);
}

function checkMessage(typeClass: string, message: unknown): void {
  if (typeof message !== "object" || message === null)
    throw new TypeError(`${typeClass}: message must be an object`);
  for (const field of MESSAGE_FIELDS[typeClass]) {
    if (!(field in message)) throw new TypeError(`${typeClass}: message lacks field "${field}"`);
  }
}

/** Copies typed arrays so later reuse by the publisher does not rewrite history. */
function snapshot(message: unknown): unknown {
  return structuredClone(message);
}

export class FakeRclnodejs implements Rclnodejs {
  clockNs = 0n;
  /**
   * Parameter overrides as rcl and rclnodejs resolve them: entries for this node (a params-file
   * section named after it, `-p node:name:=value`) win over those for all nodes (`/**`, plain
   * `-p name:=value`); within each, the later one on the command line wins.
   */
  readonly wildcardOverrides = new Map<string, Parameter>();
  readonly nodeOverrides = new Map<string, Parameter>();

  override(name: string): Parameter | undefined {
    return this.nodeOverrides.get(name) ?? this.wildcardOverrides.get(name);
  }
  nodes: FakeNode[] = [];
  initialized = false;
  shut = false;
  readonly QoS = QoS;
  /** Messages a transient-local publisher elsewhere in the graph holds, by topic (see latch). */
  readonly latched = new Map<string, unknown>();

  /** What a transient-local publisher in another node does: later subscriptions get `message`. */
  latch(topic: string, message: unknown): void {
    this.latched.set(topic.startsWith("/") ? topic : `/${topic}`, message);
  }
  readonly Parameter = Parameter;
  readonly ParameterDescriptor = ParameterDescriptor as unknown as Rclnodejs["ParameterDescriptor"];
  readonly FloatingPointRange = FloatingPointRange;
  readonly IntegerRange = IntegerRange as unknown as Rclnodejs["IntegerRange"];

  async init(_context?: unknown, argv: string[] = []): Promise<void> {
    if (this.initialized) throw new Error("The context has already been initialized.");
    this.initialized = true;
    const at = argv.indexOf("--ros-args");
    if (at < 0) return;
    for (let i = at + 1; i < argv.length; i++) {
      const arg = argv[i];
      if (arg === "--") break;
      if (arg === "-p" || arg === "--param") {
        // `-p name:=value` applies to every node; `-p node:name:=value` to that node only.
        const [target, ...rest] = argv[++i].split(":=");
        const colon = target.indexOf(":");
        const scope = colon >= 0 ? this.nodeOverrides : this.wildcardOverrides;
        const name = colon >= 0 ? target.slice(colon + 1) : target;
        scope.set(name, overrideParameter(name, parseValue(rest.join(":="))));
      } else if (arg === "--params-file") {
        const doc = parseYaml(readFileSync(argv[++i], "utf8"), { intAsBigInt: true }) as Record<
          string,
          unknown
        >;
        for (const [node, section] of Object.entries(doc)) {
          const scope =
            node === "/**"
              ? this.wildcardOverrides
              : node === "mbpo_arm" || node === "/mbpo_arm"
                ? this.nodeOverrides
                : undefined;
          if (scope === undefined) continue;
          const params = (section as Record<string, unknown>).ros__parameters as Record<string, unknown>;
          flatten("", params, scope);
        }
      } else if (arg === "-r" || arg === "--remap") i++;
    }
  }

  createNode(nodeName: string): FakeNode {
    if (!this.initialized) throw new Error("rclnodejs.init() must be called before createNode()");
    const node = new FakeNode(this, nodeName);
    this.nodes.push(node);
    return node;
  }

  spin(): void {}

  shutdown(): void {
    this.shut = true;
  }

  isShutdown(): boolean {
    return this.shut;
  }

  signalHandlersRemoved = false;
  removeSignalHandlers(): void {
    this.signalHandlersRemoved = true;
  }

  /** Moves the clock on by `seconds` (exact nanoseconds). */
  advance(seconds: number): void {
    this.clockNs += BigInt(Math.round(seconds * 1e9));
  }
}
