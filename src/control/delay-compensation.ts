/**
 * Compensation of a late joint state (a Smith predictor, with the URDF as the model of the arm).
 *
 * On a real arm the state read is part of a control period old (USB latency timer, bus round
 * trip, ROS transport): the command sent last has been acting since it was measured, and a policy
 * or filter acting on the old state acts on the past. `mbpo-arm identify` measures that age. With
 * `state_latency` set, the driver is wrapped in this one: every state read is integrated forward
 * over the latency with the last command sent (src/robot/forward-integrator.ts, 1 kHz steps), so
 * everything above it (the control loop, the safety filter, the policy, the transition log and
 * the learner) sees the best estimate of the state now. The stamp stays the measurement's: a stale
 * state is judged on what was measured. Every other call passes through.
 */
import type { Driver, JointState } from "../drivers/driver.js";
import { ForwardIntegrator } from "../robot/forward-integrator.js";
import type { RobotModel } from "../robot/types.js";

/** Integration rate (Hz) of the prediction. */
const PREDICTION_RATE_HZ = 1000;

export class DelayCompensatedDriver implements Driver {
  readonly name: string;
  readonly jointNames: readonly string[];
  readonly timing: "stepped" | "realtime";
  readonly advance?: (dt: number) => void;
  private readonly integrator: ForwardIntegrator;
  private readonly steps: number;
  private readonly h: number;
  /** The last command sent (zero before the first). */
  private readonly sent: Float64Array;
  private readonly state: JointState;

  constructor(
    /** The driver whose states arrive late. */
    readonly inner: Driver,
    model: RobotModel,
    /** Age of the state read (s), at most one second. */
    readonly latency: number,
  ) {
    if (!(latency > 0 && latency <= 1))
      throw new Error(`DelayCompensatedDriver: latency must be in (0, 1] s, got ${latency}`);
    const n = model.dof;
    this.name = inner.name;
    this.jointNames = inner.jointNames;
    this.timing = inner.timing;
    if (inner.advance !== undefined) this.advance = (dt) => inner.advance?.(dt);
    this.integrator = new ForwardIntegrator(model);
    this.steps = Math.max(1, Math.round(latency * PREDICTION_RATE_HZ));
    this.h = latency / this.steps;
    this.sent = new Float64Array(n);
    this.state = {
      stamp: 0,
      position: new Float64Array(n),
      velocity: new Float64Array(n),
      effort: new Float64Array(n),
    };
  }

  start(): Promise<void> {
    return this.inner.start();
  }

  stop(): Promise<void> {
    this.sent.fill(0);
    return this.inner.stop();
  }

  now(): number {
    return this.inner.now();
  }

  /** The state now, predicted from the late one (the same object every call, as drivers do). */
  readState(): JointState | undefined {
    const measured = this.inner.readState();
    if (measured === undefined) return undefined;
    const { state } = this;
    state.stamp = measured.stamp;
    state.position.set(measured.position);
    state.velocity.set(measured.velocity);
    state.effort.set(measured.effort);
    // A broken reading stays broken: the safety filter must see it, not a prediction from it.
    if (state.position.every(Number.isFinite) && state.velocity.every(Number.isFinite))
      this.integrator.run(state.position, state.velocity, this.sent, this.steps, this.h);
    return state;
  }

  sendEffort(effort: Float64Array): void {
    for (let i = 0; i < this.sent.length; i++) this.sent[i] = Number.isFinite(effort[i]) ? effort[i] : 0;
    this.inner.sendEffort(effort);
  }
}

/** The driver under any compensation: the hardware (or twin) itself. */
export function hardwareDriver(driver: Driver): Driver {
  return driver instanceof DelayCompensatedDriver ? driver.inner : driver;
}
