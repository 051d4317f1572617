/**
 * The `mbpo_arm` node on the fake rclnodejs, closed around the embedded simulator: the simulator
 * plays the arm under ros2_control (it takes the published efforts and publishes joint_states),
 * the fake clock plays ROS time, and the node's own timers drive its control loop.
 */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import { test } from "node:test";
import fc from "fast-check";
import { parse as parseYaml } from "yaml";
import type { TransitionSink } from "../../src/app/transitions.js";
import type { EpisodeResult, Transition } from "../../src/control/episode.js";
import type { JointState } from "../../src/drivers/driver.js";
import type { DiagnosticArrayMsg, JointStateMsg } from "../../src/drivers/ros2/rclnodejs.js";
import { ParameterType, toStamp } from "../../src/drivers/ros2/rclnodejs.js";
import { Dynamics } from "../../src/robot/dynamics.js";
import { MbpoArmNode } from "../../src/ros/node.js";
import { configParameterSpecs, LIVE_SETTINGS } from "../../src/ros/parameters.js";
import { INTERVENTION_KINDS } from "../../src/safety/filter.js";
import { packageRoot } from "../../src/util/paths.js";
import { FakeRclnodejs } from "./fake-rclnodejs.js";
import { quiet, type Rig, rig } from "./rig.js";

const CONFIG_FILE = resolve(packageRoot(), "config/mbpo_arm.yaml");

class Sink implements TransitionSink {
  transitions: { t: Transition; state: JointState; next: JointState }[] = [];
  episodes: EpisodeResult[] = [];
  record(t: Transition, state: JointState, next: JointState): void {
    this.transitions.push({
      t: {
        ...t,
        obs: t.obs.slice(),
        nextObs: t.nextObs.slice(),
        action: t.action.slice(),
        effort: t.effort.slice(),
      },
      state: { ...state, position: state.position.slice(), velocity: state.velocity.slice() },
      next: { ...next, position: next.position.slice(), velocity: next.velocity.slice() },
    });
  }
  endEpisode(result: EpisodeResult): void {
    this.episodes.push(result);
  }
}

/** The latched fault's reason (read through a call: TypeScript would narrow a repeated read). */
function faultReason(r: Rig): string | undefined {
  return r.arm.safety.fault?.reason;
}

function assertWithinLimits(r: Rig, commands: Float64Array[]): void {
  const scale = r.arm.config.safety.effort_scale;
  for (const c of commands) {
    r.arm.model.joints.forEach((j, i) => {
      assert.ok(Number.isFinite(c[i]), `command ${i} is not finite: ${c[i]}`);
      assert.ok(Math.abs(c[i]) <= j.effort * scale + 1e-9, `|${c[i]}| > ${j.effort * scale} on ${j.name}`);
    });
  }
}

