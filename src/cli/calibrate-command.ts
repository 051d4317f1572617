/**
 * `mbpo-arm calibrate --port P`: records the servo calibration of an arm (calibration/arm.yaml).
 *
 * Guided: finds each joint's servo (--ids, the IDs of an existing calibration file, or a scan that
 * finds exactly one servo per joint, in ascending ID order for the URDF's joint order), turns torque
 * off so the arm can be moved by hand, records the encoder ticks of the zero pose, then asks the user
 * to turn each joint a little in its positive direction to learn whether servo and joint turn the
 * same way. Torque constant and current limit come from an existing file, else from the servo model
 * (the limit is the URDF effort limit over the torque constant). The result is validated, then
 * written. Lines are read from stdin: interactive on a terminal, scriptable otherwise; nothing is
 * written unless every step succeeds, and torque stays off throughout.
 */
import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import { dirname } from "node:path";
import { createInterface } from "node:readline";
import type { Readable, Writable } from "node:stream";
import { type Command, InvalidArgumentError } from "commander";
import type { DynamixelBus } from "../drivers/dynamixel/bus.js";
import {
  type Calibration,
  formatCalibration,
  type JointCalibration,
  loadCalibration,
  parseCalibration,
} from "../drivers/dynamixel/calibration.js";
import {
  currentModeRefusal,
  modelByNumber,
  type ServoModel,
  X_SERIES,
} from "../drivers/dynamixel/control-table.js";
import { DEFAULT_BAUD } from "../drivers/dynamixel/driver.js";
import { loadRobotDescription } from "../robot/description.js";
import { resolveDataPath } from "../util/paths.js";
import { baudRate, openBus } from "./dynamixel-command.js";

/** A joint must move at least this many ticks (about 4°) for its direction to count. */
const MIN_DIRECTION_TICKS = 50;
const DIRECTION_ATTEMPTS = 3;

export interface CalibrateOptions {
  port: string;
  baud: number;
  urdf: string;
  output: string;
  ids?: number[];
  input: Readable;
  prompts: Writable;
}

export async function runCalibrate(options: CalibrateOptions): Promise<Calibration> {
  const model = loadRobotDescription(options.urdf);
  const jointNames = model.joints.map((j) => j.name);
  const out = (line: string) => options.prompts.write(`${line}\n`);
  const previous = existingCalibration(options.output, jointNames);
  const bus = await openBus(options.port, options.baud);
  const lines = createInterface({ input: options.input, terminal: false })[Symbol.asyncIterator]();
  const waitForEnter = async (prompt: string) => {
    out(`${prompt}\n  Press Enter when ready.`);
    const next = await lines.next();
    if (next.done)
      throw new Error("calibrate: input ended before the calibration was finished; nothing written");
  };
  try {
    const ids = await chooseIds(bus, options, jointNames, previous, out);
    const servos: ServoModel[] = [];
    for (let i = 0; i < ids.length; i++) {
      const reply = await bus.ping(ids[i]);
      const refusal = currentModeRefusal(reply.modelNumber);
      if (refusal !== undefined)
        throw new Error(`calibrate: joint "${jointNames[i]}" (servo ID ${ids[i]}): ${refusal}`);
      servos.push(modelByNumber(reply.modelNumber)!);
      await bus.write(ids[i], X_SERIES.torqueEnable, 0, { allowAlert: true });
    }
    out(`Servos: ${jointNames.map((n, i) => `${n} = ID ${ids[i]} (${servos[i].name})`).join(", ")}.`);
    out("Torque is OFF on every servo: the arm is limp. Hold it.");

    await waitForEnter(
      "Step 1: move the arm by hand to its zero pose, where every joint angle is 0 as the URDF defines it.",
    );
    const zero = await readPositions(bus, ids);
    out(`  zero pose recorded: ${zero.map((t, i) => `${jointNames[i]} ${t}`).join(", ")} ticks`);

    const directions: (1 | -1)[] = [];
    for (let i = 0; i < ids.length; i++) {
      const joint = model.joints[i];
      const axis = model.links[model.jointLink[i]].axis.map((v) => Number(v.toFixed(3))).join(" ");
      let direction: 1 | -1 | undefined;
      for (let attempt = 0; attempt < DIRECTION_ATTEMPTS && direction === undefined; attempt++) {
        await waitForEnter(
          `Step ${i + 2}: turn ${joint.name} alone about 20° in its POSITIVE direction ` +
            `(counter-clockwise looking along its axis [${axis}] towards you), and hold it there.`,
        );
        const [now] = await readPositions(bus, [ids[i]]);
        const delta = now - zero[i];
        if (Math.abs(delta) >= MIN_DIRECTION_TICKS) direction = delta > 0 ? 1 : -1;
        else out(`  ${joint.name} moved only ${delta} ticks; turn it further.`);
      }
      if (direction === undefined)
        throw new Error(
          `calibrate: ${joint.name} did not move by ${MIN_DIRECTION_TICKS} ticks; nothing written`,
        );
      directions.push(direction);
      out(`  ${joint.name}: servo turns ${direction === 1 ? "the same way as" : "opposite to"} the joint`);
    }

    const joints: JointCalibration[] = jointNames.map((name, i) => {
      const old = previous?.joints[i];
      const servo = servos[i];
      const torqueConstant =
        old !== undefined && old.model.name === servo.name ? old.torqueConstant : servo.nominalTorqueConstant;
      const largest = servo.maxCurrentLimit * servo.currentUnit;
      const currentLimit =
        old !== undefined && old.model.name === servo.name
          ? old.currentLimit
          : Math.min(largest, Math.floor((model.joints[i].effort / torqueConstant) * 100) / 100);
      return {
        joint: name,
        id: ids[i],
        model: servo,
        direction: directions[i],
        zeroOffset: zero[i],
        ticksPerRevolution: servo.ticksPerRevolution,
        currentUnit: servo.currentUnit,
        torqueConstant,
        currentLimit,
      };
    });
    const text = formatCalibration({ joints }, [
      `Servo calibration of ${options.urdf} for the Dynamixel driver,`,
      `recorded by mbpo-arm calibrate on ${options.port} at ${new Date().toISOString()}.`,
    ]);
    // What is written must load: validate the text itself.
    const calibration = parseCalibration(text, options.output, jointNames);
    mkdirSync(dirname(options.output), { recursive: true });
    writeFileSync(options.output, text);
    out(`Wrote ${options.output}. Torque is still off.`);
    return calibration;
  } finally {
    await bus.close();
  }
}

