import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { describe, it, test } from "node:test";
import {
  ConfigError,
  defaultConfig,
  loadConfig,
  parseConfig,
  withOverrides,
} from "../../src/config/config.js";
import { packageRoot } from "../../src/util/paths.js";

describe("config", () => {
  it("the shipped config/mbpo_arm.yaml equals the built-in defaults", () => {
    const shipped = loadConfig(`${packageRoot()}/config/mbpo_arm.yaml`);
    assert.deepEqual(shipped, defaultConfig());
  });

  it("accepts the /** wildcard and dotted keys as ros2 param dump writes them", () => {
    const c = parseConfig(
      "/**:\n  ros__parameters:\n    safety.effort_scale: 0.5\n    control_rate_hz: 25.0\n",
    );
    assert.equal(c.safety.effort_scale, 0.5);
    assert.equal(c.safety.stale_timeout, defaultConfig().safety.stale_timeout);
    assert.equal(c.control_rate_hz, 25);
  });

  it("has a dynamixel section with the bus defaults, overridable from the command line", () => {
    const d = defaultConfig().dynamixel;
    assert.deepEqual(d, { port: "/dev/ttyUSB0", baud: 1000000, calibration: "calibration/arm.yaml" });
    const c = withOverrides(defaultConfig(), { "dynamixel.port": "/dev/ttyACM1", "dynamixel.baud": 57600 });
    assert.equal(c.dynamixel.port, "/dev/ttyACM1");
    assert.equal(c.dynamixel.baud, 57600);
    assert.throws(() => withOverrides(defaultConfig(), { "dynamixel.baud": -1 }), /"dynamixel\.baud"/);
  });

  it("names an unknown key, nested or not", () => {
    assert.throws(
      () => parseConfig("mbpo_arm:\n  ros__parameters:\n    safety:\n      effort_scal: 0.5\n", "f.yaml"),
      (e: Error) =>
        e instanceof ConfigError && /f\.yaml: unknown parameter "safety\.effort_scal"/.test(e.message),
    );
    assert.throws(
      () => parseConfig("mbpo_arm:\n  ros__parameters:\n    contrl_rate_hz: 5\n"),
      /unknown parameter "contrl_rate_hz"/,
    );
  });

  it("names a bad value and says what was expected", () => {
    assert.throws(
      () => parseConfig("mbpo_arm:\n  ros__parameters:\n    safety:\n      effort_scale: 1.5\n"),
      /parameter "safety\.effort_scale": .*1/,
    );
    assert.throws(
      () => parseConfig("mbpo_arm:\n  ros__parameters:\n    control_rate_hz: fast\n"),
      /"control_rate_hz"/,
    );
    assert.throws(() => parseConfig("mbpo_arm:\n  ros__parameters:\n    driver: can\n"), /"driver"/);
  });

  it("rejects files that are not a parameter file for this node", () => {
    assert.throws(
      () => parseConfig("other_node:\n  ros__parameters: {}\n", "x.yaml"),
      /x\.yaml: no "mbpo_arm" node section/,
    );
    assert.throws(() => parseConfig("mbpo_arm:\n  control_rate_hz: 5\n"), /no "ros__parameters"/);
    assert.throws(() => parseConfig("- 1\n- 2\n"), /expected a ROS 2 parameter file/);
    assert.throws(() => parseConfig("a: [\n"), /not valid YAML/);
    assert.throws(
      () => loadConfig("/nonexistent/mbpo.yaml"),
      /\/nonexistent\/mbpo\.yaml: cannot read config file: ENOENT/,
    );
  });

  it("applies dotted overrides and re-validates them", () => {
    const c = withOverrides(defaultConfig(), { "safety.effort_scale": 0.25, seed: 7, urdf: undefined });
    assert.equal(c.safety.effort_scale, 0.25);
    assert.equal(c.seed, 7);
    assert.equal(c.urdf, "urdf/arm.urdf");
    assert.throws(
      () => withOverrides(defaultConfig(), { "safety.nope": 1 }),
      /unknown parameter "safety\.nope"/,
    );
    assert.throws(() => withOverrides(defaultConfig(), { seed: -1 }), /parameter "seed"/);
  });

  it("every shipped key is documented by a comment in the file", () => {
    const text = readFileSync(`${packageRoot()}/config/mbpo_arm.yaml`, "utf8");
    for (const line of text.split("\n")) {
      const m = /^\s+(\w+): \S/.exec(line);
      if (m && m[1] !== "ros__parameters" && !/name|urdf|driver|seed/.test(m[1])) {
        assert.match(line, /#/, `config line without a comment: ${line.trim()}`);
      }
    }
  });
});

test("sim.physics_rate_hz is bounded, and at least the control rate", () => {
  const file = (rate: string, control = "50.0") =>
    `mbpo_arm:\n  ros__parameters:\n    control_rate_hz: ${control}\n    sim:\n      physics_rate_hz: ${rate}\n`;
  assert.throws(
    () => parseConfig(file("1e12"), "f.yaml"),
    /f\.yaml: parameter "sim\.physics_rate_hz": .*20000/,
  );
  assert.throws(() => parseConfig(file("10"), "f.yaml"), /parameter "sim\.physics_rate_hz"/);
  assert.throws(
    () => parseConfig(file("100", "200.0"), "f.yaml"),
    /parameter "sim\.physics_rate_hz": must be at least control_rate_hz \(200 Hz\), got 100/,
  );
  assert.equal(parseConfig(file("500")).sim.physics_rate_hz, 500);
});

test("a __proto__, constructor or prototype key is refused by name and never reaches Object.prototype", () => {
  for (const key of ["__proto__.polluted", "safety.__proto__.polluted", "constructor.prototype.polluted"]) {
    assert.throws(() => withOverrides(defaultConfig(), { [key]: 1 }), /is not a setting name/);
  }
  const yaml = "mbpo_arm:\n  ros__parameters:\n    __proto__:\n      polluted: 1\n";
  assert.throws(() => parseConfig(yaml, "f.yaml"), /"__proto__" is not a setting name/);
  assert.equal(({} as Record<string, unknown>)["polluted"], undefined);
});

test("rcl's boolean spellings (yes/no, on/off, True/FALSE) are booleans, in the file and in -p", () => {
  const yaml = "mbpo_arm:\n  ros__parameters:\n    gravity_compensation: no\n    sim:\n      realtime: On\n";
  const c = parseConfig(yaml, "f.yaml");
  assert.equal(c.gravity_compensation, false);
  assert.equal(c.sim.realtime, true);
  const o = withOverrides(defaultConfig(), {
    "safety.dynamic_limits": "off",
    "safety.use_soft_limits": "YES",
  });
  assert.equal(o.safety.dynamic_limits, false);
  assert.equal(o.safety.use_soft_limits, true);
  // Only where the setting is a boolean: a string setting keeps the text.
  assert.equal(withOverrides(defaultConfig(), { "dynamixel.port": "yes" }).dynamixel.port, "yes");
  assert.throws(
    () => withOverrides(defaultConfig(), { gravity_compensation: "maybe" }),
    /gravity_compensation/,
  );
});

test("every numeric setting is bounded: a value outside its range is an error naming the key", () => {
  // [key, a value just outside the range, a value just inside it, other settings it needs]
  const cases: [string, unknown, unknown, Record<string, unknown>?][] = [
    ["control_rate_hz", 9.99, 10, { "safety.safe_stop_bandwidth": 6 }],
    ["control_rate_hz", 1001, 1000],
    ["action_torque_fraction", 1.01, 1],
    ["action_damping", 100.5, 100],
    ["hold_damping", -0.1, 0],
    ["hold_damping", 1e6, 100],
    ["seed", -1, 0],
    ["seed", 0.5, 7],
    ["safety.effort_scale", 0, 0.01],
    ["safety.torque_rate_limit", 2e5, 1e5],
    ["safety.stale_timeout", 1.5, 1],
    ["safety.stale_grace", 6, 5],
    ["safety.position_margin", 0.6, 0.5],
    ["safety.velocity_margin", 1.1, 1],
    ["safety.velocity_headroom", 1, 0.99],
    ["safety.approach_rate", 0, 1],
    ["safety.model_error", 1, 0.5],
    ["safety.position_headroom", 0.6, 0.5],
    ["safety.brake_fraction", 1.5, 1],
    ["safety.safe_stop_bandwidth", 0.5, 1],
    ["sim.physics_rate_hz", 20001, 20000],
    ["dynamixel.baud", 1000001, 57600],
    ["dynamixel.baud", 0, 4500000],
    ["task.episode_steps", 10_000_001, 10_000_000],
    ["task.episode_steps", 0, 1],
    ["task.success_radius", 1.5, 1],
    ["task.target_spread", 4, Math.PI],
    ["reset.kp", 20_000, 10_000],
    ["reset.kd", 101, 100],
    ["reset.speed", 1e-9, 0.05],
    ["reset.speed", 11, 10],
    ["reset.tolerance", 0.6, 0.5],
    ["reset.timeout", 61, 60],
  ];
  for (const [key, bad, good, needs = {}] of cases) {
    const pattern = new RegExp(`: -p: parameter "${key.replace(".", "\\.")}": `);
    assert.throws(() => withOverrides(defaultConfig(), { [key]: bad }, "-p"), pattern, `${key}=${bad}`);
    assert.doesNotThrow(
      () => withOverrides(defaultConfig(), { ...needs, [key]: good }, "-p"),
      `${key}=${good}`,
    );
  }
});

test("settings that depend on the control rate are checked against it, and the error says the bound", () => {
  const at = (rate: number, overrides: Record<string, unknown>) =>
    withOverrides(defaultConfig(), { control_rate_hz: rate, ...overrides }, "-p");
  // A state one control period old is the normal case; less would call every state stale.
  assert.throws(
    () => at(100, { "safety.stale_timeout": 0.005 }),
    /parameter "safety\.stale_timeout": must be at least one control period \(0\.01 s at 100 Hz\), got 0\.005/,
  );
  assert.equal(at(100, { "safety.stale_timeout": 0.01 }).safety.stale_timeout, 0.01);
  // The sampled brake-and-hold oscillates above ω·T = 0.6: at 20 Hz the default 15 rad/s is too much.
  assert.throws(
    () => at(20, {}),
    /parameter "safety\.safe_stop_bandwidth": must be at most 0\.6 × control_rate_hz \(12 rad\/s at 20 Hz.*got 15/,
  );
  assert.equal(at(20, { "safety.safe_stop_bandwidth": 12 }).safety.safe_stop_bandwidth, 12);
  assert.equal(at(25, {}).safety.safe_stop_bandwidth, 15, "the defaults hold from 25 Hz up");
});
