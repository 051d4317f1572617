/**
 * The Dynamixel driver: a chain of Protocol 2.0 servos in current (torque) mode behind the Driver
 * interface. Joint order, names and units are the robot model's; servo IDs, directions, zero
 * offsets and torque constants come from the calibration.
 *
 * Start-up: ping every joint's servo (the model must match the calibration, and must have a current
 * mode), torque off, refuse a servo that reports a hardware error, Operating Mode = current and
 * Current Limit (EEPROM, written only when different), Goal Current 0, the bus watchdog (so that a
 * node that goes silent stops the servos), one state read, torque on. Any failure turns torque off
 * again and throws one line naming the joint and servo.
 *
 * Each tick: sendEffort() converts N·m to Goal Current units, then one SYNC_WRITE of the goal
 * currents and one SYNC_READ of present current, velocity and position (one 10-byte block) go out;
 * the reply becomes the state readState() returns at the next tick. A command that arrives while
 * the bus is busy is sent as soon as it frees up (the newest command wins). Every `healthEvery`
 * ticks one more SYNC_READ checks the servos' bus watchdogs.
 *
 * Bad replies are retried within the tick: a reply that is missing, damaged (bad CRC) or hidden
 * behind line noise (the reader resynchronises on the next header) is asked for again, from that
 * servo only, up to `retriesPerTick` times; each attempt waits the bus's timeout for its own packets
 * (bytes at the baud rate, the servos' return delay, twice the adapter latency: 35 ms on a pty, about
 * 6 ms behind a U2D2 with a 1 ms latency timer). An isolated bad reply therefore costs one timeout at
 * most, well inside the safety filter's stale timeout (0.1 s). Only `maxBadTicks` (3) ticks in a
 * row that still lack a reply after their retries latch a fault.
 *
 * Faults, latched (the first one names the cause) and handed to onFault (the control stack wires it
 * to SafetyFilter.latch): a hardware alert in any reply, a status error, `maxBadTicks` bad ticks in
 * a row, an expired bus watchdog, the serial link going away.
 *
 * A latched fault does NOT turn torque off. The safety filter answers a fault with its safe stop
 * (brake, then hold against gravity), and that safe stop is what the control loop sends from then
 * on: the driver keeps converting and sending every command it is given, and keeps reading the
 * state the safe stop needs (a reply with the hardware-alert bit still carries a good state), for as
 * long as the link works. Turning torque off at the fault would drop the arm: its joints are not
 * back-drivable enough to hold an outstretched tool, and a servo in current mode with torque off
 * holds nothing. A servo that raised a hardware alert has already switched its own output off (its
 * firmware's shutdown); the others go on braking and holding. Torque goes off in stop(), which the
 * application calls on exit, after the safe stop has brought the arm to rest.
 *
 * The last line of defence is the servos' own bus watchdog (set at start-up to 2.5 times the
 * longest a tick can wait on the bus, retries included, and at least 0.1 s): a servo that hears no
 * instruction for that long stops driving. It covers a node that goes silent (killed, hung, its
 * event loop stalled) and a pulled cable: once the serial link is gone nothing can reach the
 * servos, so the driver stops commanding, latches "the serial link to the servos is gone" (the run
 * ends with that one line) and a torque-off write would be moot; the watchdog stops them within its
 * period. A link that stays open while no servo answers (bus power lost) is not "gone": the
 * commands go on, and the stale state is the safety filter's to judge.
 *
 * Allocation: packets are built and units converted in arrays made in the constructor; what the
 * asynchronous I/O itself allocates per tick (a promise per transaction, serialport's buffers) is
 * all that is left.
 *
 * Torque off on every exit path: stop() (the run's finally block: normal end, Ctrl-C, errors), a
 * failed start, and process exit (a synchronous write of the torque-off packet, for the second
 * Ctrl-C). If the process dies without any of these, or the link is cut, the servos' own bus
 * watchdog stops them.
 */