test("every setting of config/mbpo_arm.yaml is declared, typed, ranged, and read-only unless live-safe", async () => {
  const r = await rig();
  const specs = configParameterSpecs();
  const yaml = parseYaml(readFileSync(CONFIG_FILE, "utf8")).mbpo_arm.ros__parameters as Record<
    string,
    unknown
  >;
  const keys: string[] = [];
  const walk = (o: Record<string, unknown>, p: string) => {
    for (const [k, v] of Object.entries(o)) {
      if (v !== null && typeof v === "object" && !Array.isArray(v))
        walk(v as Record<string, unknown>, `${p}${k}.`);
      else keys.push(p + k);
    }
  };
  walk(yaml, "");
  for (const key of keys) {
    assert.ok(r.node.parameters.has(key), `config key ${key} is not a parameter`);
    assert.ok(specs.some((s) => s.name === key));
  }
  for (const spec of specs) {
    const d = r.node.descriptors.get(spec.name);
    assert.ok(d, `no descriptor for ${spec.name}`);
    assert.equal(d.readOnly, !LIVE_SETTINGS.includes(spec.name), `${spec.name} read-only`);
    assert.ok(d.description.length > 10, `${spec.name} has a description`);
  }
  const scale = r.node.descriptors.get("safety.effort_scale")!;
  assert.equal(scale.type, ParameterType.PARAMETER_DOUBLE);
  assert.equal(scale.readOnly, true);
  assert.deepEqual([scale.range?.fromValue, scale.range?.toValue], [0, 1]);
  // effort_scale is gt(0): a ROS range cannot exclude 0 (the schema refuses it), the words say so.
  assert.equal(scale.additionalConstraints, "range (0, 1]");
  // episode_steps is a positive integer: its ROS range starts at 1, not at the excluded 0.
  const stepsRange = r.node.descriptors.get("task.episode_steps")!;
  assert.deepEqual([stepsRange.range?.fromValue, stepsRange.range?.toValue], [1n, 10_000_000n]);
  assert.equal(stepsRange.additionalConstraints, "range [1, 10000000]");
  assert.equal(r.node.descriptors.get("reset.speed")!.additionalConstraints, "range [0.05, 10]");
  // Gains without a fixed default are derived from the arm and declared per joint (arm-parameters.ts).
  assert.equal(r.node.descriptors.get("hold_damping")?.type, ParameterType.PARAMETER_DOUBLE_ARRAY);
  assert.deepEqual(r.node.getParameter("hold_damping").value, r.arm.app.stack.gains.holdDamping);
  assert.match(scale.description, /fraction of the URDF effort limit/, "description from the YAML comment");
  const steps = r.node.getParameter("task.episode_steps");
  assert.equal(steps.type, ParameterType.PARAMETER_INTEGER);
  assert.equal(typeof steps.value, "bigint");
  assert.equal(r.node.descriptors.get("driver")!.additionalConstraints, "one of: sim, ros2, dynamixel");
  assert.equal(r.node.getParameter("driver").value, "ros2");
  assert.equal(r.node.descriptors.get("reset.speed")!.readOnly, false);
});

test("--params-file and -p overrides: the node's own entries win over plain -p, as in rcl", async () => {
  const r = await rig([
    "--params-file",
    CONFIG_FILE,
    "-p",
    "mbpo_arm:safety.effort_scale:=0.5",
    "-p",
    "task.episode_steps:=20", // loses to the file's mbpo_arm section (100)
    "-p",
    "reset.speed:=0.5", // the file sets it too: loses
    "-p",
    "teleop.kp:=7.0", // not in the file: applies
  ]);
  assert.equal(r.arm.config.safety.effort_scale, 0.5);
  assert.equal(r.arm.config.task.episode_steps, 100);
  assert.equal(r.arm.config.reset.speed, 1);
  assert.equal(r.arm.teleop.gains.kp, 7);
  assert.equal(r.arm.config.control_rate_hz, 50);
  assert.equal(r.node.timers[0].periodNs, 20_000_000n, "control timer period: bigint nanoseconds");
  // Without a params file, plain -p sets a setting.
  const plain = await rig(["-p", "task.episode_steps:=20"]);
  assert.equal(plain.arm.task.episodeSteps, 20);
});

test("a bad parameter value is a one-line error naming the parameter", async () => {
  const cases: [string, RegExp][] = [
    ["safety.effort_scale:=1.5", /parameter "safety\.effort_scale"/],
    ["control_rate_hz:=fast", /parameter "control_rate_hz"/],
    ["control_rate_hz:=100", /parameter "control_rate_hz"/], // an integer for a double
    ["safety.stale_timeout:=0.0", /"safety\.stale_timeout"/], // in the descriptor's range, but must be > 0
    ["driver:=serial", /"driver"/],
  ];
  for (const [arg, pattern] of cases) {
    const rcl = new FakeRclnodejs();
    await rcl.init(undefined, ["--ros-args", "-p", arg]);
    const node = rcl.createNode("mbpo_arm");
    assert.throws(
      () => new MbpoArmNode(rcl, node, { mode: "run", logger: quiet }),
      (err: Error) => {
        assert.match(err.message, pattern, arg);
        assert.ok(!err.message.includes("\n"), `one line: ${err.message}`);
        return true;
      },
      arg,
    );
  }
});

