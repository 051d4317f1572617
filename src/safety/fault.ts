/**
 * Latched faults. A fault, once latched, keeps the safety filter in its safe stop until
 * SafetyFilter.resetFault() succeeds; a second fault while latched does not replace the first,
 * so the report always names the root cause.
 */

export type FaultReason =
  /** No joint state at all (the driver has not delivered one, or lost it). */
  | "missing_state"
  /** position/velocity arrays of the wrong length. */
  | "malformed_state"
  /** The state stayed stale (older than staleTimeout, or in the future) for longer than staleGrace. */
  | "stale_state"
  /** A position or velocity is NaN or ±Infinity. */
  | "nonfinite_state"
  /** A position beyond a hard limit by more than positionMargin. */
  | "position_out_of_range"
  /** A velocity beyond the velocity limit by more than velocityMargin (a fraction of it). */
  | "velocity_out_of_range"
  /** External: an emergency stop (operator, teleop, CLI). */
  | "estop"
  /** External: the driver reported a hardware or communication alert. */
  | "driver"
  /** External: the learner (worker thread) crashed or sent something unusable. */
  | "learner"
  /** A control tick threw (a policy, a task, a driver read): the detail names the exception. */
  | "tick_error"
  /** No control tick ran for longer than the state may be stale (a stalled or blocked control loop). */
  | "loop_stalled";

export interface Fault {
  reason: FaultReason;
  /** One line naming the joint and the value where there is one. */
  detail: string;
  /** When it latched, in seconds on the driver's clock (the `now` of the tick that saw it). */
  since: number;
}

export const FAULT_REASONS: readonly FaultReason[] = [
  "missing_state",
  "malformed_state",
  "stale_state",
  "nonfinite_state",
  "position_out_of_range",
  "velocity_out_of_range",
  "estop",
  "driver",
  "learner",
  "tick_error",
  "loop_stalled",
];
