/**
 * The least-distance QP against brute force: on random small problems, the solver's point is
 * feasible and no farther from the origin than the best feasible candidate among the projections
 * onto every face (every subset of at most n constraints held as equalities), which contains the
 * optimum; infeasible problems are reported as such.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { LeastDistanceQp, QpStatus } from "../../src/safety/qp.js";
import { Rng } from "../../src/util/rng.js";

/** Solves the square system A y = b (k × k, Gaussian elimination with pivoting); null if singular. */
function solveSquare(A: number[][], b: number[]): number[] | null {
  const k = b.length;
  const M = A.map((row, i) => [...row, b[i]]);
  for (let c = 0; c < k; c++) {
    let pivot = c;
    for (let r = c + 1; r < k; r++) if (Math.abs(M[r][c]) > Math.abs(M[pivot][c])) pivot = r;
    if (Math.abs(M[pivot][c]) < 1e-10) return null;
    [M[c], M[pivot]] = [M[pivot], M[c]];
    for (let r = 0; r < k; r++) {
      if (r === c) continue;
      const f = M[r][c] / M[c][c];
      for (let j = c; j <= k; j++) M[r][j] -= f * M[c][j];
    }
  }
  return M.map((row, i) => row[k] / row[i]);
}

/** The minimum-norm feasible point by enumeration of faces, or null when none is feasible. */
function bruteForce(G: number[][], h: number[], n: number): number[] | null {
  const m = h.length;
  let best: number[] | null = null;
  let bestNorm = Number.POSITIVE_INFINITY;
  const feasible = (x: number[]) =>
    G.every((row, j) => row.reduce((s, g, i) => s + g * x[i], 0) >= h[j] - 1e-9);
  const consider = (x: number[]) => {
    const norm = Math.hypot(...x);
    if (feasible(x) && norm < bestNorm) {
      bestNorm = norm;
      best = x;
    }
  };
  consider(new Array(n).fill(0));
  const subset: number[] = [];
  const visit = (start: number) => {
    if (subset.length > 0) {
      // x = G_Sᵀ y with G_S G_Sᵀ y = h_S: the point of the face's affine hull nearest the origin.
      const A = subset.map((a) => subset.map((b) => G[a].reduce((s, g, i) => s + g * G[b][i], 0)));
      const y = solveSquare(
        A,
        subset.map((a) => h[a]),
      );
      if (y !== null) {
        const x = new Array(n).fill(0);
        subset.forEach((a, k) => {
          for (let i = 0; i < n; i++) x[i] += G[a][i] * y[k];
        });
        consider(x);
      }
    }
    if (subset.length === n) return;
    for (let j = start; j < m; j++) {
      subset.push(j);
      visit(j + 1);
      subset.pop();
    }
  };
  visit(0);
  return best;
}

test("least-distance QP: optimal and feasible on 400 random problems, infeasibility detected", () => {
  const rng = new Rng(7);
  const qp = new LeastDistanceQp(4, 12);
  const x = new Float64Array(4);
  let solved = 0;
  let infeasible = 0;
  for (let trial = 0; trial < 400; trial++) {
    const n = 2 + (trial % 3);
    const m = 3 + (trial % 9);
    const G: number[][] = [];
    const h: number[] = [];
    for (let j = 0; j < m; j++) {
      G.push(Array.from({ length: n }, () => rng.uniform() * 4 - 2));
      h.push(rng.uniform() * 4 - 1.5);
    }
    const status = qp.solve(Float64Array.from(G.flat()), Float64Array.from(h), n, m, x);
    const reference = bruteForce(G, h, n);
    if (reference === null) {
      assert.equal(status, QpStatus.Infeasible, `trial ${trial}: infeasible, solver said ${status}`);
      infeasible++;
      continue;
    }
    assert.equal(status, QpStatus.Solved, `trial ${trial}: feasible, solver said ${status}`);
    solved++;
    for (let j = 0; j < m; j++) {
      const gx = G[j].reduce((s, g, i) => s + g * x[i], 0);
      assert.ok(gx >= h[j] - 1e-7, `trial ${trial}: constraint ${j} violated by ${h[j] - gx}`);
    }
    const norm = Math.hypot(...Array.from(x.subarray(0, n)));
    const referenceNorm = Math.hypot(...reference);
    assert.ok(norm <= referenceNorm + 1e-7, `trial ${trial}: ‖x‖ ${norm} > optimum ${referenceNorm}`);
  }
  assert.ok(solved > 100 && infeasible > 20, `a mix of cases: ${solved} solved, ${infeasible} infeasible`);
});
