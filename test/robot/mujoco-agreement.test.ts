/**
 * Our RNEA / CRBA / ABA against MuJoCo (mj_fullM and qfrc_bias) on hundreds of random states, for
 * the arm, for a branched test robot with rotated inertial frames, rpy joint origins, a
 * prismatic and a continuous joint and a fixed joint in the middle of the tree, and for the three
 * xacro descriptions (UR5e, Panda, SO-100), expanded to plain URDF first: MuJoCo reads URDF only.
 *
 * Relative error of a state: ‖ours − MuJoCo‖ / max(‖MuJoCo‖, 1e-12), Frobenius norm for M and
 * Euclidean for the bias vector (a norm over the whole quantity, so that a component that happens
 * to be near zero does not blow the ratio up).
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { after, test } from "node:test";
import { Dynamics } from "../../src/robot/dynamics.js";
import type { RobotModel } from "../../src/robot/types.js";
import { loadUrdf } from "../../src/robot/urdf.js";
import { expandedName, expandXacro, isXacroPath } from "../../src/robot/xacro.js";
import { packageRoot } from "../../src/util/paths.js";
import { Rng } from "../../src/util/rng.js";
import { MUJOCO, mujocoDynamics, mujocoInfo, mujocoProbePath } from "../mujoco/probe.js";
import { missingDependency } from "../support/system.js";

const STATES = 300;
const TOLERANCE = 1e-6;

function norm(x: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < x.length; i++) s += x[i] * x[i];
  return Math.sqrt(s);
}

function relativeError(ours: ArrayLike<number>, theirs: ArrayLike<number>): number {
  assert.equal(ours.length, theirs.length);
  const diff = new Float64Array(ours.length);
  for (let i = 0; i < ours.length; i++) diff[i] = ours[i] - theirs[i];
  return norm(diff) / Math.max(norm(theirs), 1e-12);
}

/** A random state: positions across the joint range (continuous: two turns), velocities up to 3 rad/s (0.5 m/s). */
function randomState(model: RobotModel, rng: Rng): { q: Float64Array; qd: Float64Array } {
  const q = new Float64Array(model.dof);
  const qd = new Float64Array(model.dof);
  model.joints.forEach((joint, i) => {
    const lo = Number.isFinite(joint.lower) ? joint.lower : -2 * Math.PI;
    const hi = Number.isFinite(joint.upper) ? joint.upper : 2 * Math.PI;
    q[i] = rng.range(lo, hi);
    const speed = joint.type === "prismatic" ? 0.5 : 3;
    qd[i] = rng.range(-speed, speed);
  });
  return { q, qd };
}

/** Solves M x = b by Cholesky (M symmetric positive definite, row-major). */
function solveSpd(M: Float64Array, b: Float64Array): Float64Array {
  const n = b.length;
  const L = new Float64Array(n * n);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j <= i; j++) {
      let s = M[i * n + j];
      for (let k = 0; k < j; k++) s -= L[i * n + k] * L[j * n + k];
      if (i === j) {
        assert.ok(s > 0, "mass matrix is not positive definite");
        L[i * n + i] = Math.sqrt(s);
      } else {
        L[i * n + j] = s / L[j * n + j];
      }
    }
  }
  const y = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    let s = b[i];
    for (let k = 0; k < i; k++) s -= L[i * n + k] * y[k];
    y[i] = s / L[i * n + i];
  }
  const x = new Float64Array(n);
  for (let i = n - 1; i >= 0; i--) {
    let s = y[i];
    for (let k = i + 1; k < n; k++) s -= L[k * n + i] * x[k];
    x[i] = s / L[i * n + i];
  }
  return x;
}

let expandedDir: string | undefined;
after(() => {
  if (expandedDir !== undefined) rmSync(expandedDir, { recursive: true, force: true });
});

/** A plain URDF file for a description: the file itself, or its xacro expansion in a temp dir. */
function plainUrdf(relPath: string): string {
  const path = resolve(packageRoot(), relPath);
  if (!isXacroPath(path)) return path;
  expandedDir ??= mkdtempSync(join(tmpdir(), "mbpo-arm-mujoco-"));
  const out = join(expandedDir, expandedName(path));
  writeFileSync(out, expandXacro(path).xml);
  return out;
}