import type { RobotModel } from "../../robot/types.js";
import type { Driver, JointState } from "../driver.js";
import { DynamixelBus, DynamixelError } from "./bus.js";
import { type Calibration, currentLimitUnits, type JointCalibration } from "./calibration.js";
import {
  BUS_WATCHDOG_EXPIRED,
  BUS_WATCHDOG_UNIT,
  currentModeRefusal,
  describeHardwareError,
  modelName,
  OperatingMode,
  STATE_BLOCK,
  STATE_OFFSETS,
  X_SERIES,
} from "./control-table.js";
import { describeStatusError, readLE, syncWritePacket, writeLE } from "./protocol.js";
import { isPseudoTerminal, PTY_LATENCY_MS, type Transport, usbLatencyTimerMs } from "./transport.js";

export const DEFAULT_BAUD = 1_000_000;

export interface DynamixelDriverOptions {
  model: RobotModel;
  calibration: Calibration;
  /** Serial device, e.g. /dev/ttyUSB0. */
  port: string;
  baud?: number;
  /**
   * Bus watchdog (s) set on every servo; a multiple of 20 ms, 0.02–2.54. Default: 0.1 s, or 2.5 times a
   * tick's longest wait on the bus (every state-read attempt timing out) where that is longer: a slow
   * tick must not trip it while the driver still waits. 0.28 s on a pty, 0.1 s behind a U2D2 at 1 ms.
   */
  busWatchdog?: number;
  /**
   * Ticks in a row whose state read still lacks a reply after its retries before a fault latches.
   * Default 3: behind a U2D2 at a 1 ms latency timer, where bad ticks come at the control rate, a
   * dead servo latches within about 60 ms; on a pty (3 timeouts of 35 ms a tick) within 0.3 s.
   */
  maxBadTicks?: number;
  /** State reads sent again within a tick for replies missing or damaged. Default 2. */
  retriesPerTick?: number;
  /** Ticks between bus-watchdog checks. Default 25. */
  healthEvery?: number;
  /** Adapter latency (ms) for timeouts. Default: the USB latency timer from sysfs, 1 for a pty, else 16. */
  latencyMs?: number;
  /** Use this link instead of opening `port` (tests, benchmarks). */
  transport?: Transport;
  /** Where start-up notes go (e.g. a slow USB latency timer). Default: nowhere. */
  log?: (message: string) => void;
  name?: string;
}

export class DynamixelDriver implements Driver {
  readonly name: string;
  readonly jointNames: readonly string[];
  readonly timing = "realtime" as const;
  readonly joints: readonly JointCalibration[];
  readonly port: string;
  readonly baud: number;
  /** Called once when a fault latches, with a one-line description. */
  onFault: ((detail: string) => void) | undefined;
  /**
   * Ticks on the bus, bad ticks (no full state after the retries), commands that waited for a busy
   * bus, state reads sent again within a tick, ticks whose state came only on a retry, and the
   * longest a tick's write and read took on the bus (ms).
   */
  readonly stats = {
    ticks: 0,
    badTicks: 0,
    coalesced: 0,
    healthChecks: 0,
    retries: 0,
    recovered: 0,
    maxTickMs: 0,
  };

  private readonly options: DynamixelDriverOptions;
  private readonly ids: number[];
  private readonly dof: number;
  private readonly limitUnits: Int32Array;
  /** N·m per Goal Current unit, with the direction folded in. */
  private readonly torquePerUnit: Float64Array;
  private readonly radPerTick: Float64Array;
  private readonly radPerVelocityUnit: Float64Array;
  private readonly goal: Uint8Array;
  private readonly block: Uint8Array;
  private readonly watchdogBlock: Uint8Array;
  private readonly state: JointState;
  private readonly torqueOffPacket: Uint8Array;
  private readonly t0 = performance.now();

