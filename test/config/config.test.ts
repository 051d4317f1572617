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
    assert.equal(c.safety.torque_rate_limit, defaultConfig().safety.torque_rate_limit);
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
