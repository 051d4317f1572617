/**
 * Per-joint servo calibration (calibration/arm.yaml): which servo drives which URDF joint and how
 * its raw units map to SI. Loaded and validated here; every error names the file, the joint and the
 * field. Written by `mbpo-arm calibrate`.
 *
 *   joint angle (rad)  q = direction · (ticks − zero_offset) · 2π / ticks_per_revolution
 *   joint torque (N·m) τ = direction · current_units · current_unit · torque_constant
 *
 * Only the driver converts; everything above it sees radians and N·m.
 */
import { readFileSync } from "node:fs";
import { parse as parseYaml } from "yaml";
import { z } from "zod";
import { currentModeRefusal, modelByName, type ServoModel } from "./control-table.js";
import { MAX_SERVO_ID } from "./protocol.js";

export interface JointCalibration {
  joint: string;
  id: number;
  model: ServoModel;
  /** +1 when the servo's positive rotation is the joint's positive rotation, −1 when opposite. */
  direction: 1 | -1;
  /** Encoder ticks at joint angle 0. */
  zeroOffset: number;
  ticksPerRevolution: number;
  /** Goal/Present Current unit (A). */
  currentUnit: number;
  /** Output torque per ampere (N·m/A). */
  torqueConstant: number;
  /** Largest current the servo may draw (A); written to its Current Limit(38) at start. */
  currentLimit: number;
}

export interface Calibration {
  /** In the order of the joint names it was validated against (the URDF's). */
  joints: JointCalibration[];
}

export class CalibrationError extends Error {
  override name = "CalibrationError";
}

const JointSchema = z
  .object({
    id: z.number().int().min(0).max(MAX_SERVO_ID),
    model: z.string().min(1),
    direction: z.union([z.literal(1), z.literal(-1)], { error: "must be 1 or -1" }),
    zero_offset: z.number().int(),
    ticks_per_revolution: z.number().int().positive(),
    current_unit: z.number().positive(),
    torque_constant: z.number().positive(),
    current_limit: z.number().positive(),
  })
  .strict();

const FileSchema = z.object({ joints: z.record(z.string(), z.unknown()) }).strict();

/** A current unit may differ from the model's nominal one by this fraction (a measured value). */
const CURRENT_UNIT_TOLERANCE = 0.05;

/**
 * Validates calibration text. `jointNames` (the URDF's moving joints) must each appear exactly
 * once; the result follows their order.
 */
export function parseCalibration(text: string, source: string, jointNames: readonly string[]): Calibration {
  let doc: unknown;
  try {
    doc = parseYaml(text);
  } catch (err) {
    throw new CalibrationError(`${source}: not valid YAML: ${(err as Error).message.split("\n")[0]}`);
  }
  const top = FileSchema.safeParse(doc ?? {});
  if (!top.success) {
    const issue = top.error.issues[0]!;
    if (issue.code === "unrecognized_keys")
      throw new CalibrationError(
        `${source}: unknown top-level key "${issue.keys[0]}" (expected only "joints")`,
      );
    throw new CalibrationError(`${source}: expected a mapping "joints: {<joint name>: {...}}"`);
  }
  const entries = top.data.joints;
  for (const name of Object.keys(entries)) {
    if (!jointNames.includes(name))
      throw new CalibrationError(
        `${source}: joint "${name}" is not a moving joint of the robot (its joints: ${jointNames.join(", ")})`,
      );
  }
  const joints: JointCalibration[] = [];
  const byId = new Map<number, string>();
  for (const name of jointNames) {
    if (!(name in entries)) throw new CalibrationError(`${source}: joint "${name}" is missing`);
    const j = parseJoint(entries[name], source, name);
    const other = byId.get(j.id);
    if (other !== undefined)
      throw new CalibrationError(
        `${source}: joint "${name}": field "id": servo ID ${j.id} is also joint "${other}"`,
      );
    byId.set(j.id, name);
    joints.push(j);
  }
  return { joints };
}

export function loadCalibration(path: string, jointNames: readonly string[]): Calibration {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new CalibrationError(
      `${path}: cannot read the calibration file (${code ?? err}); record one with: mbpo-arm calibrate --port <port>`,
    );
  }
  return parseCalibration(text, path, jointNames);
}

function parseJoint(raw: unknown, source: string, joint: string): JointCalibration {
  const where = `${source}: joint "${joint}"`;
  if (raw === null || typeof raw !== "object" || Array.isArray(raw))
    throw new CalibrationError(`${where}: expected a mapping of fields (id, model, direction, ...)`);
  const parsed = JointSchema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    if (issue.code === "unrecognized_keys")
      throw new CalibrationError(`${where}: unknown field "${issue.keys[0]}"`);
    const field = String(issue.path[0] ?? "?");
    const value = (raw as Record<string, unknown>)[field];
    if (value === undefined) throw new CalibrationError(`${where}: field "${field}" is missing`);
    throw new CalibrationError(`${where}: field "${field}": ${issue.message} (got ${JSON.stringify(value)})`);
  }
  const f = parsed.data;
  const refusal = currentModeRefusal(f.model);
  if (refusal !== undefined) throw new CalibrationError(`${where}: field "model": ${refusal}`);
  const model = modelByName(f.model)!;
  if (Math.abs(f.current_unit - model.currentUnit) > CURRENT_UNIT_TOLERANCE * model.currentUnit)
    throw new CalibrationError(
      `${where}: field "current_unit": ${f.current_unit} A does not match the ${model.name}'s ${model.currentUnit} A`,
    );
  const maxCurrent = model.maxCurrentLimit * f.current_unit;
  if (f.current_limit > maxCurrent + 1e-9)
    throw new CalibrationError(
      `${where}: field "current_limit": ${f.current_limit} A is above the ${model.name}'s largest, ${maxCurrent.toFixed(3)} A`,
    );
  if (Math.abs(f.zero_offset) > 1 << 30)
    throw new CalibrationError(`${where}: field "zero_offset": ${f.zero_offset} ticks is out of range`);
  return {
    joint,
    id: f.id,
    model,
    direction: f.direction,
    zeroOffset: f.zero_offset,
    ticksPerRevolution: f.ticks_per_revolution,
    currentUnit: f.current_unit,
    torqueConstant: f.torque_constant,
    currentLimit: f.current_limit,
  };
}

/** Current Limit(38) value (current units) of a joint. */
export function currentLimitUnits(j: JointCalibration): number {
  return Math.floor(j.currentLimit / j.currentUnit + 1e-9);
}

/** The calibration as YAML text, with a header comment. */
export function formatCalibration(cal: Calibration, header: string[]): string {
  const lines = header.map((h) => `# ${h}`);
  lines.push("joints:");
  for (const j of cal.joints) {
    const field = (text: string, comment?: string) =>
      lines.push(comment === undefined ? `    ${text}` : `    ${text.padEnd(28)}# ${comment}`);
    lines.push(`  ${j.joint}:`);
    field(`id: ${j.id}`);
    field(`model: ${j.model.name}`);
    field(`direction: ${j.direction}`, "+1: servo and joint turn the same way");
    field(`zero_offset: ${j.zeroOffset}`, "encoder ticks at joint angle 0");
    field(`ticks_per_revolution: ${j.ticksPerRevolution}`);
    field(`current_unit: ${j.currentUnit}`, "A per Goal/Present Current unit");
    field(`torque_constant: ${j.torqueConstant}`, "N·m/A at the output shaft");
    field(`current_limit: ${j.currentLimit}`, "A, written to the servo's Current Limit(38)");
  }
  return `${lines.join("\n")}\n`;
}
