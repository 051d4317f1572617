/**
 * A Protocol 2.0 servo bus in software, for tests and the benchmark: servos that answer PING, READ,
 * WRITE, SYNC_READ, SYNC_WRITE and REBOOT as X-series servos do (control table, status errors,
 * the hardware-alert bit, torque enable, the EEPROM lock while torque is on, the bus watchdog), with
 * the simulator's physics (SimDriver on the same URDF) behind them: the goal currents become joint
 * torques through the calibration, and the joint angles become encoder ticks.
 *
 * It sits behind a real pseudo-terminal pair made by socat (PtyPair): the driver opens one end as
 * it would /dev/ttyUSB0, the emulator the other. Faults can be injected: replies with a corrupted
 * CRC, servos that stop replying, a hardware error, the link going away, and line noise: a fraction
 * of replies dropped, damaged (one bit flipped anywhere after the header, so the CRC no longer
 * matches) or sent behind a few bytes of garbage, drawn from a seeded generator (the same seed gives
 * the same fault for the same reply number).
 */
import { type ChildProcess, spawn } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { getPriority, setPriority, tmpdir } from "node:os";
import { join } from "node:path";
import type { JointCalibration } from "../../../src/drivers/dynamixel/calibration.js";
import { BUS_WATCHDOG_EXPIRED, X_SERIES } from "../../../src/drivers/dynamixel/control-table.js";
import {
  ALERT_BIT,
  BROADCAST_ID,
  encodeStatus,
  Instruction,
  readLE,
  writeLE,
} from "../../../src/drivers/dynamixel/protocol.js";
import { PacketReader, type ReceivedPacket } from "../../../src/drivers/dynamixel/reader.js";
import { SerialTransport } from "../../../src/drivers/dynamixel/serial-transport.js";
import type { Transport } from "../../../src/drivers/dynamixel/transport.js";
import { SimDriver } from "../../../src/drivers/sim.js";
import type { RobotModel } from "../../../src/robot/types.js";
import { Rng } from "../../../src/util/rng.js";

/**
 * Nice value of the emulated hardware (socat's relay and the emulator's thread) where the system
 * permits it (root, or CAP_SYS_NICE). A servo bus is hardware: it answers whatever else the
 * computer is doing. An emulator at normal priority on a loaded test machine (two test files, the
 * command under test and its learner on two cores) was once descheduled for the 3 × 3 read
 * timeouts (about 0.3 s) after which the driver rightly latched "stopped answering", failing a test
 * about Ctrl-C. Where raising the priority is not permitted the emulator runs as before.
 */
const HARDWARE_NICE = -10;

/** Raises a process's (pid) or the calling thread's (pid 0) priority to HARDWARE_NICE; false if not permitted. */
function runAsHardware(pid: number): boolean {
  try {
    setPriority(pid, HARDWARE_NICE);
    return getPriority(pid) === HARDWARE_NICE;
  } catch {
    return false;
  }
}

/**
 * The command line that starts `command args` at normal priority from this thread, which may run
 * raised while an emulator listens (children inherit it): the code under test must meet the
 * machine's load as it would anywhere, only the emulated hardware is exempt.
 */
export function atNormalPriority(command: string, args: readonly string[]): [string, string[]] {
  const nice = getPriority(0);
  return nice < 0 ? ["nice", ["-n", String(-nice), command, ...args]] : [command, [...args]];
}

/** Two linked pseudo-terminals from socat: `driverPath` for the code under test, `servoPath` for the emulator. */
export class PtyPair {
  readonly driverPath: string;
  readonly servoPath: string;
  private readonly dir: string;
  private readonly socat: ChildProcess;
  private exited = false;
  private spawnError: Error | undefined;
  /** Set once close() has cut the link. */
  closed = false;

  private constructor(dir: string) {
    this.dir = dir;
    this.driverPath = join(dir, "ttyDXL");
    this.servoPath = join(dir, "ttyServos");
    this.socat = spawn(
      "socat",
      [`pty,raw,echo=0,link=${this.driverPath}`, `pty,raw,echo=0,link=${this.servoPath}`],
      { stdio: "ignore" },
    );
    this.socat.on("exit", () => {
      this.exited = true;
    });
    if (this.socat.pid !== undefined) runAsHardware(this.socat.pid);
    // socat missing (ENOENT) or not startable: end create()'s wait now, not at its deadline.
    this.socat.on("error", (err) => {
      this.spawnError = err;
      this.exited = true;
    });
  }