  private bus: DynamixelBus | undefined;
  /** The bus watchdog (s) written to the servos (set at start-up). */
  private busWatchdog = 0.1;
  private latched: string | undefined;
  private running = false;
  private stopping = false;
  private hasState = false;
  private busy = false;
  private pending = false;
  private badTicksInARow = 0;
  private readonly retriesPerTick: number;
  private ticksSinceHealth = 0;
  private cycleDone: Promise<void> = Promise.resolve();
  private readonly exitHook = () => this.torqueOffAtExit();

  constructor(options: DynamixelDriverOptions) {
    this.options = options;
    this.name = options.name ?? "dynamixel";
    this.jointNames = options.model.joints.map((j) => j.name);
    const names = options.calibration.joints.map((j) => j.joint);
    if (names.join() !== this.jointNames.join())
      throw new Error(
        `dynamixel driver: the calibration covers joints ${names.join(", ")}, the robot has ${this.jointNames.join(", ")}`,
      );
    this.joints = options.calibration.joints;
    this.port = options.port;
    this.baud = options.baud ?? DEFAULT_BAUD;
    this.retriesPerTick = options.retriesPerTick ?? 2;
    if (!(Number.isInteger(this.retriesPerTick) && this.retriesPerTick >= 0))
      throw new Error(
        `dynamixel driver: retriesPerTick must be an integer ≥ 0, got ${options.retriesPerTick}`,
      );
    const n = this.joints.length;
    this.dof = n;
    this.ids = this.joints.map((j) => j.id);
    this.limitUnits = Int32Array.from(this.joints, currentLimitUnits);
    this.torquePerUnit = Float64Array.from(
      this.joints,
      (j) => j.direction * j.currentUnit * j.torqueConstant,
    );
    this.radPerTick = Float64Array.from(
      this.joints,
      (j) => (j.direction * 2 * Math.PI) / j.ticksPerRevolution,
    );
    this.radPerVelocityUnit = Float64Array.from(this.joints, (j) => j.direction * j.model.velocityUnit);
    this.goal = new Uint8Array(2 * n);
    this.block = new Uint8Array(STATE_BLOCK.size * n);
    this.watchdogBlock = new Uint8Array(n);
    this.state = {
      stamp: 0,
      position: new Float64Array(n),
      velocity: new Float64Array(n),
      effort: new Float64Array(n),
    };
    this.torqueOffPacket = syncWritePacket(X_SERIES.torqueEnable.address, 1, this.ids, new Uint8Array(n));
    if (options.busWatchdog !== undefined) {
      const units = Math.round(options.busWatchdog / BUS_WATCHDOG_UNIT);
      if (!(units >= 1 && units <= 127))
        throw new Error(`dynamixel driver: bus watchdog must be 0.02–2.54 s, got ${options.busWatchdog}`);
    }
  }

  /** The latched fault, or undefined. */
  get fault(): string | undefined {
    return this.latched;
  }

  async start(): Promise<void> {
    if (this.running) return;
    if (this.latched !== undefined)
      throw new Error(`dynamixel driver: cannot start after a fault: ${this.latched}`);
    const transport = this.options.transport ?? (await openSerial(this.port, this.baud));
    const latencyMs = this.options.latencyMs ?? defaultLatencyMs(this.port, this.options.log);
    const bus = new DynamixelBus(transport, { latencyMs });
    this.bus = bus;
    try {
      await this.configure(bus);
    } catch (err) {
      await this.torqueOffAll();
      await bus.close().catch(() => undefined);
      this.bus = undefined;
      throw err instanceof DynamixelError ? new Error(`dynamixel start-up: ${err.message}`) : err;
    }
    transport.onClose((reason) => {
      if (!this.stopping) this.latch(`the serial link to the servos is gone: ${reason}`);
    });
    process.on("exit", this.exitHook);
    this.running = true;
  }

  readState(): JointState | undefined {
    return this.hasState ? this.state : undefined;
  }

  now(): number {
    return (performance.now() - this.t0) / 1000;
  }

