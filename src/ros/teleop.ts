/**
 * Teleoperation: follows joint targets from `/teleop/joint_targets` (sensor_msgs/JointState, e.g.
 * a leader arm or a joystick node) with a joint-space PD on a reference that walks toward the
 * target at a bounded speed, so a far or jumping target never asks for a large torque at once.
 * The loop adds gravity compensation and the safety filter, like every other command.
 * When targets stop arriving (older than `targetTimeout` on the node's clock), the reference stops
 * where it is and the arm holds there.
 */
import type { TorqueSource } from "../control/loop.js";
import { JointStateMapper } from "../drivers/ros2/joint-map.js";
import type { JointStateMsg } from "../drivers/ros2/rclnodejs.js";

export interface TeleopGains {
  /** N·m/rad */
  kp: number;
  /** N·m·s/rad */
  kd: number;
  /** Fastest the reference moves toward the target (rad/s). */
  maxSpeed: number;
  /** Targets older than this (s, node clock) are ignored. */
  targetTimeout: number;
}

export class TeleopController {
  readonly source: TorqueSource;
  gains: TeleopGains;
  /** The latest target (model joint order) and when it arrived (node clock, s). */
  readonly target: Float64Array;
  readonly reference: Float64Array;
  targetTime = Number.NEGATIVE_INFINITY;
  targetsReceived = 0;
  targetsRejected = 0;
  lastProblem: string | undefined;
  private readonly mapper: JointStateMapper;
  private readonly scratchPosition: Float64Array;
  private readonly scratchVelocity: Float64Array;
  private readonly scratchEffort: Float64Array;
  private readonly flags = { hasVelocity: false, hasEffort: false };
  private referenceValid = false;
  private now = 0;
  private dt = 0;

  constructor(jointNames: readonly string[], gains: TeleopGains) {
    const n = jointNames.length;
    this.gains = gains;
    this.mapper = new JointStateMapper(jointNames);
    this.target = new Float64Array(n);
    this.reference = new Float64Array(n);
    this.scratchPosition = new Float64Array(n);
    this.scratchVelocity = new Float64Array(n);
    this.scratchEffort = new Float64Array(n);
    this.source = (state, out) => {
      if (!this.referenceValid) {
        this.reference.set(state.position);
        this.referenceValid = true;
      }
      const fresh = this.now - this.targetTime <= this.gains.targetTimeout;
      const step = this.gains.maxSpeed * this.dt;
      const { kp, kd } = this.gains;
      for (let i = 0; i < out.length; i++) {
        let refVelocity = 0;
        if (fresh) {
          const error = this.target[i] - this.reference[i];
          const move = Math.max(-step, Math.min(step, error));
          this.reference[i] += move;
          refVelocity = this.dt > 0 ? move / this.dt : 0;
        }
        out[i] = kp * (this.reference[i] - state.position[i]) + kd * (refVelocity - state.velocity[i]);
      }
    };
  }

  /** Call once per tick before the loop ticks with `source`: the node's clock (s) and period (s). */
  advance(now: number, dt: number): void {
    this.now = now;
    this.dt = dt;
  }

  /** Restarts the reference from the measured pose at the next tick (after a stop or a fault). */
  resync(): void {
    this.referenceValid = false;
  }

  /** Takes one target message; a bad one is counted and named, and the old target stays. */
  onTarget(msg: JointStateMsg, now: number): boolean {
    const result = this.mapper.map(
      msg,
      this.scratchPosition,
      this.scratchVelocity,
      this.scratchEffort,
      this.flags,
    );
    if (!result.ok) return this.reject(result.error.replace("joint_states", "teleop target"));
    for (let i = 0; i < this.scratchPosition.length; i++) {
      if (!Number.isFinite(this.scratchPosition[i])) {
        return this.reject(`teleop target: position of "${this.mapper.jointNames[i]}" is not finite`);
      }
    }
    this.target.set(this.scratchPosition);
    this.targetTime = now;
    this.targetsReceived++;
    return true;
  }

  private reject(detail: string): boolean {
    this.targetsRejected++;
    this.lastProblem = detail;
    return false;
  }
}