  static async create(): Promise<PtyPair> {
    const pair = new PtyPair(mkdtempSync(join(tmpdir(), "dxl-pty-")));
    const deadline = Date.now() + 5000;
    while (!(existsSync(pair.driverPath) && existsSync(pair.servoPath))) {
      if (pair.spawnError !== undefined)
        throw new Error(`cannot start socat for the pty pair: ${pair.spawnError.message}`);
      if (pair.exited || Date.now() > deadline) {
        await pair.close();
        throw new Error("socat did not create the pty pair");
      }
      await new Promise((r) => setTimeout(r, 5));
    }
    return pair;
  }

  /** Cuts the link (socat exits): both ends see their port go away, as when a USB adapter is pulled. */
  async close(): Promise<void> {
    this.closed = true;
    if (!this.exited) {
      const gone = new Promise((r) => this.socat.once("exit", r));
      this.socat.kill("SIGTERM");
      await gone;
    }
    rmSync(this.dir, { recursive: true, force: true });
  }
}

interface EmulatedServo {
  id: number;
  joint: number;
  cal: JointCalibration;
  table: Uint8Array;
  /** Wall time (ms) of the last instruction addressed to it (the bus watchdog's reference). */
  lastInstructionMs: number;
  /** When its output last went to zero (torque off, watchdog, shutdown), or undefined while driving. */
  outputOffAtMs: number | undefined;
}

export interface EmulatorFaults {
  /** Flip a bit in the CRC of every reply. */
  corruptCrc: boolean;
  /** IDs that receive but never reply. */
  silent: Set<number>;
  /** Fraction of replies (0–1) not sent at all. */
  dropFraction: number;
  /** Fraction of replies sent with one bit flipped after the header (ID, length, error, data or CRC). */
  corruptFraction: number;
  /** Fraction of replies sent behind 1–12 bytes of line noise (rich in FF, FD and 00: false header starts). */
  garbageFraction: number;
}

/** Line-noise settings for a run: each fraction of replies, and the generator's seed. */
export interface LineNoise {
  drop?: number;
  corrupt?: number;
  garbage?: number;
  seed?: number;
}

export interface TorqueEvent {
  id: number;
  on: boolean;
  atMs: number;
}

/** How long (ms) between two of its own 2 ms timer ticks before the emulator takes itself for descheduled. */
const EMULATOR_AWAY_MS = 20;
/** How long (ms) without a command before the emulator takes the controller for descheduled. */
const CONTROLLER_AWAY_MS = 60;

export class ServoBusEmulator {
  readonly sim: SimDriver;
  readonly servos: EmulatedServo[];
  readonly faults: EmulatorFaults = {
    corruptCrc: false,
    silent: new Set(),
    dropFraction: 0,
    corruptFraction: 0,
    garbageFraction: 0,
  };
  /** Replies the line noise dropped, damaged, or sent behind garbage. */
  readonly injected = { dropped: 0, corrupted: 0, garbage: 0 };
  /** Every change of torque enable, in order. */
  readonly torqueLog: TorqueEvent[] = [];
  readonly counts = { instructions: 0, syncReads: 0, syncWrites: 0, replies: 0 };
  /** Freezes the physics (a user holding the arm still while calibrating); watchdogs still run. */
  paused = false;
  private readonly byId = new Map<number, EmulatedServo>();
  private readonly reader: PacketReader;
  private readonly effort: Float64Array;
  private transport: Transport | undefined;
  private startMs = performance.now();
  /** Wall time (s) the physics skipped while paused. */
  private simOffset = 0;
  private timer: ReturnType<typeof setInterval> | undefined;
  /** Wall time (ms) of the last advance(). */
  private lastAdvanceMs = 0;
  private noise = new Rng(1);
  /** Wall time (ms) of the last SYNC_WRITE (the controller's command), 0 before the first. */
  private lastCommandMs = 0;
  /** The thread's nice value before attach() raised it, to put back on close(). */
  private niceBefore: number | undefined;

  constructor(
    model: RobotModel,
    joints: readonly JointCalibration[],
    options: { initialPosition?: number[] } = {},
  ) {
    this.sim = new SimDriver({ model, initialPosition: options.initialPosition });
    this.effort = new Float64Array(model.dof);
    this.servos = joints.map((cal, joint) => {
      const table = new Uint8Array(256);
      writeLE(table, X_SERIES.modelNumber.address, 2, cal.model.modelNumber);
      table[X_SERIES.firmwareVersion.address] = 46;
      table[X_SERIES.id.address] = cal.id;
      table[X_SERIES.baudRate.address] = 3;
      table[X_SERIES.returnDelayTime.address] = 250;
      table[X_SERIES.operatingMode.address] = 3; // factory default: position control
      writeLE(table, X_SERIES.currentLimit.address, 2, cal.model.maxCurrentLimit);
      return { id: cal.id, joint, cal, table, lastInstructionMs: 0, outputOffAtMs: 0 };
    });
    for (const s of this.servos) this.byId.set(s.id, s);
    this.reader = new PacketReader((p) => this.onInstruction(p));
  }