test("live changes: read-only refused, invalid refused, valid taken when stopped", async () => {
  const r = await rig();
  const set = (name: string, type: (typeof ParameterType)[keyof typeof ParameterType], value: unknown) =>
    r.node.setParameters([new r.rcl.Parameter(name, type, value)]);
  const D = ParameterType.PARAMETER_DOUBLE;
  assert.match(set("safety.effort_scale", D, 0.2).reason, /read-only/);
  assert.match(set("control_rate_hz", D, 10).reason, /read-only/);
  assert.equal(set("reset.speed", D, 0.01).successful, false, "below the range");
  const zeroSteps = set("task.episode_steps", ParameterType.PARAMETER_INTEGER, 0n);
  assert.equal(zeroSteps.successful, false);
  assert.match(zeroSteps.reason, /task\.episode_steps/);
  assert.equal(r.arm.config.task.episode_steps, 100, "a refused change changes nothing");
  assert.equal(set("reset.speed", D, 0.5).successful, true);
  assert.equal(set("task.episode_steps", ParameterType.PARAMETER_INTEGER, 30n).successful, true);
  assert.equal(r.arm.config.reset.speed, 0.5);
  assert.equal(r.arm.task.episodeSteps, 30, "the task is rebuilt with the new length");
  assert.equal(set("teleop.kp", D, 6).successful, true);
  assert.equal(r.arm.teleop.gains.kp, 6);
  assert.equal(set("teleop.kd", D, Number.NaN).successful, false);
});

test("services and topics: std_srvs types, private names, the e-stop subscription", async () => {
  const r = await rig();
  assert.equal(r.node.services.get("/mbpo_arm/start")?.type, "std_srvs/srv/Trigger");
  assert.equal(r.node.services.get("/mbpo_arm/stop")?.type, "std_srvs/srv/Trigger");
  assert.equal(r.node.services.get("/mbpo_arm/reset_fault")?.type, "std_srvs/srv/Trigger");
  assert.equal(r.node.services.get("/mbpo_arm/set_learning")?.type, "std_srvs/srv/SetBool");
  assert.ok(
    r.node.subscriptions.some((s) => s.topic === "/mbpo_arm/estop" && s.type === "std_msgs/msg/Bool"),
  );
  const noState = r.node.call("~/start");
  assert.equal(noState.success, false);
  assert.match(String(noState.message), /no joint state/);
  const learn = r.node.call("~/set_learning", { data: true });
  assert.equal(learn.success, false);
  assert.match(String(learn.message), /not in learn mode/);
});

test("run mode: episodes through the ROS timer, every transition recorded, commands within limits", async () => {
  const sink = new Sink();
  const r = await rig(["-p", "task.episode_steps:=25", "-p", "reset.timeout:=0.5"], {
    recorder: sink,
    episodes: 2,
  });
  for (let i = 0; i < 5; i++) await r.step({ publish: false });
  assert.equal(r.commands().length, 0, "nothing is published before the first joint state");
  assert.equal(r.arm.safety.fault, undefined, "and no fault latches while waiting for it");
  await r.run(3);
  assert.equal(r.arm.running, false);
  assert.equal(r.commands().length, 3, "holding: one command per timer tick before ~/start");
  const start = r.node.call("~/start");
  assert.equal(start.success, true, String(start.message));
  for (let i = 0; i < 800 && r.arm.running; i++) await r.step();
  assert.equal(r.arm.running, false, "two episodes end by themselves");
  assert.equal(r.arm.episodesDone, 2);
  assert.equal(sink.episodes.length, 2);
  assert.equal(sink.transitions.length, 50);
  assert.deepEqual(
    sink.transitions.map((x) => x.t.step),
    [...Array(25).keys(), ...Array(25).keys()],
  );
  // Each transition joins the state the tick acted on and the state one period later.
  for (const { state, next } of sink.transitions) assert.ok(Math.abs(next.stamp - state.stamp - 0.02) < 1e-6);
  assert.equal(r.commands().length, r.arm.loop.ticks, "exactly one command per tick");
  assertWithinLimits(r, r.commands());
  assert.equal(r.arm.safety.fault, undefined);
});

