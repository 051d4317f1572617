import type { Policy, PolicyContext } from "../policy.js";

/** Always the zero action: with gravity compensation in the loop, the arm floats where it is. */
export class ZeroPolicy implements Policy {
  readonly name = "zero";

  reset(): void {}

  act(_obs: Float32Array, _ctx: PolicyContext, out: Float32Array): void {
    out.fill(0);
  }
}