  /** Sets the line noise: fractions of replies dropped, damaged and garbage-prefixed, and the seed. */
  setLineNoise(noise: LineNoise): void {
    this.faults.dropFraction = noise.drop ?? 0;
    this.faults.corruptFraction = noise.corrupt ?? 0;
    this.faults.garbageFraction = noise.garbage ?? 0;
    this.noise = new Rng(noise.seed ?? 1);
  }

  /** Opens the servo end of a pty pair and starts answering. */
  async listen(path: string): Promise<void> {
    this.attach(await SerialTransport.open(path, 1_000_000));
  }

  attach(transport: Transport): void {
    this.transport = transport;
    transport.onData((chunk) => this.reader.push(chunk));
    this.startMs = performance.now();
    this.lastAdvanceMs = 0;
    this.timer = setInterval(() => this.advance(), 2);
    const before = getPriority(0);
    if (runAsHardware(0)) this.niceBefore = before;
  }

  async close(): Promise<void> {
    if (this.timer !== undefined) clearInterval(this.timer);
    this.timer = undefined;
    if (this.niceBefore !== undefined) {
      try {
        setPriority(0, this.niceBefore);
      } catch {
        // Lowering a priority back is always permitted; nothing to do if the thread is gone.
      }
      this.niceBefore = undefined;
    }
    await this.transport?.close().catch(() => undefined);
  }

  torqueOn(id: number): boolean {
    return this.byId.get(id)!.table[X_SERIES.torqueEnable.address] === 1;
  }

  /** When every servo's output went to zero (the latest of them), or undefined if one still drives. */
  allOutputsOffAtMs(): number | undefined {
    let latest = 0;
    for (const s of this.servos) {
      if (s.outputOffAtMs === undefined) return undefined;
      latest = Math.max(latest, s.outputOffAtMs);
    }
    return latest;
  }

  /** A hardware error, as the servo's firmware raises one: alert bit in every reply, torque off (shutdown). */
  raiseHardwareError(id: number, bits: number): void {
    const s = this.byId.get(id)!;
    s.table[X_SERIES.hardwareErrorStatus.address] = bits;
    this.setTorque(s, 0);
  }

  /** True once a servo's bus watchdog has stopped it (the controller is gone for good). */
  private watchdogExpired(): boolean {
    return this.servos.some((s) => s.table[X_SERIES.busWatchdog.address] === BUS_WATCHDOG_EXPIRED);
  }

  /** Wall time (ms) since listen(), the clock of the torque log. */
  nowMs(): number {
    return performance.now() - this.startMs;
  }

  /** Runs the physics up to wall time and the servos' bus watchdogs. */
  private advance(): void {
    const now = this.nowMs();
    // This process was not running (a loaded machine's scheduler: the 2 ms timer did not fire) while
    // instructions may have waited in the pty that a real servo, which never stops listening, would
    // have had on time. The time it was away counts neither against the bus watchdog nor as physics:
    // run on under the torque in force when it stopped, the arm gained speed that the commands
    // queued behind it would have taken away (a joint at 6.5 rad/s after a 120 ms stall, under a
    // controller that had kept to its period).
    const away = now - this.lastAdvanceMs;
    this.lastAdvanceMs = now;
    if (away > EMULATOR_AWAY_MS) {
      for (const s of this.servos) s.lastInstructionMs += away - 2;
      this.simOffset += (away - 2) / 1000;
    }
    for (const s of this.servos) {
      const watchdog = s.table[X_SERIES.busWatchdog.address];
      if (
        s.table[X_SERIES.torqueEnable.address] === 1 &&
        watchdog > 0 &&
        watchdog !== BUS_WATCHDOG_EXPIRED &&
        now - s.lastInstructionMs > watchdog * 20
      ) {
        s.table[X_SERIES.busWatchdog.address] = BUS_WATCHDOG_EXPIRED;
        s.outputOffAtMs ??= now;
      }
    }
    for (const s of this.servos) this.effort[s.joint] = this.outputTorque(s);
    this.sim.sendEffort(this.effort);
    const due = now / 1000 - this.simOffset - this.sim.simTime;
    // A controller that has not written for CONTROLLER_AWAY_MS is a descheduled test process (a
    // loaded machine), not the behaviour under test: the physics waits for it instead of running on
    // under its last torque, which on two busy cores once drove a joint past its velocity limit.
    const controllerAway =
      this.lastCommandMs > 0 && now - this.lastCommandMs > CONTROLLER_AWAY_MS && !this.watchdogExpired();
    if (this.paused || controllerAway) this.simOffset += Math.max(0, due);
    else if (due > 0) this.advanceHoldingUnpowered(Math.min(due, 0.05));
  }