test("~/stop ends the episode at once and holds", async () => {
  const r = await rig(["-p", "reset.timeout:=0.5"]);
  const control = r.node.timers[0];
  let fired = 0;
  const callback = control.callback;
  control.callback = () => {
    fired++;
    callback();
  };
  r.publishState();
  assert.equal(r.node.call("~/start").success, true);
  assert.equal(r.commands().length, 0, "~/start itself sends nothing: the episode starts on the timer");
  await r.run(40);
  const stop = r.node.call("~/stop");
  assert.equal(stop.success, true);
  await r.run(2);
  assert.equal(r.arm.running, false);
  const ticks = r.arm.loop.ticks;
  await r.run(10);
  assert.equal(r.arm.loop.ticks, ticks + 10, "the hold keeps ticking");
  assert.equal(r.arm.lastResult?.aborted, true);
  const first = r.arm.lastResult!;
  assert.equal(r.node.call("~/start").success, true);
  await r.run(30);
  // One command per control timer tick, through start, stop and start (the reset move waits out
  // its last period before the first policy tick, so no two commands share a tick).
  assert.ok(first.resetReached || r.arm.runner.result.resetReached, "a reset move arrived");
  assert.equal(r.commands().length, fired);
});

/** The gravity torque at the driver's last joint state (what the filter holds without a fresh one). */
function gravityAtLastState(r: Rig): Float64Array {
  const gravity = new Float64Array(4);
  new Dynamics(r.arm.model).gravity(Float64Array.from(r.arm.driver.readState()!.position), gravity);
  return gravity;
}

function assertNear(actual: ArrayLike<number>, expected: ArrayLike<number>, what: string): void {
  for (let i = 0; i < expected.length; i++) {
    assert.ok(
      Math.abs(actual[i] - expected[i]) < 0.01,
      `${what}, joint ${i}: ${actual[i]} vs ${expected[i]}`,
    );
  }
}

test("a stale state holds the arm, latches after the grace, and reset needs a fresh state", async () => {
  const r = await rig();
  r.publishState();
  await r.run(5);
  assert.equal(r.arm.safety.fault, undefined);
  // 0.2 s without a state: within stale_timeout + stale_grace (0.6 s), held, nothing latched.
  for (let i = 0; i < 10; i++) await r.step({ publish: false });
  assert.equal(r.arm.safety.fault, undefined);
  assertNear(r.commands().at(-1)!, gravityAtLastState(r), "held on the last trusted gravity");
  for (let i = 0; i < 30; i++) await r.step({ publish: false });
  assert.equal(faultReason(r), "stale_state");
  assertNear(r.commands().at(-1)!, gravityAtLastState(r), "still held after the latch, never zero");
  assert.equal(r.node.call("~/reset_fault").success, false);
  await r.run(2);
  assert.equal(r.node.call("~/reset_fault").success, true);
  assert.equal(r.arm.safety.fault, undefined);
});

test("a non-finite state latches a fault and holds the last trusted gravity", async () => {
  const r = await rig();
  r.publishState();
  await r.run(3);
  await r.step({ mutate: (m) => ((m.velocity as Float64Array)[2] = Number.NaN) });
  assert.equal(faultReason(r), "nonfinite_state");
  assertWithinLimits(r, r.commands());
  const last = r.commands().at(-1)!;
  assert.ok(
    Array.from(last).every(Number.isFinite) && Math.abs(last[1]) > 0.01,
    `held, not zero: ${Array.from(last)}`,
  );
});

test("a joint missing from joint_states latches a safe stop naming it", async () => {
  const r = await rig();
  r.publishState();
  await r.run(3);
  await r.step({
    mutate: (m) => {
      m.name = m.name.map((n) => (n === "joint3" ? "elbow" : n));
    },
  });
  assert.equal(faultReason(r), "driver");
  assert.match(r.arm.safety.fault!.detail, /"joint3"/);
});

