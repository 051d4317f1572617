/**
 * The ROS packaging: the launch files compile and name only files, packages and executables that
 * exist; the URDF's <ros2_control> block, config/controllers.yaml and config/mbpo_arm.yaml agree on
 * joint names, effort interfaces and limits; package.xml and CMakeLists.txt install what the node
 * needs. (Running them needs ROS 2; see the README's closing note for what was run for real.)
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { test } from "node:test";
import { XMLParser } from "fast-xml-parser";
import { parse as parseYaml } from "yaml";
import { parseConfig } from "../../src/config/config.js";
import { loadUrdf } from "../../src/robot/urdf.js";
import { packageRoot } from "../../src/util/paths.js";
import { missingDependency, PYTHON3 } from "../support/system.js";

const root = packageRoot();
const read = (rel: string) => readFileSync(resolve(root, rel), "utf8");
const launchDir = resolve(root, "launch");
const launchFiles = readdirSync(launchDir).filter((f) => f.endsWith(".py"));
const xml = new XMLParser({
  ignoreAttributes: false,
  attributeNamePrefix: "",
  isArray: (name) => ["joint", "param", "state_interface", "command_interface", "exec_depend"].includes(name),
});

test("the three launch files and their helper compile (python3 -m py_compile)", (t) => {
  for (const name of ["arm.launch.py", "gazebo.launch.py", "teleop_record.launch.py"]) {
    assert.ok(launchFiles.includes(name), `launch/${name} is missing`);
  }
  const missing = missingDependency(PYTHON3);
  if (missing !== undefined) return t.skip(missing);
  const out = mkdtempSync(join(tmpdir(), "mbpo-launch-"));
  try {
    for (const file of launchFiles) {
      // py_compile into a scratch file, so no __pycache__ lands in launch/.
      const r = spawnSync(
        "python3",
        [
          "-c",
          "import py_compile, sys; py_compile.compile(sys.argv[1], cfile=sys.argv[2], doraise=True)",
          join(launchDir, file),
          join(out, `${file}c`),
        ],
        { encoding: "utf8" },
      );
      assert.equal(r.status, 0, `${file}: ${r.stderr}`);
    }
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
});

test("every file, package and executable the launch files name exists or is declared", () => {
  const packageXml = xml.parse(read("package.xml")).package;
  const deps = new Set<string>(packageXml.exec_depend);
  const cmake = read("CMakeLists.txt");
  let files = 0;
  for (const file of launchFiles) {
    const text = readFileSync(join(launchDir, file), "utf8");
    for (const m of text.matchAll(/'((?:config|urdf|launch|calibration)\/[\w./-]+)'/g)) {
      assert.ok(existsSync(resolve(root, m[1])), `${file} names ${m[1]}, which does not exist`);
      files++;
    }
    for (const m of text.matchAll(/'([\w]+\.launch\.py)'/g)) {
      // ros_gz_sim's own launch file comes with that package (an exec_depend, checked below).
      if (m[1] === "gz_sim.launch.py") continue;
      assert.ok(existsSync(join(launchDir, m[1])), `${file} includes ${m[1]}, which does not exist`);
      files++;
    }
    for (const m of text.matchAll(/(?:package=|get_package_share_directory\()'(\w+)'/g)) {
      if (m[1] === "mbpo_arm") continue;
      assert.ok(deps.has(m[1]), `${file} uses package ${m[1]}: not an exec_depend of package.xml`);
    }
    for (const m of text.matchAll(/executable='(\w+)'/g)) {
      if (m[1] === "mbpo_arm_node") assert.match(cmake, /DESTINATION lib\/\$\{PROJECT_NAME\}/);
    }
  }
  assert.ok(files >= 5, "the launch files name the URDF, the configs and each other");
  // The node's own flags that the launch files pass exist in the CLI.
  const help = spawnSync(process.execPath, [resolve(root, "dist/src/cli/main.js"), "node", "--help"], {
    encoding: "utf8",
  });
  for (const flag of ["--mode", "--policy", "--episodes", "--autostart"])
    assert.ok(help.stdout.includes(flag), flag);
});

test("URDF <ros2_control>, controllers.yaml and mbpo_arm.yaml agree on joints, effort interfaces and limits", () => {
  const model = loadUrdf(resolve(root, "urdf/arm.urdf"));
  const urdfJoints = model.joints.map((j) => j.name);
  const robot = xml.parse(read("urdf/arm.urdf")).robot;
  const control = robot.ros2_control;
  assert.equal(control.type, "system");
  assert.ok(control.hardware.plugin, "a hardware plugin");
  const controlJoints = control.joint as {
    name: string;
    command_interface: { name: string; param: { name: string; "#text": number }[] }[];
    state_interface: { name: string }[];
  }[];
  assert.deepEqual(
    controlJoints.map((j) => j.name),
    urdfJoints,
  );
  const config = parseConfig(read("config/mbpo_arm.yaml"), "config/mbpo_arm.yaml");
  assert.equal(config.urdf, "urdf/arm.urdf");
  for (const [i, j] of controlJoints.entries()) {
    assert.deepEqual(
      j.command_interface.map((c) => c.name),
      ["effort"],
      `${j.name}: effort command only`,
    );
    assert.deepEqual(
      j.state_interface.map((s) => s.name),
      ["position", "velocity", "effort"],
    );
    const params = Object.fromEntries(j.command_interface[0].param.map((p) => [p.name, Number(p["#text"])]));
    const limit = model.joints[i].effort;
    assert.equal(params.max, limit, `${j.name}: command max is the URDF effort limit`);
    assert.equal(params.min, -limit);
    // The node never asks for more than the hardware accepts.
    assert.ok(limit * config.safety.effort_scale <= params.max);
  }
  const controllers = parseYaml(read("config/controllers.yaml"));
  const manager = controllers.controller_manager.ros__parameters;
  assert.equal(manager.effort_controller.type, "effort_controllers/JointGroupEffortController");
  assert.equal(manager.joint_state_broadcaster.type, "joint_state_broadcaster/JointStateBroadcaster");
  assert.ok(manager.update_rate >= config.control_rate_hz, "hardware at least as fast as the control loop");
  assert.deepEqual(controllers.effort_controller.ros__parameters.joints, urdfJoints);
  // Gazebo: gz_ros2_control with the same controllers file.
  const plugin = robot.gazebo.plugin;
  assert.equal(plugin.filename, "gz_ros2_control-system");
  assert.equal(plugin.parameters, "config/controllers.yaml");
});

test("package.xml and CMakeLists.txt: package mbpo_arm, installs dist, node_modules, launch, urdf, config, calibration", () => {
  const pkg = xml.parse(read("package.xml")).package;
  assert.equal(pkg.name, "mbpo_arm");
  assert.equal(String(pkg.version), JSON.parse(read("package.json")).version);
  assert.equal(pkg.export.build_type, "ament_cmake");
  const cmake = read("CMakeLists.txt");
  assert.match(cmake, /project\(mbpo_arm\b/);
  const install = cmake.match(/install\(DIRECTORY ([^\n]+)/);
  assert.ok(install);
  const dirs = install[1].split(/\s+/);
  for (const dir of ["dist", "node_modules", "launch", "urdf", "config", "calibration"]) {
    assert.ok(dirs.includes(dir), `CMakeLists.txt does not install ${dir}`);
    assert.ok(existsSync(resolve(root, dir)), `${dir}/ is missing`);
  }
  assert.match(
    cmake,
    /install\(FILES package\.json/,
    "packageRoot() finds the installed share by package.json",
  );
  assert.match(cmake, /main\.js\\" node/, "the launcher runs the CLI's node command");
});