  /**
   * Advances the physics; a joint whose servo has no output (torque off, watchdog, hardware error)
   * is held where it was, as an XM430's 353:1 gearbox holds the arm's weight. Without this the arm
   * fell under gravity until the run under test took control, and on a loaded machine (a slow
   * start) it was at 6.6 rad/s by then: a velocity fault that depended on the scheduler.
   */
  private advanceHoldingUnpowered(dt: number): void {
    const held = this.servos.filter((s) => !this.drives(s));
    if (held.length === 0) {
      this.sim.advance(dt);
      return;
    }
    const before = Float64Array.from(this.sim.readState().position);
    this.sim.advance(dt);
    const after = this.sim.readState();
    const q = Float64Array.from(after.position);
    const qd = Float64Array.from(after.velocity);
    for (const s of held) {
      q[s.joint] = before[s.joint];
      qd[s.joint] = 0;
    }
    this.sim.setState(q, qd);
  }

  /** Whether the servo's motor is powered and current-controlled (else its output is zero). */
  private drives(s: EmulatedServo): boolean {
    const t = s.table;
    return (
      t[X_SERIES.torqueEnable.address] === 1 &&
      t[X_SERIES.busWatchdog.address] !== BUS_WATCHDOG_EXPIRED &&
      t[X_SERIES.operatingMode.address] === 0 &&
      t[X_SERIES.hardwareErrorStatus.address] === 0
    );
  }

  private outputTorque(s: EmulatedServo): number {
    if (!this.drives(s)) return 0;
    const t = s.table;
    const units = readLE(t, X_SERIES.goalCurrent.address, 2, true);
    return units * s.cal.currentUnit * s.cal.torqueConstant * s.cal.direction;
  }

  /** Fills the Present Current/Velocity/Position fields from the physics. */
  private refreshPresent(s: EmulatedServo): void {
    const state = this.sim.readState();
    const { cal, table } = s;
    const q = state.position[s.joint];
    const qd = state.velocity[s.joint];
    const ticks = Math.round(cal.zeroOffset + (cal.direction * q * cal.ticksPerRevolution) / (2 * Math.PI));
    writeLE(table, X_SERIES.presentPosition.address, 4, ticks);
    writeLE(
      table,
      X_SERIES.presentVelocity.address,
      4,
      Math.round((cal.direction * qd) / cal.model.velocityUnit),
    );
    const current = Math.round(this.outputTorque(s) / (cal.direction * cal.currentUnit * cal.torqueConstant));
    writeLE(table, X_SERIES.presentCurrent.address, 2, current);
  }

  private onInstruction(p: ReceivedPacket): void {
    this.counts.instructions++;
    this.advance();
    const now = this.nowMs();
    const addressed = p.id === BROADCAST_ID ? this.servos : this.byId.has(p.id) ? [this.byId.get(p.id)!] : [];
    for (const s of addressed) s.lastInstructionMs = now;
    const params = p.params;
    switch (p.instruction) {
      case Instruction.PING:
        for (const s of addressed) this.reply(s, 0, s.table.subarray(0, 2), [s.table[6]]);
        return;
      case Instruction.READ: {
        if (p.id === BROADCAST_ID) return;
        const s = addressed[0];
        if (s === undefined) return;
        const address = readLE(params, 0, 2, false);
        const length = readLE(params, 2, 2, false);
        this.refreshPresent(s);
        this.reply(s, 0, s.table.subarray(address, address + length));
        return;
      }
      case Instruction.WRITE: {
        const s = addressed[0];
        if (s === undefined) return;
        const error = this.write(s, readLE(params, 0, 2, false), params.subarray(2));
        if (p.id !== BROADCAST_ID) this.reply(s, error);
        return;
      }
      case Instruction.REBOOT: {
        const s = addressed[0];
        if (s === undefined) return;
        this.setTorque(s, 0);
        s.table[X_SERIES.hardwareErrorStatus.address] = 0;
        s.table[X_SERIES.busWatchdog.address] = 0;
        this.reply(s, 0);
        return;
      }
      case Instruction.SYNC_READ: {
        this.counts.syncReads++;
        const address = readLE(params, 0, 2, false);
        const length = readLE(params, 2, 2, false);
        for (let k = 4; k < params.length; k++) {
          const s = this.byId.get(params[k]);
          if (s === undefined) continue;
          s.lastInstructionMs = now;
          this.refreshPresent(s);
          this.reply(s, 0, s.table.subarray(address, address + length));
        }
        return;
      }
      case Instruction.SYNC_WRITE: {
        this.counts.syncWrites++;
        this.lastCommandMs = now;
        const address = readLE(params, 0, 2, false);
        const length = readLE(params, 2, 2, false);
        for (let k = 4; k + length < params.length; k += 1 + length) {
          const s = this.byId.get(params[k]);
          if (s === undefined) continue;
          s.lastInstructionMs = now;
          this.write(s, address, params.subarray(k + 1, k + 1 + length));
        }
        return;
      }
      default:
        for (const s of addressed) if (p.id !== BROADCAST_ID) this.reply(s, 2); // instruction error
    }
  }

