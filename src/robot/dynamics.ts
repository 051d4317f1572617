/**
 * Rigid-body dynamics of a kinematic tree on typed arrays: RNEA (inverse dynamics), CRBA (mass
 * matrix) and ABA (forward dynamics), in body coordinates, after Featherstone, "Rigid Body
 * Dynamics Algorithms" (2008), chapters 5–7, and Pinocchio's structure.
 *
 * Bodies are the moving joints' links, in the model's joint order (a topological order, so a
 * parent body always has a smaller index). Links attached by fixed joints are merged into the body
 * they ride on: their inertia is added to it, and the fixed placements between two moving joints
 * are composed into one constant "tree" transform. Links welded to the root are the world.
 *
 * Joint model: the child body frame is the joint frame moved by q about (revolute, continuous) or
 * along (prismatic) the unit axis, so the motion subspace in body coordinates is the constant
 * S = (axis, 0) or (0, axis). Per call only the joint rotation changes:
 * R(q) = R0·Rot(axis, q) = R0 + sin q·(R0 K) + (1 − cos q)·(R0 K²), with K = axis×, and the
 * products R0 K and R0 K² are precomputed.
 *
 * Each joint's armature (reflected rotor inertia, JointSpec.armature) adds to its own diagonal of M:
 * RNEA adds armature·q̈, CRBA adds it to M_ii, ABA to D_i = Sᵀ IA S, as MuJoCo does.
 *
 * Every method is allocation-free. No joint damping or friction here: the simulator adds them.
 */
import {
  addForceToParent,
  addInertiaToParent,
  addRigidBodyInertia,
  crossForce,
  motionToChild,
  mulInertia,
} from "./spatial.js";
import type { Mat3, RobotModel, Transform, Vec3 } from "./types.js";

function compose(a: Transform, b: Transform): Transform {
  const R: Mat3 = [0, 0, 0, 0, 0, 0, 0, 0, 0];
  for (let i = 0; i < 3; i++)
    for (let j = 0; j < 3; j++)
      R[3 * i + j] = a.R[3 * i] * b.R[j] + a.R[3 * i + 1] * b.R[3 + j] + a.R[3 * i + 2] * b.R[6 + j];
  const p: Vec3 = [0, 0, 0];
  for (let i = 0; i < 3; i++)
    p[i] = a.R[3 * i] * b.p[0] + a.R[3 * i + 1] * b.p[1] + a.R[3 * i + 2] * b.p[2] + a.p[i];
  return { R, p };
}

/**
 * Velocity scale v_s (rad/s or m/s) of the tanh that smooths a joint's Coulomb friction,
 * friction·tanh(q̇ / v_s): how the twin (src/drivers/sim.ts) and the URDF prior under the learned
 * model (src/mbpo/model-prior.ts) read URDF `<dynamics friction>`.
 */
export const COULOMB_SMOOTHING = 0.25;

/** Inertial parameters per body (bodyParameters, inertialRegressor). */
export const BODY_PARAMETERS = 10;

/**
 * Where each unit parameter sits in a 6×6 spatial inertia [[I, h×], [h×ᵀ, m·1]] (row-major,
 * entries given as [index, value]).
 */
const UNIT_PARAMETER: [number, number][][] = [
  [
    [21, 1],
    [28, 1],
    [35, 1],
  ], // m
  // h×: [[0, −hz, hy], [hz, 0, −hx], [−hy, hx, 0]] at rows 0–2, columns 3–5, and its transpose
  [
    [11, -1],
    [16, 1],
    [31, -1],
    [26, 1],
  ], // h_x: (1,2)→ −hx, (2,1)→ hx
  [
    [5, 1],
    [15, -1],
    [30, 1],
    [20, -1],
  ], // h_y: (0,2)→ hy, (2,0)→ −hy
  [
    [9, 1],
    [4, -1],
    [19, 1],
    [24, -1],
  ], // h_z: (1,0)→ hz, (0,1)→ −hz
  [[0, 1]], // I_xx
  [
    [1, 1],
    [6, 1],
  ], // I_xy
  [
    [2, 1],
    [12, 1],
  ], // I_xz
  [[7, 1]], // I_yy
  [
    [8, 1],
    [13, 1],
  ], // I_yz
  [[14, 1]], // I_zz
];

