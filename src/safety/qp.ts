/**
 * The safety filter's small quadratic program: the point closest to the origin inside a polytope,
 *
 *   minimise ‖x‖²  subject to  G x ≥ h        (G: m × n, row-major; n ≤ 7 joints, m ≤ 4n rows),
 *
 * which is "the torque closest to the command" once x = τ − τ_command. This is least-distance
 * programming (LDP), solved exactly as Lawson & Hanson do it ("Solving Least Squares Problems",
 * 1974, ch. 23): the LDP's dual is a non-negative least-squares problem,
 *
 *   minimise ‖E u − f‖  subject to  u ≥ 0,     E = [Gᵀ; hᵀ] ((n+1) × m),  f = (0, …, 0, 1),
 *
 * and with r = E u − f at its solution, x = −r₁..ₙ / rₙ₊₁; r = 0 means the constraints have no
 * common point (infeasible). The NNLS is Lawson & Hanson's active-set algorithm (ch. 23, NNLS):
 * columns enter the passive set P by largest dual gradient and leave when a step would make them
 * negative; each sub-problem is an unconstrained least-squares fit on P's columns, solved here by
 * the normal equations and a Cholesky factorisation (|P| ≤ n + 1 ≤ 8, columns kept independent by
 * the algorithm; a column that would make the factor singular is set aside for that solve).
 * It terminates in finitely many steps in exact arithmetic; an iteration cap guards the floating
 * point, and the caller checks the answer against the constraints anyway.
 *
 * Allocation-free: every array is made in the constructor for the largest n and m.
 */

/** What solve() found. */
export const QpStatus = {
  Solved: 0,
  /** The constraints have no common point. */
  Infeasible: 1,
  /** The iteration cap was hit, or the factor broke down (the caller falls back to a safe output). */
  NotConverged: 2,
} as const;
export type QpStatus = (typeof QpStatus)[keyof typeof QpStatus];

export class LeastDistanceQp {
  readonly maxVariables: number;
  readonly maxConstraints: number;
  /** Dual variables (one per constraint). */
  private readonly u: Float64Array;
  private readonly z: Float64Array;
  /** Dual gradient Eᵀ(f − E u). */
  private readonly w: Float64Array;
  /** 1 while a column is in the passive set P. */
  private readonly passive: Uint8Array;
  /** 1 for a column set aside (it made the factor singular, or entered with a non-positive value). */
  private readonly banned: Uint8Array;
  /** Indices of P, in order. */
  private readonly members: Int32Array;
  /** Residual f − E u, length n + 1. */
  private readonly residual: Float64Array;
  /** Normal matrix of P's columns and its Cholesky factor (|P| × |P|), and the right-hand side. */
  private readonly gram: Float64Array;
  private readonly rhs: Float64Array;
  private readonly solution: Float64Array;

  constructor(maxVariables: number, maxConstraints: number) {
    this.maxVariables = maxVariables;
    this.maxConstraints = maxConstraints;
    const m = maxConstraints;
    const p = maxVariables + 1;
    this.u = new Float64Array(m);
    this.z = new Float64Array(m);
    this.w = new Float64Array(m);
    this.passive = new Uint8Array(m);
    this.banned = new Uint8Array(m);
    this.members = new Int32Array(m);
    this.residual = new Float64Array(p);
    this.gram = new Float64Array(m * m);
    this.rhs = new Float64Array(m);
    this.solution = new Float64Array(m);
  }