  /** Converts to Goal Current (clamped at each servo's current limit) and sends it on the bus. */
  sendEffort(effort: Float64Array): void {
    if (effort.length !== this.dof)
      throw new Error(`dynamixel driver: expected ${this.dof} efforts, got ${effort.length}`);
    // After a fault too: the loop's commands are then the safe stop. Nothing goes out once the link is gone.
    if (!this.running || this.stopping || this.bus === undefined || this.bus.closed !== undefined) return;
    for (let i = 0; i < this.dof; i++) {
      const tau = effort[i];
      let units = Number.isFinite(tau) ? Math.round(tau / this.torquePerUnit[i]) : 0;
      const limit = this.limitUnits[i];
      if (units > limit) units = limit;
      else if (units < -limit) units = -limit;
      writeLE(this.goal, 2 * i, 2, units);
    }
    if (this.busy) {
      this.pending = true;
      this.stats.coalesced++;
      return;
    }
    this.busy = true;
    this.cycleDone = this.cycle();
  }

  /** Torque off on every servo (verified where the servos answer), then the port closes. Safe twice. */
  async stop(): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    await this.cycleDone;
    await this.torqueOffAll();
    process.off("exit", this.exitHook);
    await this.bus?.close().catch(() => undefined);
    this.running = false;
  }

  // ---- Start-up ----

  private async configure(bus: DynamixelBus): Promise<void> {
    for (const j of this.joints) {
      const where = `joint "${j.joint}" (servo ID ${j.id})`;
      let reply: Awaited<ReturnType<DynamixelBus["ping"]>>;
      try {
        reply = await bus.ping(j.id);
      } catch (err) {
        if (err instanceof DynamixelError && err.kind === "timeout")
          throw new Error(
            `dynamixel start-up: ${where}: no servo answers on ${this.port} at ${this.baud} baud ` +
              `(check power, wiring, ID and baud rate: mbpo-arm dynamixel scan --port ${this.port})`,
          );
        throw err;
      }
      const refusal = currentModeRefusal(reply.modelNumber);
      if (refusal !== undefined) throw new Error(`dynamixel start-up: ${where}: ${refusal}`);
      if (reply.modelNumber !== j.model.modelNumber)
        throw new Error(
          `dynamixel start-up: ${where} is an ${modelName(reply.modelNumber)}, the calibration says ${j.model.name}`,
        );
    }
    for (const j of this.joints) await bus.write(j.id, X_SERIES.torqueEnable, 0, { allowAlert: true });
    for (const j of this.joints) {
      const status = await bus.readValue(j.id, X_SERIES.hardwareErrorStatus);
      if (status !== 0)
        throw new Error(
          `dynamixel start-up: joint "${j.joint}" (servo ID ${j.id}) reports a hardware error (${describeHardwareError(status)}); ` +
            `power-cycle it or run: mbpo-arm dynamixel reboot --port ${this.port} --id ${j.id}`,
        );
    }
    // The longest a servo can go without an instruction while the driver is healthy: a tick's read
    // with all its retries (a retry asks only the servos still missing).
    const tickWait = ((1 + this.retriesPerTick) * bus.timeoutMs(20, this.dof * 21, this.dof)) / 1000;
    this.busWatchdog = this.options.busWatchdog ?? Math.max(0.1, 2.5 * tickWait);
    const watchdogUnits = Math.min(127, Math.ceil(this.busWatchdog / BUS_WATCHDOG_UNIT - 1e-9));
    for (let i = 0; i < this.dof; i++) {
      const j = this.joints[i];
      // 0 clears a watchdog error left by an earlier session.
      await bus.write(j.id, X_SERIES.busWatchdog, 0);
      if ((await bus.readValue(j.id, X_SERIES.operatingMode)) !== OperatingMode.CURRENT)
        await bus.write(j.id, X_SERIES.operatingMode, OperatingMode.CURRENT);
      if ((await bus.readValue(j.id, X_SERIES.currentLimit)) !== this.limitUnits[i])
        await bus.write(j.id, X_SERIES.currentLimit, this.limitUnits[i]);
      await bus.write(j.id, X_SERIES.goalCurrent, 0);
    }
    const first = await bus.syncRead(
      STATE_BLOCK.address,
      STATE_BLOCK.size,
      this.ids,
      this.block,
      this.retriesPerTick,
    );
    if (!first.ok)
      throw new Error(`dynamixel start-up: the first state read failed (${this.describeFailedRead(first)})`);
    this.decodeState();
    for (const j of this.joints) await bus.write(j.id, X_SERIES.busWatchdog, watchdogUnits);
    for (const j of this.joints) await bus.write(j.id, X_SERIES.torqueEnable, 1);
  }

  // ---- The tick ----

  private async cycle(): Promise<void> {
    const bus = this.bus!;
    try {
      do {
        this.pending = false;
        const t0 = performance.now();
        bus.syncWrite(X_SERIES.goalCurrent.address, 2, this.ids, this.goal);
        const outcome = await bus.syncRead(
          STATE_BLOCK.address,
          STATE_BLOCK.size,
          this.ids,
          this.block,
          this.retriesPerTick,
        );
        const ms = performance.now() - t0;
        if (ms > this.stats.maxTickMs) this.stats.maxTickMs = ms;
        this.stats.ticks++;
        this.stats.retries += outcome.attempts - 1;
        if (outcome.ok && outcome.attempts > 1) this.stats.recovered++;
        // Every block in and no status error: a good state, even with a hardware alert (the safe
        // stop that follows the alert needs it).
        if (!outcome.closed && outcome.missing === 0 && outcome.errorId < 0) this.decodeState();
        if (outcome.ok) this.badTicksInARow = 0;
        else await this.onBadRead(outcome);
        if (++this.ticksSinceHealth >= (this.options.healthEvery ?? 25) && bus.closed === undefined) {
          this.ticksSinceHealth = 0;
          await this.checkWatchdogs(bus);
        }
      } while (this.pending && !this.stopping && bus.closed === undefined);
    } catch (err) {
      this.latch(`dynamixel driver: ${(err as Error).message}`);
    } finally {
      this.busy = false;
    }
  }

  private decodeState(): void {
    const { block, state } = this;
    const size = STATE_BLOCK.size;
    for (let i = 0; i < this.dof; i++) {
      const base = i * size;
      const current = readLE(block, base + STATE_OFFSETS.current, 2, true);
      const velocity = readLE(block, base + STATE_OFFSETS.velocity, 4, true);
      const ticks = readLE(block, base + STATE_OFFSETS.position, 4, true);
      state.position[i] = (ticks - this.joints[i].zeroOffset) * this.radPerTick[i];
      state.velocity[i] = velocity * this.radPerVelocityUnit[i];
      state.effort[i] = current * this.torquePerUnit[i];
    }
    state.stamp = this.now();
    this.hasState = true;
  }

  private async onBadRead(o: Awaited<ReturnType<DynamixelBus["syncRead"]>>): Promise<void> {
    this.stats.badTicks++;
    if (o.closed) {
      this.latch(`the serial link to the servos is gone: ${this.bus?.closed ?? "closed"}`);
      return;
    }
    if (o.alertId >= 0) {
      if (this.latched !== undefined) return;
      const id = o.alertId;
      let what = "hardware alert";
      try {
        const status = await this.bus!.readValue(id, X_SERIES.hardwareErrorStatus);
        what = `hardware alert: ${describeHardwareError(status)}`;
      } catch {
        // The alert alone is enough to stop; the detail is a courtesy.
      }
      this.latch(`${this.servoName(id)}: ${what}`);
      return;
    }
    if (o.errorId >= 0) {
      this.latch(
        `${this.servoName(o.errorId)} answered the state read with "${describeStatusError(o.error)}"`,
      );
      return;
    }
    if (++this.badTicksInARow < (this.options.maxBadTicks ?? 3)) return;
    const n = this.badTicksInARow;
    const asked = `each asked ${o.attempts} time${o.attempts === 1 ? "" : "s"}`;
    this.latch(
      o.badPackets > 0 && o.missing > 0
        ? `${n} state reads in a row failed (${asked}): damaged replies on the bus (CRC mismatch), ${this.servoName(o.firstMissingId)} and maybe others unread`
        : `${this.servoName(o.firstMissingId)} stopped answering (${n} state reads in a row without its reply, ${asked})`,
    );
  }

  private async checkWatchdogs(bus: DynamixelBus): Promise<void> {
    this.stats.healthChecks++;
    const o = await bus.syncRead(
      X_SERIES.busWatchdog.address,
      1,
      this.ids,
      this.watchdogBlock,
      this.retriesPerTick,
    );
    if (!o.ok) {
      await this.onBadRead(o);
      return;
    }
    for (let i = 0; i < this.dof; i++) {
      if (this.watchdogBlock[i] === BUS_WATCHDOG_EXPIRED) {
        this.latch(
          `${this.servoName(this.ids[i])}: its bus watchdog expired (no instruction for over ${this.busWatchdog.toFixed(2)} s: the control loop stalled) and it stopped`,
        );
        return;
      }
    }
  }

  // ---- Faults and torque off ----

  /** Latches the first fault and reports it. Torque stays on: see the top of this file. */
  private latch(detail: string): void {
    if (this.latched !== undefined) return;
    this.latched = detail;
    this.onFault?.(detail);
  }

  /** Torque off everywhere: the broadcast packet, then a verified write per servo (errors ignored). */
  private async torqueOffAll(): Promise<string[]> {
    const bus = this.bus;
    const unverified: string[] = [];
    if (bus === undefined || bus.closed !== undefined) return unverified;
    bus.transport.write(this.torqueOffPacket);
    for (const j of this.joints) {
      try {
        await bus.write(j.id, X_SERIES.torqueEnable, 0, { allowAlert: true });
      } catch {
        unverified.push(j.joint);
      }
    }
    return unverified;
  }

  private torqueOffAtExit(): void {
    // Also while stop() is under way: its own torque-off may not have left yet. Twice is harmless.
    if (this.running) this.bus?.transport.writeSync(this.torqueOffPacket);
  }

  private servoName(id: number): string {
    const j = this.joints.find((c) => c.id === id);
    return j === undefined ? `servo ID ${id}` : `joint "${j.joint}" (servo ID ${id})`;
  }

  private describeFailedRead(o: Awaited<ReturnType<DynamixelBus["syncRead"]>>): string {
    if (o.closed) return `link gone: ${this.bus?.closed}`;
    if (o.alertId >= 0) return `${this.servoName(o.alertId)} reports a hardware alert`;
    if (o.errorId >= 0) return `${this.servoName(o.errorId)}: ${describeStatusError(o.error)}`;
    return `${this.servoName(o.firstMissingId)} did not answer${o.badPackets > 0 ? "; damaged replies on the bus" : ""}`;
  }
}

async function openSerial(port: string, baud: number): Promise<Transport> {
  const { SerialTransport } = await import("./serial-transport.js");
  return SerialTransport.open(port, baud);
}

function defaultLatencyMs(port: string, log: ((message: string) => void) | undefined): number {
  const usb = usbLatencyTimerMs(port);
  if (usb !== undefined) {
    if (usb > 1)
      log?.(
        `${port}: USB latency timer is ${usb} ms; every bus round trip waits that long. For a faster loop: ` +
          `echo 1 | sudo tee /sys/bus/usb-serial/devices/$(basename $(readlink -f ${port}))/latency_timer`,
      );
    return Math.max(1, usb);
  }
  return isPseudoTerminal(port) ? PTY_LATENCY_MS : 16;
}