const IDENTITY: Transform = { R: [1, 0, 0, 0, 1, 0, 0, 0, 1], p: [0, 0, 0] };

export class Dynamics {
  readonly dof: number;

  // --- Constant structure (built once) ---
  /** Parent body of each body, -1 for the world. */
  private readonly parent: Int32Array;
  /** 1 for prismatic joints; S occupies rows [sOff, sOff+3) with sOff = 3·prismatic. */
  private readonly prismatic: Uint8Array;
  private readonly axis: Float64Array;
  /** Reflected rotor inertia per joint. */
  private readonly armature: Float64Array;
  /** Joint frame in the parent body frame (fixed links in between already composed). */
  private readonly treeR: Float64Array;
  private readonly treeP: Float64Array;
  /** R0·K and R0·K² for revolute joints; R0·axis for prismatic ones. */
  private readonly treeRK: Float64Array;
  private readonly treeRK2: Float64Array;
  private readonly treeRaxis: Float64Array;
  /** Spatial inertia of each body (with its fixed descendants), 36 per body. */
  private readonly inertia: Float64Array;
  /** Spatial acceleration of the world: −gravity, so gravity appears as a fictitious lift. */
  private readonly worldAccel: Float64Array;

  // --- Per-call scratch ---
  private readonly R: Float64Array;
  private readonly r: Float64Array;
  private readonly v: Float64Array;
  private readonly a: Float64Array;
  private readonly c: Float64Array;
  private readonly f: Float64Array;
  private readonly IA: Float64Array;
  private readonly pA: Float64Array;
  private readonly U: Float64Array;
  private readonly D: Float64Array;
  private readonly u: Float64Array;
  private readonly tmp6: Float64Array;
  private readonly tmp6b: Float64Array;
  private readonly zero6 = new Float64Array(6);