function existingCalibration(path: string, jointNames: readonly string[]): Calibration | undefined {
  if (!existsSync(path)) return undefined;
  try {
    return loadCalibration(path, jointNames);
  } catch {
    return undefined;
  }
}

async function chooseIds(
  bus: DynamixelBus,
  options: CalibrateOptions,
  jointNames: readonly string[],
  previous: Calibration | undefined,
  out: (line: string) => void,
): Promise<number[]> {
  if (options.ids !== undefined) {
    if (options.ids.length !== jointNames.length)
      throw new Error(
        `calibrate: --ids names ${options.ids.length} servos, the arm has ${jointNames.length} joints`,
      );
    return options.ids;
  }
  if (previous !== undefined) {
    out(`Using the servo IDs of ${options.output}.`);
    return previous.joints.map((j) => j.id);
  }
  out("Scanning the bus...");
  const found = (await bus.scan()).map((s) => s.id).sort((a, b) => a - b);
  if (found.length !== jointNames.length)
    throw new Error(
      `calibrate: found ${found.length} servo(s) (IDs ${found.join(", ") || "none"}) for ${jointNames.length} joints; ` +
        `name them in joint order with --ids, e.g. --ids 11,12,13,14`,
    );
  return found;
}

/** Present Position of each servo (ticks). */
async function readPositions(bus: DynamixelBus, ids: readonly number[]): Promise<number[]> {
  const ticks: number[] = [];
  for (const id of ids) ticks.push(await bus.readValue(id, X_SERIES.presentPosition, true));
  return ticks;
}

function idList(value: string): number[] {
  const ids = value.split(",").map((v) => Number(v.trim()));
  if (ids.some((id) => !Number.isInteger(id) || id < 0 || id > 252))
    throw new InvalidArgumentError("expected servo IDs 0–252 separated by commas, e.g. 11,12,13,14");
  return ids;
}

export function registerCalibrateCommand(program: Command): void {
  program
    .command("calibrate")
    .description(
      "record the servo calibration (IDs, zero pose, directions) of a Dynamixel arm, guided step by step",
    )
    .requiredOption("--port <device>", "serial device, e.g. /dev/ttyUSB0")
    .option("--baud <n>", "baud rate", baudRate, DEFAULT_BAUD)
    .option("--urdf <file>", "robot description", "urdf/arm.urdf")
    .option("--output <file>", "calibration file to write", "calibration/arm.yaml")
    .option("--ids <list>", "servo IDs in the URDF's joint order, e.g. 11,12,13,14 (default: found)", idList)
    .action(async (flags: { port: string; baud: number; urdf: string; output: string; ids?: number[] }) => {
      await runCalibrate({
        port: flags.port,
        baud: flags.baud,
        urdf: resolveDataPath(flags.urdf),
        output: flags.output,
        ids: flags.ids,
        input: process.stdin,
        prompts: process.stdout,
      });
      // stdin may keep the process alive after the last prompt.
      process.stdin.pause();
    });
}