  /** Applies a write as the servo would; returns the status error code (0 when accepted). */
  private write(s: EmulatedServo, address: number, data: Uint8Array): number {
    const t = s.table;
    const torqueOn = t[X_SERIES.torqueEnable.address] === 1;
    if (address < 64 && torqueOn) return 7; // access error: EEPROM is locked while torque is on
    // Registered Instruction(69), Hardware Error Status(70) and everything from Realtime Tick(120) on are read-only.
    if ((address <= 70 && address + data.length > 69) || address + data.length > 120) return 7;
    if (address === X_SERIES.goalCurrent.address) {
      if (t[X_SERIES.busWatchdog.address] === BUS_WATCHDOG_EXPIRED) return 4; // data range error
      const limit = readLE(t, X_SERIES.currentLimit.address, 2, false);
      const value = readLE(data, 0, 2, true);
      if (value > limit || value < -limit) return 4;
    }
    if (address === X_SERIES.torqueEnable.address) {
      if (data[0] === 1 && t[X_SERIES.hardwareErrorStatus.address] !== 0) return 1; // result fail
      this.setTorque(s, data[0]);
      return 0;
    }
    t.set(data, address);
    return 0;
  }

  private setTorque(s: EmulatedServo, value: number): void {
    const was = s.table[X_SERIES.torqueEnable.address];
    s.table[X_SERIES.torqueEnable.address] = value;
    if (was === value) return;
    const atMs = this.nowMs();
    this.torqueLog.push({ id: s.id, on: value === 1, atMs });
    if (value === 1) s.outputOffAtMs = undefined;
    else s.outputOffAtMs ??= atMs;
  }

  private reply(
    s: EmulatedServo,
    error: number,
    data: ArrayLike<number> = [],
    more: ArrayLike<number> = [],
  ): void {
    if (this.faults.silent.has(s.id) || this.transport === undefined) return;
    const alert = s.table[X_SERIES.hardwareErrorStatus.address] !== 0 ? ALERT_BIT : 0;
    const params = new Uint8Array(data.length + more.length);
    params.set(data);
    params.set(more, data.length);
    const packet = encodeStatus(s.id, error | alert, params);
    if (this.faults.corruptCrc) packet[packet.length - 1] ^= 0x5a;
    this.counts.replies++;
    const f = this.faults;
    if (f.dropFraction + f.corruptFraction + f.garbageFraction > 0) {
      const u = this.noise.uniform();
      if (u < f.dropFraction) {
        this.injected.dropped++;
        return;
      }
      if (u < f.dropFraction + f.corruptFraction) {
        // Anywhere after FF FF FD 00; a flipped length byte can also make the reader wait for bytes
        // that never come, or swallow the next servo's reply.
        const at = 4 + this.noise.int(packet.length - 4);
        packet[at] ^= 1 << this.noise.int(8);
        this.injected.corrupted++;
      } else if (u < f.dropFraction + f.corruptFraction + f.garbageFraction) {
        const garbage = new Uint8Array(1 + this.noise.int(12));
        for (let i = 0; i < garbage.length; i++) {
          const v = this.noise.uniform();
          garbage[i] = v < 0.4 ? 0xff : v < 0.55 ? 0xfd : v < 0.7 ? 0x00 : this.noise.int(256);
        }
        this.injected.garbage++;
        this.transport.write(garbage);
      }
    }
    this.transport.write(packet);
  }
}