  constructor(model: RobotModel) {
    const n = model.dof;
    this.dof = n;
    this.parent = new Int32Array(n);
    this.prismatic = new Uint8Array(n);
    this.axis = new Float64Array(3 * n);
    this.armature = Float64Array.from(model.joints, (joint) => joint.armature);
    this.treeR = new Float64Array(9 * n);
    this.treeP = new Float64Array(3 * n);
    this.treeRK = new Float64Array(9 * n);
    this.treeRK2 = new Float64Array(9 * n);
    this.treeRaxis = new Float64Array(3 * n);
    this.inertia = new Float64Array(36 * n);

    // Each link's body (-1: the world) and its placement in that body's frame.
    const bodyOf: number[] = [];
    const inBody: Transform[] = [];
    model.links.forEach((link, l) => {
      if (link.parent < 0) {
        bodyOf.push(-1);
        inBody.push(IDENTITY);
        return;
      }
      const placement = compose(inBody[link.parent], link.origin);
      if (link.jointIndex < 0) {
        bodyOf.push(bodyOf[link.parent]);
        inBody.push(placement);
        return;
      }
      const b = link.jointIndex;
      if (model.jointLink[b] !== l)
        throw new Error(`Dynamics: model.jointLink[${b}] does not point at link "${link.name}"`);
      this.parent[b] = bodyOf[link.parent];
      if (this.parent[b] >= b) throw new Error("Dynamics: joints are not in topological order");
      this.prismatic[b] = model.joints[b].type === "prismatic" ? 1 : 0;
      const [x, y, z] = link.axis;
      this.axis.set(link.axis, 3 * b);
      this.treeR.set(placement.R, 9 * b);
      this.treeP.set(placement.p, 3 * b);
      const R0 = placement.R;
      const K = [0, -z, y, z, 0, -x, -y, x, 0];
      for (let i = 0; i < 3; i++) {
        this.treeRaxis[3 * b + i] = R0[3 * i] * x + R0[3 * i + 1] * y + R0[3 * i + 2] * z;
        for (let j = 0; j < 3; j++) {
          this.treeRK[9 * b + 3 * i + j] =
            R0[3 * i] * K[j] + R0[3 * i + 1] * K[3 + j] + R0[3 * i + 2] * K[6 + j];
        }
      }
      for (let i = 0; i < 3; i++)
        for (let j = 0; j < 3; j++) {
          const o = 9 * b + 3 * i;
          this.treeRK2[o + j] =
            this.treeRK[o] * K[j] + this.treeRK[o + 1] * K[3 + j] + this.treeRK[o + 2] * K[6 + j];
        }
      bodyOf.push(b);
      inBody.push(IDENTITY);
    });
    // Mass properties: every link's inertia, moved into the frame of the body it rides on.
    model.links.forEach((link, l) => {
      const b = bodyOf[l];
      const { mass, com, inertia } = link.inertial;
      if (b < 0 || mass === 0) return;
      const T = inBody[l];
      const moved = compose(T, { R: inertia, p: com });
      // R·Ic·Rᵀ: rotate the tensor (compose gave R·Ic; multiply by Rᵀ on the right).
      const Ic: Mat3 = [0, 0, 0, 0, 0, 0, 0, 0, 0];
      for (let i = 0; i < 3; i++)
        for (let j = 0; j < 3; j++)
          Ic[3 * i + j] =
            moved.R[3 * i] * T.R[3 * j] +
            moved.R[3 * i + 1] * T.R[3 * j + 1] +
            moved.R[3 * i + 2] * T.R[3 * j + 2];
      addRigidBodyInertia(mass, moved.p, Ic, this.inertia, 36 * b);
    });

    const g = model.gravity;
    this.worldAccel = new Float64Array([0, 0, 0, -g[0], -g[1], -g[2]]);
    this.R = new Float64Array(9 * n);
    this.r = new Float64Array(3 * n);
    this.v = new Float64Array(6 * n);
    this.a = new Float64Array(6 * n);
    this.c = new Float64Array(6 * n);
    this.f = new Float64Array(6 * n);
    this.IA = new Float64Array(36 * n);
    this.pA = new Float64Array(6 * n);
    this.U = new Float64Array(6 * n);
    this.D = new Float64Array(n);
    this.u = new Float64Array(n);
    this.tmp6 = new Float64Array(6);
    this.tmp6b = new Float64Array(6);
  }

  /** Body placements in their parents for joint positions q (R, r per body). */
  private updatePlacements(q: Float64Array): void {
    const { R, r, treeR, treeP } = this;
    for (let i = 0; i < this.dof; i++) {
      const o = 9 * i;
      const p = 3 * i;
      if (this.prismatic[i] === 1) {
        for (let k = 0; k < 9; k++) R[o + k] = treeR[o + k];
        const qi = q[i];
        r[p] = treeP[p] + this.treeRaxis[p] * qi;
        r[p + 1] = treeP[p + 1] + this.treeRaxis[p + 1] * qi;
        r[p + 2] = treeP[p + 2] + this.treeRaxis[p + 2] * qi;
      } else {
        const s = Math.sin(q[i]);
        const vers = 1 - Math.cos(q[i]);
        const RK = this.treeRK;
        const RK2 = this.treeRK2;
        for (let k = 0; k < 9; k++) R[o + k] = treeR[o + k] + s * RK[o + k] + vers * RK2[o + k];
        r[p] = treeP[p];
        r[p + 1] = treeP[p + 1];
        r[p + 2] = treeP[p + 2];
      }
    }
  }

