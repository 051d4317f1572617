/**
 * Maps a sensor_msgs/JointState, whose joints come in any order and may include others (a gripper,
 * a camera pan), onto the model's joint order. The name → index table is rebuilt only when the
 * message's name list changes, so the steady state allocates nothing.
 */
import type { JointStateMsg } from "./rclnodejs.js";

export type MapResult =
  | { ok: true }
  /** One line naming what was wrong with the message. */
  | { ok: false; error: string };

const OK: MapResult = { ok: true };

export class JointStateMapper {
  readonly jointNames: readonly string[];
  /** Where each model joint sits in the last name list (index into the message arrays). */
  private readonly source: Int32Array;
  private cachedNames: string[] = [];
  private cachedError: string | undefined;

  constructor(jointNames: readonly string[]) {
    this.jointNames = jointNames;
    this.source = new Int32Array(jointNames.length).fill(-1);
  }

  /**
   * Copies the message's position, velocity and effort of the model's joints into the outputs.
   * An empty velocity or effort array leaves `hasVelocity` / `hasEffort` false and its output
   * untouched. Values are copied as they are: non-finite ones are the safety watchdog's to judge.
   */
  map(
    msg: JointStateMsg,
    position: Float64Array,
    velocity: Float64Array,
    effort: Float64Array,
    out: { hasVelocity: boolean; hasEffort: boolean },
  ): MapResult {
    const names = msg.name;
    if (!Array.isArray(names)) return { ok: false, error: "joint_states: no name array" };
    if (!this.sameNames(names)) this.rebuild(names);
    if (this.cachedError !== undefined) return { ok: false, error: this.cachedError };
    const n = names.length;
    const p = msg.position;
    const v = msg.velocity;
    const e = msg.effort;
    if (p === undefined || p === null || p.length !== n) {
      return {
        ok: false,
        error: `joint_states: ${p?.length ?? 0} positions for ${n} names (one position per name expected)`,
      };
    }
    const vLen = v?.length ?? 0;
    const eLen = e?.length ?? 0;
    if (vLen !== 0 && vLen !== n) {
      return { ok: false, error: `joint_states: ${vLen} velocities for ${n} names (expected ${n} or none)` };
    }
    if (eLen !== 0 && eLen !== n) {
      return { ok: false, error: `joint_states: ${eLen} efforts for ${n} names (expected ${n} or none)` };
    }
    const src = this.source;
    for (let i = 0; i < src.length; i++) {
      const k = src[i];
      position[i] = p[k];
      if (vLen !== 0) velocity[i] = v[k];
      if (eLen !== 0) effort[i] = e[k];
    }
    out.hasVelocity = vLen !== 0;
    out.hasEffort = eLen !== 0;
    return OK;
  }

  private sameNames(names: string[]): boolean {
    const cached = this.cachedNames;
    if (cached.length !== names.length) return false;
    for (let i = 0; i < names.length; i++) if (cached[i] !== names[i]) return false;
    return true;
  }

  private rebuild(names: string[]): void {
    this.cachedNames = names.slice();
    this.cachedError = undefined;
    const missing: string[] = [];
    for (let i = 0; i < this.jointNames.length; i++) {
      const k = names.indexOf(this.jointNames[i]);
      this.source[i] = k;
      if (k < 0) missing.push(this.jointNames[i]);
      else if (names.indexOf(this.jointNames[i], k + 1) >= 0) {
        this.cachedError = `joint_states: joint "${this.jointNames[i]}" appears twice`;
      }
    }
    if (missing.length > 0) {
      this.cachedError = `joint_states lacks joint${missing.length > 1 ? "s" : ""} ${missing
        .map((m) => `"${m}"`)
        .join(", ")} (has: ${names.join(", ") || "none"})`;
    }
  }
}

/**
 * Builds the permutation from the model's joint order to another order (the effort controller's
 * `joints` list): out[k] = model index of names[k]. Throws naming a joint that is unknown, missing
 * or repeated.
 */
export function jointOrder(
  modelJoints: readonly string[],
  names: readonly string[],
  what: string,
): Int32Array {
  if (names.length !== modelJoints.length) {
    throw new Error(
      `${what}: ${names.length} joints [${names.join(", ")}], the robot has ${modelJoints.length} [${modelJoints.join(", ")}]`,
    );
  }
  const order = new Int32Array(names.length);
  const seen = new Set<string>();
  for (let k = 0; k < names.length; k++) {
    const i = modelJoints.indexOf(names[k]);
    if (i < 0)
      throw new Error(`${what}: unknown joint "${names[k]}" (the robot has ${modelJoints.join(", ")})`);
    if (seen.has(names[k])) throw new Error(`${what}: joint "${names[k]}" listed twice`);
    seen.add(names[k]);
    order[k] = i;
  }
  return order;
}