test("the e-stop latches a safe stop until it is released and ~/reset_fault; ~/start is refused meanwhile", async () => {
  const r = await rig(["-p", "reset.timeout:=0.5"]);
  r.publishState();
  assert.equal(r.node.call("~/start").success, true);
  await r.run(20);
  r.node.deliver("~/estop", { data: false });
  assert.equal(r.arm.safety.fault, undefined, "false does nothing");
  r.node.deliver("~/estop", { data: true });
  assert.equal(r.arm.running, false);
  assert.equal(faultReason(r), "estop");
  await r.run(5);
  // Safe stop with a fresh state, the arm at rest: it holds the pose against gravity.
  const state = r.arm.driver.readState()!;
  const gravity = new Float64Array(4);
  new Dynamics(r.arm.model).gravity(state.position, gravity);
  const last = r.commands().at(-1)!;
  for (let i = 0; i < 4; i++) {
    assert.ok(Math.abs(state.velocity[i]) < 0.05, `joint ${i} at rest: ${state.velocity[i]} rad/s`);
    const expected = gravity[i];
    assert.ok(Math.abs(last[i] - expected) < 0.05, `joint ${i}: ${last[i]} vs ${expected}`);
  }
  const refused = r.node.call("~/start");
  assert.equal(refused.success, false);
  assert.match(String(refused.message), /reset_fault/);
  assert.equal(r.node.call("~/reset_fault").success, false, "refused while the e-stop is asserted");
  r.node.deliver("~/estop", { data: false });
  assert.equal(faultReason(r), "estop", "releasing the e-stop does not clear the fault");
  assert.equal(r.node.call("~/reset_fault").success, true);
  assert.equal(r.node.call("~/start").success, true);
});

test("teleop mode follows /teleop/joint_targets at a bounded speed and records the transitions", async () => {
  const sink = new Sink();
  const r = await rig(["-p", "task.episode_steps:=50"], { mode: "teleop", recorder: sink });
  r.publishState();
  assert.equal(r.node.call("~/start").success, true);
  const target = (q: number[]) =>
    r.node.deliver("/teleop/joint_targets", {
      header: { stamp: toStamp(0), frame_id: "" },
      name: ["joint4", "joint3", "joint2", "joint1"],
      position: Float64Array.from([...q].reverse()),
      velocity: new Float64Array(0),
      effort: new Float64Array(0),
    });
  for (let i = 0; i < 200; i++) {
    target([0.3, 0.4, -0.5, 0.2]);
    await r.step();
  }
  const q = r.arm.driver.readState()!.position;
  const expected = [0.3, 0.4, -0.5, 0.2];
  for (let i = 0; i < 4; i++) assert.ok(Math.abs(q[i] - expected[i]) < 0.05, `joint ${i + 1}: ${q[i]}`);
  assert.ok(sink.transitions.length >= 195, `${sink.transitions.length} transitions`);
  assert.ok(sink.episodes.length >= 3, "segments of the task's episode length");
  assert.equal(sink.episodes[0].steps, 50);
  for (const e of sink.episodes) {
    for (const kind of Object.keys(e.interventions))
      assert.ok(INTERVENTION_KINDS.includes(kind as never), kind);
  }
  // The recorded effort is what was published (in the controller's order, here the URDF's).
  const published = r.commands();
  const lastT = sink.transitions.at(-1)!.t;
  assert.ok(published.some((c) => c.every((v, i) => v === lastT.effort[i])));
  assertWithinLimits(r, published);
  // Targets stop: the arm holds where it is.
  for (let i = 0; i < 50; i++) await r.step();
  const held = r.arm.driver.readState()!.position;
  for (let i = 0; i < 4; i++) assert.ok(Math.abs(held[i] - expected[i]) < 0.05);
  // A bad target is refused, the last good one stays.
  assert.equal(r.arm.teleop.onTarget({ ...targetMsg(), name: ["joint1"] } as JointStateMsg, 0), false);
  assert.match(r.arm.teleop.lastProblem!, /teleop target lacks joints/);
});

function targetMsg(): JointStateMsg {
  return {
    header: { stamp: toStamp(0), frame_id: "" },
    name: [],
    position: new Float64Array(0),
    velocity: new Float64Array(0),
    effort: new Float64Array(0),
  };
}

test("/diagnostics: safety state and counts, tick timing, episode progress", async () => {
  const r = await rig();
  r.publishState();
  await r.run(60); // 1.2 s: the 1 Hz diagnostics timer fires once
  const diag = r.node.last<DiagnosticArrayMsg>("/diagnostics");
  assert.ok(diag, "nothing on /diagnostics");
  const status = diag.status[0];
  assert.equal(status.level, 0);
  const values = new Map(status.values.map((kv) => [kv.key, kv.value]));
  for (const key of ["fault", "ticks", "tick_compute_p99_us", "episodes_done", "interventions.effortClamp"]) {
    assert.ok(values.has(key), `no ${key}`);
  }
  assert.equal(values.get("fault"), "none");
  for (let i = 0; i < 40; i++) await r.step({ publish: false });
  r.arm.publishDiagnostics();
  const faulted = r.node.last<DiagnosticArrayMsg>("/diagnostics")!.status[0];
  assert.equal(faulted.level, 2);
  assert.match(faulted.message, /stale_state/);
});