  /**
   * Recursive Newton–Euler: tauOut = M(q) q̈ + C(q, q̇) q̇ + g(q). Pass qd or qdd as null for zero.
   * Forward: body velocities and accelerations (gravity as a world acceleration); backward: the
   * net force each body's subtree needs, projected on each joint axis.
   */
  private rnea(
    q: Float64Array,
    qd: Float64Array | null,
    qdd: Float64Array | null,
    tauOut: Float64Array,
  ): void {
    const n = this.dof;
    const { parent, prismatic, axis, R, r, v, a, f, inertia, tmp6, tmp6b } = this;
    this.updatePlacements(q);
    for (let i = 0; i < n; i++) {
      const o6 = 6 * i;
      const lambda = parent[i];
      const s = 3 * prismatic[i];
      const qdi = qd === null ? 0 : qd[i];
      const qddi = qdd === null ? 0 : qdd[i];
      if (lambda < 0) {
        for (let k = 0; k < 6; k++) v[o6 + k] = 0;
        motionToChild(R, r, i, this.worldAccel, 0, a, o6);
      } else {
        motionToChild(R, r, i, v, 6 * lambda, v, o6);
        motionToChild(R, r, i, a, 6 * lambda, a, o6);
      }
      // a_i += v_λ(in i) × S q̇ + S q̈, using v_i before the joint's own velocity is added
      // (identical, as S q̇ × S q̇ = 0).
      const ax = axis[3 * i];
      const ay = axis[3 * i + 1];
      const az = axis[3 * i + 2];
      if (qdi !== 0) {
        const sx = ax * qdi;
        const sy = ay * qdi;
        const sz = az * qdi;
        const wx = v[o6];
        const wy = v[o6 + 1];
        const wz = v[o6 + 2];
        if (s === 0) {
          // (ω, v) ×m (s, 0) = (ω × s, v × s)
          const vx = v[o6 + 3];
          const vy = v[o6 + 4];
          const vz = v[o6 + 5];
          a[o6] += wy * sz - wz * sy;
          a[o6 + 1] += wz * sx - wx * sz;
          a[o6 + 2] += wx * sy - wy * sx;
          a[o6 + 3] += vy * sz - vz * sy;
          a[o6 + 4] += vz * sx - vx * sz;
          a[o6 + 5] += vx * sy - vy * sx;
        } else {
          // (ω, v) ×m (0, s) = (0, ω × s)
          a[o6 + 3] += wy * sz - wz * sy;
          a[o6 + 4] += wz * sx - wx * sz;
          a[o6 + 5] += wx * sy - wy * sx;
        }
        v[o6 + s] += sx;
        v[o6 + s + 1] += sy;
        v[o6 + s + 2] += sz;
      }
      a[o6 + s] += ax * qddi;
      a[o6 + s + 1] += ay * qddi;
      a[o6 + s + 2] += az * qddi;
      // f_i = I a_i + v_i ×* (I v_i)
      mulInertia(inertia, 36 * i, a, o6, f, o6);
      if (qd !== null) {
        mulInertia(inertia, 36 * i, v, o6, tmp6, 0);
        crossForce(v, o6, tmp6, 0, tmp6b, 0);
        for (let k = 0; k < 6; k++) f[o6 + k] += tmp6b[k];
      }
    }
    for (let i = n - 1; i >= 0; i--) {
      const o6 = 6 * i;
      const s = o6 + 3 * prismatic[i];
      tauOut[i] = axis[3 * i] * f[s] + axis[3 * i + 1] * f[s + 1] + axis[3 * i + 2] * f[s + 2];
      if (qdd !== null) tauOut[i] += this.armature[i] * qdd[i];
      const lambda = parent[i];
      if (lambda >= 0) addForceToParent(R, r, i, f, o6, f, 6 * lambda);
    }
  }

  /** τ = M(q) q̈ + C(q, q̇) q̇ + g(q) (recursive Newton–Euler). */
  inverseDynamics(q: Float64Array, qd: Float64Array, qdd: Float64Array, tauOut: Float64Array): void {
    this.rnea(q, qd, qdd, tauOut);
  }