  /**
   * Solves min ‖x‖² s.t. G x ≥ h for the first m rows of G (row-major, n columns) and h; writes x
   * (length ≥ n). Returns Solved, Infeasible or NotConverged (x is then meaningless).
   */
  solve(G: Float64Array, h: Float64Array, n: number, m: number, x: Float64Array): QpStatus {
    if (n > this.maxVariables || m > this.maxConstraints) {
      throw new Error(
        `LeastDistanceQp: ${n} variables and ${m} constraints exceed ${this.maxVariables}, ${this.maxConstraints}`,
      );
    }
    const { u, z, w, passive, banned, residual } = this;
    u.fill(0, 0, m);
    passive.fill(0, 0, m);
    banned.fill(0, 0, m);
    let scale = 1;
    for (let j = 0; j < m; j++) scale = Math.max(scale, Math.abs(h[j]));
    const tolerance = 1e-12 * scale;
    const maxIterations = 3 * m + 10;
    let iterations = 0;
    for (;;) {
      // Dual gradient w = Eᵀ(f − E u) over the columns outside P.
      this.computeResidual(G, h, n, m);
      let best = -1;
      let bestW = tolerance;
      for (let j = 0; j < m; j++) {
        if (passive[j] === 1 || banned[j] === 1) continue;
        let s = h[j] * residual[n];
        for (let i = 0; i < n; i++) s += G[j * n + i] * residual[i];
        w[j] = s;
        if (s > bestW) {
          bestW = s;
          best = j;
        }
      }
      if (best < 0) break;
      passive[best] = 1;
      // Inner loop: fit on P; step back towards u while any fitted value is not positive.
      let entering = best;
      for (;;) {
        if (++iterations > maxIterations) return QpStatus.NotConverged;
        if (!this.fitPassive(G, h, n, m)) {
          // Only the column that just entered can make P's columns dependent.
          if (entering < 0) return QpStatus.NotConverged;
          passive[entering] = 0;
          banned[entering] = 1;
          break;
        }
        if (entering >= 0 && !(z[entering] > 0)) {
          // Rounding: the entering column does not help after all. Set it aside.
          passive[entering] = 0;
          banned[entering] = 1;
          break;
        }
        entering = -1;
        let alpha = Number.POSITIVE_INFINITY;
        for (let j = 0; j < m; j++) {
          if (passive[j] === 1 && !(z[j] > 0)) alpha = Math.min(alpha, u[j] / (u[j] - z[j]));
        }
        if (alpha === Number.POSITIVE_INFINITY) {
          for (let j = 0; j < m; j++) if (passive[j] === 1) u[j] = z[j];
          break;
        }
        for (let j = 0; j < m; j++) {
          if (passive[j] !== 1) continue;
          u[j] += alpha * (z[j] - u[j]);
          if (u[j] <= 1e-15 * scale) {
            u[j] = 0;
            passive[j] = 0;
          }
        }
      }
    }
    this.computeResidual(G, h, n, m);
    // r = E u − f = −residual. x = −r₁..ₙ / rₙ₊₁ = −residual₁..ₙ / residualₙ₊₁.
    let norm = 0;
    for (let i = 0; i <= n; i++) norm += residual[i] * residual[i];
    if (!(Math.sqrt(norm) > 1e-10)) return QpStatus.Infeasible;
    const last = residual[n];
    if (!(Math.abs(last) > 1e-12)) return QpStatus.Infeasible;
    for (let i = 0; i < n; i++) x[i] = residual[i] / -last;
    return QpStatus.Solved;
  }

  /** residual = f − E u, with E's column j = (G row j, h_j). */
  private computeResidual(G: Float64Array, h: Float64Array, n: number, m: number): void {
    const { residual, u } = this;
    residual.fill(0, 0, n + 1);
    residual[n] = 1;
    for (let j = 0; j < m; j++) {
      const uj = u[j];
      if (uj === 0) continue;
      for (let i = 0; i < n; i++) residual[i] -= G[j * n + i] * uj;
      residual[n] -= h[j] * uj;
    }
  }

  /**
   * z_P = argmin ‖E_P z − f‖ by the normal equations (E_Pᵀ E_P) z = E_Pᵀ f and Cholesky; z = 0
   * off P. Returns false when the factor is singular.
   */
  private fitPassive(G: Float64Array, h: Float64Array, n: number, m: number): boolean {
    const { members, gram, rhs, solution, z, passive } = this;
    let p = 0;
    for (let j = 0; j < m; j++) if (passive[j] === 1) members[p++] = j;
    for (let a = 0; a < p; a++) {
      const ja = members[a];
      for (let b = 0; b <= a; b++) {
        const jb = members[b];
        let s = h[ja] * h[jb];
        for (let i = 0; i < n; i++) s += G[ja * n + i] * G[jb * n + i];
        gram[a * p + b] = s;
      }
      rhs[a] = h[ja]; // E_Pᵀ f: f has a single 1, in row n (the h row).
    }
    // In-place Cholesky (lower triangle).
    for (let a = 0; a < p; a++) {
      let d = gram[a * p + a];
      for (let k = 0; k < a; k++) d -= gram[a * p + k] * gram[a * p + k];
      if (!(d > 1e-14 * Math.max(1, gram[a * p + a]))) return false;
      const l = Math.sqrt(d);
      gram[a * p + a] = l;
      for (let b = a + 1; b < p; b++) {
        let s = gram[b * p + a];
        for (let k = 0; k < a; k++) s -= gram[b * p + k] * gram[a * p + k];
        gram[b * p + a] = s / l;
      }
    }
    // Forward then back substitution.
    for (let a = 0; a < p; a++) {
      let s = rhs[a];
      for (let k = 0; k < a; k++) s -= gram[a * p + k] * solution[k];
      solution[a] = s / gram[a * p + a];
    }
    for (let a = p - 1; a >= 0; a--) {
      let s = solution[a];
      for (let k = a + 1; k < p; k++) s -= gram[k * p + a] * solution[k];
      solution[a] = s / gram[a * p + a];
    }
    z.fill(0, 0, m);
    for (let a = 0; a < p; a++) z[members[a]] = solution[a];
    return true;
  }
}