test("close(): the arm is brought to rest under the hold, then zero effort, timers cancelled", async () => {
  const r = await rig(["-p", "reset.timeout:=0.5"]);
  r.publishState();
  r.node.call("~/start");
  await r.run(10);
  const ticks = r.arm.loop.ticks;
  let closed = false;
  const closing = r.arm.close().then(() => {
    closed = true;
  });
  for (let i = 0; i < 500 && !closed; i++) await r.step();
  await closing;
  assert.ok(r.arm.loop.ticks >= ticks + 10, "held for at least 0.2 s before stopping");
  const v = r.sim.readState()!.velocity;
  assert.ok(
    Array.from(v).every((x) => Math.abs(x) < 0.05),
    `at rest when stopped: ${Array.from(v)}`,
  );
  assert.deepEqual(Array.from(r.commands().at(-1)!), [0, 0, 0, 0]);
  assert.ok(r.node.timers.every((t) => t.isCanceled()));
});

test("property: whatever arrives on joint_states and teleop, every published command is within limits", async () => {
  let peak = 0;
  await fc.assert(
    fc.asyncProperty(
      fc.array(
        fc.record({
          q: fc.array(
            fc.oneof(fc.double({ min: -4, max: 4 }), fc.constantFrom(Number.NaN, Infinity, -Infinity)),
            {
              minLength: 4,
              maxLength: 4,
            },
          ),
          v: fc.array(fc.double({ min: -20, max: 20, noNaN: true }), { minLength: 4, maxLength: 4 }),
          skip: fc.boolean(),
          target: fc.array(fc.double({ min: -3, max: 3, noNaN: true }), { minLength: 4, maxLength: 4 }),
          estop: fc.boolean(),
          reset: fc.boolean(),
        }),
        { minLength: 5, maxLength: 40 },
      ),
      fc.constantFrom<"run" | "teleop">("run", "teleop"),
      async (steps, mode) => {
        // Short reset moves and full-scale actions, so the random policy and a stiff teleop push the
        // commands against the effort clamp within a few ticks.
        const r = await rig(
          [
            "-p",
            "safety.effort_scale:=0.6",
            "-p",
            "action_torque_fraction:=1.0",
            "-p",
            "reset.speed:=10.0",
            "-p",
            "reset.timeout:=0.05",
            "-p",
            "teleop.kp:=60.0",
            "-p",
            "teleop.max_speed:=10.0",
          ],
          { mode, policy: "random" },
        );
        r.publishState();
        r.node.call("~/start");
        for (const s of steps) {
          if (mode === "teleop") {
            r.node.deliver("/teleop/joint_targets", {
              ...targetMsg(),
              name: ["joint1", "joint2", "joint3", "joint4"],
              position: Float64Array.from(s.target),
            });
          }
          if (s.estop && s.reset) r.node.deliver("~/estop", { data: true });
          await r.step({
            publish: !s.skip,
            mutate: (m) => {
              (m.position as Float64Array).set(s.q);
              (m.velocity as Float64Array).set(s.v);
            },
          });
          if (s.reset) {
            r.node.call("~/reset_fault");
            r.node.call("~/start");
          }
        }
        assertWithinLimits(r, r.commands());
        const limit = Math.max(...r.arm.model.joints.map((j) => j.effort * 0.6));
        peak = Math.max(peak, ...r.commands().map((c) => Math.max(...Array.from(c, Math.abs))));
        assert.ok(peak <= limit + 1e-9);
        await r.arm.close();
      },
    ),
    { numRuns: 40, seed: 7 },
  );
  assert.ok(peak > 0.9 * 4.1 * 0.6, `the runs reached the effort clamp (peak ${peak.toFixed(3)} N·m)`);
});
