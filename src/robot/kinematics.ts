/**
 * Forward kinematics of every link (fixed ones included) and geometric Jacobians, in the root
 * (base) frame. Call update(q) once per state; the queries then read the cached placements.
 * Allocation-free after construction.
 */
import type { RobotModel } from "./types.js";

export class Kinematics {
  readonly dof: number;
  readonly linkCount: number;
  private readonly parent: Int32Array;
  private readonly jointIndex: Int32Array;
  private readonly prismatic: Uint8Array;
  private readonly axis: Float64Array;
  /** Joint origin in the parent link frame, and R0·K, R0·K², R0·axis as in Dynamics. */
  private readonly originR: Float64Array;
  private readonly originP: Float64Array;
  private readonly originRK: Float64Array;
  private readonly originRK2: Float64Array;
  private readonly originRaxis: Float64Array;
  private readonly names: Map<string, number>;
  /** World placement of each link: rotation (row-major) and position. */
  private readonly worldR: Float64Array;
  private readonly worldP: Float64Array;
  private readonly localR: Float64Array;

  constructor(model: RobotModel) {
    const L = model.links.length;
    this.dof = model.dof;
    this.linkCount = L;
    this.parent = new Int32Array(L);
    this.jointIndex = new Int32Array(L);
    this.prismatic = new Uint8Array(L);
    this.axis = new Float64Array(3 * L);
    this.originR = new Float64Array(9 * L);
    this.originP = new Float64Array(3 * L);
    this.originRK = new Float64Array(9 * L);
    this.originRK2 = new Float64Array(9 * L);
    this.originRaxis = new Float64Array(3 * L);
    this.worldR = new Float64Array(9 * L);
    this.worldP = new Float64Array(3 * L);
    this.localR = new Float64Array(9);
    this.names = new Map();
    model.links.forEach((link, l) => {
      this.names.set(link.name, l);
      this.parent[l] = link.parent;
      if (link.parent >= l) throw new Error(`Kinematics: link "${link.name}" comes before its parent`);
      this.jointIndex[l] = link.jointIndex;
      this.prismatic[l] = link.jointIndex >= 0 && model.joints[link.jointIndex].type === "prismatic" ? 1 : 0;
      this.axis.set(link.axis, 3 * l);
      this.originR.set(link.origin.R, 9 * l);
      this.originP.set(link.origin.p, 3 * l);
      const [x, y, z] = link.axis;
      const K = [0, -z, y, z, 0, -x, -y, x, 0];
      const R0 = link.origin.R;
      for (let i = 0; i < 3; i++) {
        this.originRaxis[3 * l + i] = R0[3 * i] * x + R0[3 * i + 1] * y + R0[3 * i + 2] * z;
        for (let j = 0; j < 3; j++)
          this.originRK[9 * l + 3 * i + j] =
            R0[3 * i] * K[j] + R0[3 * i + 1] * K[3 + j] + R0[3 * i + 2] * K[6 + j];
      }
      for (let i = 0; i < 3; i++)
        for (let j = 0; j < 3; j++) {
          const o = 9 * l + 3 * i;
          this.originRK2[o + j] =
            this.originRK[o] * K[j] + this.originRK[o + 1] * K[3 + j] + this.originRK[o + 2] * K[6 + j];
        }
    });
  }

  /** Index of a link by name; throws naming the known links when there is none. */
  linkIndex(name: string): number {
    const index = this.names.get(name);
    if (index === undefined) {
      throw new Error(`Kinematics: no link named "${name}" (links: ${[...this.names.keys()].join(", ")})`);
    }
    return index;
  }