for (const [label, relPath, seed] of [
  ["arm", "urdf/arm.urdf", 1],
  ["branched test robot", "test/urdf/branched.urdf", 2],
  ["UR5e", "urdf/ur5e.urdf.xacro", 3],
  ["Panda", "urdf/panda.urdf.xacro", 4],
  ["SO-100", "urdf/so100.urdf.xacro", 5],
] as const) {
  test(`${label} (${relPath}): mass matrix and bias forces agree with MuJoCo`, (t) => {
    const missing = missingDependency(MUJOCO);
    if (missing !== undefined) return t.skip(missing);
    const probe = mujocoProbePath()!;
    const path = plainUrdf(relPath);
    const model = loadUrdf(path);
    const names = model.joints.map((j) => j.name);

    // MuJoCo loaded what we think it loaded: same joints, no armature of its own (URDF has none
    // for MuJoCo); the probe then sets ours, read from the <transmission> elements.
    const info = mujocoInfo(probe, path);
    assert.equal(info.nv, model.dof, "MuJoCo's dof count");
    assert.deepEqual([...info.joints].sort(), [...names].sort(), "MuJoCo's joint names");
    assert.ok(
      info.armature.every((x) => x === 0),
      `MuJoCo armature must be zero, got ${info.armature}`,
    );

    const rng = new Rng(seed);
    const states = Array.from({ length: STATES }, () => randomState(model, rng));
    const armature = model.joints.map((j) => j.armature);
    const reference = mujocoDynamics(probe, path, names, states, armature);

    const dyn = new Dynamics(model);
    const n = model.dof;
    const M = new Float64Array(n * n);
    const bias = new Float64Array(n);
    let worstM = 0;
    let worstBias = 0;
    let worstMState = -1;
    let worstBiasState = -1;
    states.forEach(({ q, qd }, k) => {
      dyn.massMatrix(q, M);
      dyn.bias(q, qd, bias);
      const eM = relativeError(M, reference[k].M);
      const eB = relativeError(bias, reference[k].bias);
      if (eM > worstM) [worstM, worstMState] = [eM, k];
      if (eB > worstBias) [worstBias, worstBiasState] = [eB, k];
    });
    t.diagnostic(
      `${label}: ${STATES} states, worst relative error vs MuJoCo ${info.version}: M ${worstM.toExponential(2)} (state ${worstMState}), ` +
        `bias ${worstBias.toExponential(2)} (state ${worstBiasState})`,
    );
    assert.ok(worstM < TOLERANCE, `mass matrix: worst relative error ${worstM} at state ${worstMState}`);
    assert.ok(worstBias < TOLERANCE, `bias: worst relative error ${worstBias} at state ${worstBiasState}`);
  });

  test(`${label} (${relPath}): ABA agrees with the mass matrix and with RNEA`, (t) => {
    const model = loadUrdf(plainUrdf(relPath));
    const dyn = new Dynamics(model);
    const n = model.dof;
    const rng = new Rng(seed + 100);
    const M = new Float64Array(n * n);
    const bias = new Float64Array(n);
    const tau = new Float64Array(n);
    const qdd = new Float64Array(n);
    const tauBack = new Float64Array(n);
    const rhs = new Float64Array(n);
    let worstSolve = 0;
    let worstRoundTrip = 0;
    for (let k = 0; k < STATES; k++) {
      const { q, qd } = randomState(model, rng);
      model.joints.forEach((joint, i) => {
        tau[i] = rng.range(-1, 1) * Math.min(joint.effort, 5);
      });
      dyn.forwardDynamics(q, qd, tau, qdd);
      dyn.massMatrix(q, M);
      dyn.bias(q, qd, bias);
      for (let i = 0; i < n; i++) rhs[i] = tau[i] - bias[i];
      worstSolve = Math.max(worstSolve, relativeError(qdd, solveSpd(M, rhs)));
      dyn.inverseDynamics(q, qd, qdd, tauBack);
      worstRoundTrip = Math.max(worstRoundTrip, relativeError(tauBack, tau));
    }
    t.diagnostic(
      `${label}: ABA vs M⁻¹(τ − bias) ${worstSolve.toExponential(2)}, RNEA(ABA(τ)) vs τ ${worstRoundTrip.toExponential(2)}`,
    );
    assert.ok(worstSolve < 1e-9, `ABA vs M⁻¹(τ − bias): worst relative error ${worstSolve}`);
    assert.ok(worstRoundTrip < 1e-9, `RNEA(q, q̇, ABA(τ)) vs τ: worst relative error ${worstRoundTrip}`);
  });
}
