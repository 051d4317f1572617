/**
 * The `mbpo_arm` node on the fake rclnodejs, closed around the embedded simulator: the simulator
 * plays the arm under ros2_control (it takes the published efforts and publishes joint_states),
 * the fake clock plays ROS time, and the node's own timers drive its control loop. Shared by the
 * node's test files.
 */
import type { Float64MultiArrayMsg, JointStateMsg } from "../../src/drivers/ros2/rclnodejs.js";
import { toStamp } from "../../src/drivers/ros2/rclnodejs.js";
import { SimDriver } from "../../src/drivers/sim.js";
import { MbpoArmNode, type MbpoArmNodeOptions } from "../../src/ros/node.js";
import { type FakeNode, FakeRclnodejs } from "./fake-rclnodejs.js";

export const quiet = { info: () => {}, warn: () => {}, error: () => {} };

export interface Rig {
  rcl: FakeRclnodejs;
  node: FakeNode;
  arm: MbpoArmNode;
  sim: SimDriver;
  /** Publishes the simulator's state (stamped now) without moving time. */
  publishState(mutate?: (msg: JointStateMsg) => void): void;
  /** One control period: the arm moves under the last command, a state is published, timers fire. */
  step(options?: { publish?: boolean; mutate?: (msg: JointStateMsg) => void }): Promise<void>;
  run(ticks: number): Promise<void>;
  commands(): Float64Array[];
}

export async function rig(
  args: string[] = [],
  options: Partial<MbpoArmNodeOptions> = {},
  /** Given to arm.start(): the node's shutdown, as `mbpo-arm node` passes it. */
  startSignal?: AbortSignal,
): Promise<Rig> {
  const rcl = new FakeRclnodejs();
  await rcl.init(undefined, ["node", "main.js", "--ros-args", ...args]);
  const node = rcl.createNode("mbpo_arm");
  const arm = new MbpoArmNode(rcl, node, {
    mode: "run",
    policy: "pd",
    episodes: 0,
    logger: quiet,
    ...options,
  });
  await arm.start(startSignal);
  const sim = new SimDriver({ model: arm.model, physicsRateHz: 1000 });
  await sim.start();
  const names = arm.model.joints.map((j) => j.name);
  const period = arm.loop.period;
  const seconds = () => Number(rcl.clockNs) / 1e9;
  const publishState = (mutate?: (msg: JointStateMsg) => void) => {
    const s = sim.readState()!;
    const msg: JointStateMsg = {
      header: { stamp: toStamp(seconds()), frame_id: "" },
      name: [...names, "gripper"],
      position: Float64Array.from([...s.position, 0.01]),
      velocity: Float64Array.from([...s.velocity, 0]),
      effort: Float64Array.from([...s.effort, 0]),
    };
    mutate?.(msg);
    node.deliver("/joint_states", msg);
  };
  const lastCommand = () => node.last<Float64MultiArrayMsg>("/effort_controller/commands");
  const step = async (o: { publish?: boolean; mutate?: (msg: JointStateMsg) => void } = {}) => {
    const cmd = lastCommand();
    if (cmd !== undefined) sim.sendEffort(Float64Array.from(cmd.data));
    sim.advance(period);
    rcl.advance(period);
    if (o.publish !== false) publishState(o.mutate);
    node.fireDueTimers();
    await new Promise<void>((r) => setImmediate(r));
  };
  return {
    rcl,
    node,
    arm,
    sim,
    publishState,
    step,
    run: async (ticks) => {
      for (let i = 0; i < ticks; i++) await step();
    },
    commands: () =>
      ((node.published.get("/effort_controller/commands") ?? []) as Float64MultiArrayMsg[]).map((m) =>
        Float64Array.from(m.data),
      ),
  };
}

/** close(), with the simulated arm and the ROS clock going on until it returns (it waits for rest). */
export async function closeStepping(r: Rig, maxSteps = 1000): Promise<void> {
  let closed = false;
  const closing = r.arm.close().then(() => {
    closed = true;
  });
  for (let i = 0; i < maxSteps && !closed; i++) await r.step();
  await closing;
}

/** Steps until `done()` holds (or maxSteps); returns whether it does. */
export async function stepUntil(r: Rig, done: () => boolean, maxSteps = 20_000): Promise<boolean> {
  for (let i = 0; i < maxSteps && !done(); i++) await r.step();
  return done();
}