  /** Places every link for joint positions q (length dof). */
  update(q: Float64Array): void {
    const { parent, worldR, worldP, originR, originP, localR } = this;
    for (let l = 0; l < this.linkCount; l++) {
      const o = 9 * l;
      const p = 3 * l;
      const lambda = parent[l];
      if (lambda < 0) {
        for (let k = 0; k < 9; k++) worldR[o + k] = originR[o + k];
        worldP[p] = originP[p];
        worldP[p + 1] = originP[p + 1];
        worldP[p + 2] = originP[p + 2];
        continue;
      }
      // Local placement: joint origin moved by the joint.
      const j = this.jointIndex[l];
      let px = originP[p];
      let py = originP[p + 1];
      let pz = originP[p + 2];
      if (j < 0) {
        for (let k = 0; k < 9; k++) localR[k] = originR[o + k];
      } else if (this.prismatic[l] === 1) {
        for (let k = 0; k < 9; k++) localR[k] = originR[o + k];
        px += this.originRaxis[p] * q[j];
        py += this.originRaxis[p + 1] * q[j];
        pz += this.originRaxis[p + 2] * q[j];
      } else {
        const s = Math.sin(q[j]);
        const vers = 1 - Math.cos(q[j]);
        for (let k = 0; k < 9; k++)
          localR[k] = originR[o + k] + s * this.originRK[o + k] + vers * this.originRK2[o + k];
      }
      // World = parent world ∘ local.
      const po = 9 * lambda;
      const pp = 3 * lambda;
      for (let a = 0; a < 3; a++) {
        const r0 = worldR[po + 3 * a];
        const r1 = worldR[po + 3 * a + 1];
        const r2 = worldR[po + 3 * a + 2];
        for (let b = 0; b < 3; b++)
          worldR[o + 3 * a + b] = r0 * localR[b] + r1 * localR[3 + b] + r2 * localR[6 + b];
        worldP[p + a] = r0 * px + r1 * py + r2 * pz + worldP[pp + a];
      }
    }
  }

  /** Origin of a link's frame in the root frame (after update). */
  linkPosition(link: number, out: Float64Array): void {
    out[0] = this.worldP[3 * link];
    out[1] = this.worldP[3 * link + 1];
    out[2] = this.worldP[3 * link + 2];
  }

  /** Orientation of a link's frame in the root frame, row-major 3×3 (after update). */
  linkRotation(link: number, out: Float64Array): void {
    for (let k = 0; k < 9; k++) out[k] = this.worldR[9 * link + k];
  }

  /**
   * Geometric Jacobian of a point fixed in a link (default its origin), after update: out is
   * 6×dof row-major, rows vx, vy, vz, wx, wy, wz in the root frame, so [v; ω] = J q̇. Columns of
   * joints that do not carry the link are zero.
   */
  jacobian(link: number, out: Float64Array, point?: Float64Array): void {
    const n = this.dof;
    const { worldR, worldP, axis } = this;
    out.fill(0, 0, 6 * n);
    const o = 9 * link;
    let px = worldP[3 * link];
    let py = worldP[3 * link + 1];
    let pz = worldP[3 * link + 2];
    if (point !== undefined) {
      const x = point[0];
      const y = point[1];
      const z = point[2];
      px += worldR[o] * x + worldR[o + 1] * y + worldR[o + 2] * z;
      py += worldR[o + 3] * x + worldR[o + 4] * y + worldR[o + 5] * z;
      pz += worldR[o + 6] * x + worldR[o + 7] * y + worldR[o + 8] * z;
    }
    for (let l = link; l >= 0; l = this.parent[l]) {
      const j = this.jointIndex[l];
      if (j < 0) continue;
      // The axis is the same in the joint frame and the link frame (a joint moves along its axis).
      const lo = 9 * l;
      const ax = axis[3 * l];
      const ay = axis[3 * l + 1];
      const az = axis[3 * l + 2];
      const wx = worldR[lo] * ax + worldR[lo + 1] * ay + worldR[lo + 2] * az;
      const wy = worldR[lo + 3] * ax + worldR[lo + 4] * ay + worldR[lo + 5] * az;
      const wz = worldR[lo + 6] * ax + worldR[lo + 7] * ay + worldR[lo + 8] * az;
      if (this.prismatic[l] === 1) {
        out[j] = wx;
        out[n + j] = wy;
        out[2 * n + j] = wz;
      } else {
        // v = ω × (point − joint origin); the link origin lies on its revolute axis.
        const dx = px - worldP[3 * l];
        const dy = py - worldP[3 * l + 1];
        const dz = pz - worldP[3 * l + 2];
        out[j] = wy * dz - wz * dy;
        out[n + j] = wz * dx - wx * dz;
        out[2 * n + j] = wx * dy - wy * dx;
        out[3 * n + j] = wx;
        out[4 * n + j] = wy;
        out[5 * n + j] = wz;
      }
    }
  }
}