  /** Coriolis, centrifugal and gravity torques: the τ that gives q̈ = 0. */
  bias(q: Float64Array, qd: Float64Array, tauOut: Float64Array): void {
    this.rnea(q, qd, null, tauOut);
  }

  /**
   * The inertial parameters of each body (the moving link with the links welded to it), 10 per
   * body in its own frame: π_b = (m, h_x, h_y, h_z, I_xx, I_xy, I_xz, I_yy, I_yz, I_zz), with
   * h = m·c the first moment and I the rotational inertia about the body frame's origin. The rigid
   * body torques are linear in them (Atkeson, An and Hollerbach 1986): see inertialRegressor.
   */
  bodyParameters(): Float64Array {
    const out = new Float64Array(BODY_PARAMETERS * this.dof);
    for (let b = 0; b < this.dof; b++) {
      const I = this.inertia.subarray(36 * b, 36 * b + 36);
      out.set([I[21], I[16], I[5], I[9], I[0], I[1], I[2], I[7], I[8], I[14]], BODY_PARAMETERS * b);
    }
    return out;
  }

  /**
   * The regressor Y(q, q̇, q̈) of the rigid-body torques (dof rows × 10·dof columns, row-major):
   * RNEA's τ without armature equals Y·π for π = bodyParameters(). Column (b, k) is RNEA with body
   * b's spatial inertia replaced by the k-th unit parameter and every other body's by zero (RNEA
   * is linear in the inertias; the unit "inertias" need not be physical). Not for hot paths: 10·dof
   * RNEA calls.
   */
  inertialRegressor(q: Float64Array, qd: Float64Array, qdd: Float64Array, out: Float64Array): void {
    const n = this.dof;
    const columns = BODY_PARAMETERS * n;
    if (out.length < n * columns)
      throw new Error(`Dynamics.inertialRegressor: out needs ${n * columns} values`);
    const inertia = this.inertia.slice();
    const armature = this.armature.slice();
    const tau = new Float64Array(n);
    this.armature.fill(0);
    try {
      for (let b = 0; b < n; b++) {
        for (let k = 0; k < BODY_PARAMETERS; k++) {
          this.inertia.fill(0);
          for (const [index, value] of UNIT_PARAMETER[k]) this.inertia[36 * b + index] = value;
          this.rnea(q, qd, qdd, tau);
          for (let i = 0; i < n; i++) out[i * columns + BODY_PARAMETERS * b + k] = tau[i];
        }
      }
    } finally {
      this.inertia.set(inertia);
      this.armature.set(armature);
    }
  }

  /** Gravity torques g(q): what holds the arm still. */
  gravity(q: Float64Array, tauOut: Float64Array): void {
    this.rnea(q, null, null, tauOut);
  }

  /**
   * Composite rigid body algorithm: Mout (dof×dof, row-major) = M(q). The composite inertia of
   * each subtree is accumulated leaf to root; column i then follows the force F = Ic_i S_i up
   * the chain of ancestors.
   */
  massMatrix(q: Float64Array, Mout: Float64Array): void {
    const n = this.dof;
    const { parent, prismatic, axis, R, r, inertia, tmp6 } = this;
    const Ic = this.IA;
    this.updatePlacements(q);
    Ic.set(inertia);
    for (let i = n - 1; i >= 0; i--) {
      if (parent[i] >= 0) addInertiaToParent(R, r, i, Ic, 36 * i, this.zero6, 0, 0, Ic, 36 * parent[i]);
    }
    Mout.fill(0, 0, n * n);
    const F = tmp6;
    for (let i = 0; i < n; i++) {
      // F = Ic_i S_i: the columns of Ic_i picked by S, weighted by the axis.
      const s = 3 * prismatic[i];
      const ax = axis[3 * i];
      const ay = axis[3 * i + 1];
      const az = axis[3 * i + 2];
      for (let k = 0; k < 6; k++) {
        const row = 36 * i + 6 * k + s;
        F[k] = Ic[row] * ax + Ic[row + 1] * ay + Ic[row + 2] * az;
      }
      Mout[i * n + i] = ax * F[s] + ay * F[s + 1] + az * F[s + 2] + this.armature[i];
      let j = i;
      while (parent[j] >= 0) {
        // Move F to the parent's coordinates (in place via tmp6b), then project on its axis.
        this.tmp6b.fill(0);
        addForceToParent(R, r, j, F, 0, this.tmp6b, 0);
        F.set(this.tmp6b);
        j = parent[j];
        const sj = 3 * prismatic[j];
        const Mij = axis[3 * j] * F[sj] + axis[3 * j + 1] * F[sj + 1] + axis[3 * j + 2] * F[sj + 2];
        Mout[i * n + j] = Mij;
        Mout[j * n + i] = Mij;
      }
    }
  }

  /**
   * Articulated body algorithm: qddOut = M⁻¹ (τ − C q̇ − g), in O(n) without forming M.
   * Pass 1 (root→leaves): velocities, velocity-product accelerations c and bias forces pA.
   * Pass 2 (leaves→root): articulated inertias IA and forces pA, each handed to the parent after
   * the joint's own freedom is projected out. Pass 3 (root→leaves): accelerations and q̈.
   */
  forwardDynamics(q: Float64Array, qd: Float64Array, tau: Float64Array, qddOut: Float64Array): void {
    const n = this.dof;
    const { parent, prismatic, axis, R, r, v, a, c, IA, pA, U, D, u, inertia, tmp6 } = this;
    this.updatePlacements(q);
    IA.set(inertia); // IA_i starts as I_i; children add to it in pass 2.

    for (let i = 0; i < n; i++) {
      const o6 = 6 * i;
      const lambda = parent[i];
      const s = 3 * prismatic[i];
      if (lambda < 0) for (let k = 0; k < 6; k++) v[o6 + k] = 0;
      else motionToChild(R, r, i, v, 6 * lambda, v, o6);
      const qdi = qd[i];
      const sx = axis[3 * i] * qdi;
      const sy = axis[3 * i + 1] * qdi;
      const sz = axis[3 * i + 2] * qdi;
      const wx = v[o6];
      const wy = v[o6 + 1];
      const wz = v[o6 + 2];
      // c_i = v_i ×m (S q̇_i)
      if (s === 0) {
        const vx = v[o6 + 3];
        const vy = v[o6 + 4];
        const vz = v[o6 + 5];
        c[o6] = wy * sz - wz * sy;
        c[o6 + 1] = wz * sx - wx * sz;
        c[o6 + 2] = wx * sy - wy * sx;
        c[o6 + 3] = vy * sz - vz * sy;
        c[o6 + 4] = vz * sx - vx * sz;
        c[o6 + 5] = vx * sy - vy * sx;
      } else {
        c[o6] = 0;
        c[o6 + 1] = 0;
        c[o6 + 2] = 0;
        c[o6 + 3] = wy * sz - wz * sy;
        c[o6 + 4] = wz * sx - wx * sz;
        c[o6 + 5] = wx * sy - wy * sx;
      }
      v[o6 + s] += sx;
      v[o6 + s + 1] += sy;
      v[o6 + s + 2] += sz;
      // pA_i = v_i ×* (I_i v_i)
      mulInertia(inertia, 36 * i, v, o6, tmp6, 0);
      crossForce(v, o6, tmp6, 0, pA, o6);
    }

    for (let i = n - 1; i >= 0; i--) {
      const o6 = 6 * i;
      const o36 = 36 * i;
      const prism = prismatic[i] === 1;
      const ax = axis[3 * i];
      const ay = axis[3 * i + 1];
      const az = axis[3 * i + 2];
      // U = IA S (the three columns of IA that S picks, weighted by the axis), D = Sᵀ U, u = τ − Sᵀ pA.
      // Written out: this loop body is the heart of ABA.
      const col = o36 + (prism ? 3 : 0);
      const U0 = IA[col] * ax + IA[col + 1] * ay + IA[col + 2] * az;
      const U1 = IA[col + 6] * ax + IA[col + 7] * ay + IA[col + 8] * az;
      const U2 = IA[col + 12] * ax + IA[col + 13] * ay + IA[col + 14] * az;
      const U3 = IA[col + 18] * ax + IA[col + 19] * ay + IA[col + 20] * az;
      const U4 = IA[col + 24] * ax + IA[col + 25] * ay + IA[col + 26] * az;
      const U5 = IA[col + 30] * ax + IA[col + 31] * ay + IA[col + 32] * az;
      U[o6] = U0;
      U[o6 + 1] = U1;
      U[o6 + 2] = U2;
      U[o6 + 3] = U3;
      U[o6 + 4] = U4;
      U[o6 + 5] = U5;
      const p = o6 + (prism ? 3 : 0);
      const Di = (prism ? ax * U3 + ay * U4 + az * U5 : ax * U0 + ay * U1 + az * U2) + this.armature[i];
      const ui = tau[i] - (ax * pA[p] + ay * pA[p + 1] + az * pA[p + 2]);
      D[i] = Di;
      u[i] = ui;
      const lambda = parent[i];
      if (lambda < 0) continue;
      // To the parent: Ia = IA − U Uᵀ/D (formed inside addInertiaToParent) and
      // pa = pA + Ia c + U u/D = pA + IA c + U (u − Uᵀc)/D.
      const invD = 1 / Di;
      mulInertia(IA, o36, c, o6, tmp6, 0);
      const Uc =
        U0 * c[o6] + U1 * c[o6 + 1] + U2 * c[o6 + 2] + U3 * c[o6 + 3] + U4 * c[o6 + 4] + U5 * c[o6 + 5];
      const coef = (ui - Uc) * invD;
      tmp6[0] += pA[o6] + U0 * coef;
      tmp6[1] += pA[o6 + 1] + U1 * coef;
      tmp6[2] += pA[o6 + 2] + U2 * coef;
      tmp6[3] += pA[o6 + 3] + U3 * coef;
      tmp6[4] += pA[o6 + 4] + U4 * coef;
      tmp6[5] += pA[o6 + 5] + U5 * coef;
      addInertiaToParent(R, r, i, IA, o36, U, o6, invD, IA, 36 * lambda);
      addForceToParent(R, r, i, tmp6, 0, pA, 6 * lambda);
    }

    for (let i = 0; i < n; i++) {
      const o6 = 6 * i;
      const lambda = parent[i];
      // a_i = X a_λ + c_i (the world's acceleration is −g), then q̈_i = (u_i − Uᵀ a_i)/D_i.
      if (lambda < 0) motionToChild(R, r, i, this.worldAccel, 0, a, o6);
      else motionToChild(R, r, i, a, 6 * lambda, a, o6);
      const a0 = a[o6] + c[o6];
      const a1 = a[o6 + 1] + c[o6 + 1];
      const a2 = a[o6 + 2] + c[o6 + 2];
      const a3 = a[o6 + 3] + c[o6 + 3];
      const a4 = a[o6 + 4] + c[o6 + 4];
      const a5 = a[o6 + 5] + c[o6 + 5];
      const Ua =
        U[o6] * a0 + U[o6 + 1] * a1 + U[o6 + 2] * a2 + U[o6 + 3] * a3 + U[o6 + 4] * a4 + U[o6 + 5] * a5;
      const qddi = (u[i] - Ua) / D[i];
      qddOut[i] = qddi;
      a[o6] = a0;
      a[o6 + 1] = a1;
      a[o6 + 2] = a2;
      a[o6 + 3] = a3;
      a[o6 + 4] = a4;
      a[o6 + 5] = a5;
      // a_i += S q̈_i
      const sa = o6 + 3 * prismatic[i];
      a[sa] += axis[3 * i] * qddi;
      a[sa + 1] += axis[3 * i + 1] * qddi;
      a[sa + 2] += axis[3 * i + 2] * qddi;
    }
  }
}
