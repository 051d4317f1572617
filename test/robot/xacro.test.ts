/**
 * xacro as ROS descriptions use it: a package (test/urdf/xacro/mbpo_test_description) with macros
 * in an include found through $(find), link data read with xacro.load_yaml through package://,
 * arguments, block parameters, `^` defaults, conditionals and Python expressions, against the same
 * arm written out by hand; and every malformed construct a one-line error naming file and construct.
 */
import assert from "node:assert/strict";
import { cpSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { after, test } from "node:test";
import { loadRobotDescription } from "../../src/robot/description.js";
import { loadUrdf, UrdfError } from "../../src/robot/urdf.js";
import { expandXacro, XacroError } from "../../src/robot/xacro.js";
import { evaluateExpression } from "../../src/robot/xacro-expression.js";
import { packageRoot } from "../../src/util/paths.js";

const DIR = resolve(packageRoot(), "test/urdf/xacro");
const XACRO = join(DIR, "two_link.urdf.xacro");
const PLAIN = join(DIR, "two_link.urdf");

/** Scratch folders this file made in the system's temporary folder, removed when it ends. */
const scratchDirs: string[] = [];
after(() => {
  for (const dir of scratchDirs) rmSync(dir, { recursive: true, force: true });
});
function scratchDir(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  scratchDirs.push(dir);
  return dir;
}
const options = { packagePaths: [DIR], env: {} };

test("a xacro package (macros, include via $(find), load_yaml via package://, args) expands to the hand-written URDF's model", () => {
  const fromXacro = loadRobotDescription(XACRO, { packagePaths: [DIR] });
  const plain = loadUrdf(PLAIN);
  assert.deepEqual({ ...fromXacro, warnings: [] }, { ...plain, warnings: [] });
  assert.equal(fromXacro.dof, 2);
  assert.equal(fromXacro.endEffector, "tool");
  // A mesh URI is left as written: meshes play no part in the dynamics.
  assert.match(
    expandXacro(XACRO, options).xml,
    /filename="package:\/\/mbpo_test_description\/meshes\/upper.stl"/,
  );
});

test("xacro arguments from the caller replace the defaults", () => {
  const model = loadRobotDescription(XACRO, {
    packagePaths: [DIR],
    xacroArgs: { prefix: "left_", effort: 4 },
  });
  assert.deepEqual(
    model.joints.map((j) => [j.name, j.effort, j.velocity]),
    [
      ["left_shoulder", 4, 4],
      ["left_elbow", 4, 4],
    ],
  );
});

test("$(find) also searches AMENT_PREFIX_PATH (prefix/share/pkg) and ROS_PACKAGE_PATH", () => {
  const viaRosPath = expandXacro(XACRO, { env: { ROS_PACKAGE_PATH: DIR } }).xml;
  assert.equal(viaRosPath, expandXacro(XACRO, options).xml);
  const prefix = scratchDir("mbpo-ament-");
  cpSync(join(DIR, "mbpo_test_description"), join(prefix, "share", "mbpo_test_description"), {
    recursive: true,
  });
  assert.equal(expandXacro(XACRO, { env: { AMENT_PREFIX_PATH: `/nonexistent:${prefix}` } }).xml, viaRosPath);
});

test("tool_frame selects the end-effector link, and an unknown one is a one-line error", () => {
  assert.equal(loadRobotDescription(XACRO, { packagePaths: [DIR], toolFrame: "upper" }).endEffector, "upper");
  assert.throws(
    () => loadRobotDescription(XACRO, { packagePaths: [DIR], toolFrame: "gripper" }),
    (err: Error) => err instanceof UrdfError && /tool_frame "gripper" is not a link/.test(err.message),
  );
});

test("Python expressions: precedence, floor division, power, chained comparison, in, lazy conditional, data access", () => {
  const data = { a: { b: [1, 2, { c: "x" }] }, n: 3 };
  const look = (name: string) => {
    if (name in data) return (data as unknown as Record<string, never>)[name];
    throw new Error(`unknown name "${name}"`);
  };
  const cases: [string, unknown][] = [
    ["1 + 2 * 3 ** 2", 19],
    ["-2 ** 2", -4],
    ["7 // 2 + 7 % 3", 4],
    ["-7 // 2", -4],
    ["1 < n <= 3", true],
    ["1 < n < 3", false],
    ["'b' in a and not ('z' in a)", true],
    ["n if n > 2 else missing", 3],
    ["missing if False else 'no'", "no"],
    ["a.b[2].c + a['b'][2]['c']", "xx"],
    ["a.b[-1]['c']", "x"],
    ["[1, 2][1] * 2.5", 5],
    ["n == 3.0 and True", true],
    ["None or 0 or 'last'", "last"],
  ];
  for (const [text, expected] of cases) assert.deepEqual(evaluateExpression(text, look), expected, text);
  for (const [text, message] of [
    ["lambda x: x", /not supported/],
    ["1 +", /unexpected end/],
    ["'a' - 1", /needs numbers/],
    ["a.q", /no key "q"/],
    ["1 / 0", /division by zero/],
    ["(1, 2", /expected/],
  ] as const)
    assert.throws(() => evaluateExpression(text, look), message, text);
});

/** A xacro file in a scratch folder; returns its path. */
function scratch(body: string, name = "bad.urdf.xacro"): string {
  const dir = scratchDir("mbpo-xacro-");
  const path = join(dir, name);
  writeFileSync(
    path,
    `<?xml version="1.0"?>\n<robot name="r" xmlns:xacro="http://www.ros.org/wiki/xacro">\n${body}\n</robot>\n`,
  );
  return path;
}

test("malformed xacro: a one-line error naming the file and the construct", () => {
  const cases: [string, RegExp][] = [
    ['<xacro:no_such_macro name="a"/>', /<xacro:no_such_macro name="a">: no macro "no_such_macro"/],
    [
      '<xacro:macro name="m" params="x"><link name="${x}"/></xacro:macro><xacro:m/>',
      /<xacro:m>: macro "m" needs parameter "x"/,
    ],
    [
      '<xacro:macro name="m" params="x"><link name="${x}"/></xacro:macro><xacro:m x="1" y="2"/>',
      /macro "m" has no parameter "y"/,
    ],
    [
      '<xacro:macro name="m" params="*b"><xacro:insert_block name="b"/></xacro:macro><xacro:m/>',
      /needs a block for \*b/,
    ],
    [
      '<link name="$(arg nope)"/>',
      /<link name="\$\(arg nope\)">: \$\(arg nope\): argument "nope" has no value/,
    ],
    ['<link name="${undefined_thing * 2}"/>', /unknown name "undefined_thing"/],
    ['<link name="${1 + }"/>', /\$\{1 \+ \}: unexpected end/],
    ['<link name="${unclosed"/>', /unclosed "\$\{"/],
    [
      '<xacro:include filename="missing.xacro"/>',
      /<xacro:include filename="missing.xacro">: cannot read .*missing.xacro \(ENOENT\)/,
    ],
    ['<xacro:include filename="$(find no_such_pkg)/x.xacro"/>', /package "no_such_pkg" not found/],
    ['<xacro:element xacro:name="link"/>', /<xacro:element> is not supported/],
    [
      '<xacro:if value="maybe"><link name="a"/></xacro:if>',
      /<xacro:if value="maybe">: value must be true\/false\/1\/0/,
    ],
    [
      '<xacro:property name="d" value="${xacro.load_yaml(\'nope.yaml\')}"/>',
      /load_yaml: cannot read .*nope.yaml/,
    ],
    [
      '<xacro:macro name="loop" params=""><xacro:loop/></xacro:macro><xacro:loop/>',
      /nested more than 200 deep/,
    ],
    ["<link name='a'><unclosed></link>", /not well-formed XML/],
  ];
  for (const [body, message] of cases) {
    const path = scratch(body);
    assert.throws(
      () => expandXacro(path, { env: {} }),
      (err: Error) => {
        assert.ok(err instanceof XacroError, `${body}: ${err}`);
        assert.ok(err.message.startsWith(path), `${body}: names the file: ${err.message}`);
        assert.match(err.message, message, body);
        assert.ok(!err.message.includes("\n"), `${body}: one line: ${err.message}`);
        return true;
      },
    );
  }
});

test("xacro.warning reaches the model's warnings; a link without <inertial> is a warning, an invalid inertia an error naming the link", () => {
  const warned = scratch(
    `\${xacro.warning('check the masses')}
     <link name="base"><inertial><mass value="1"/><inertia ixx="0.1" ixy="0" ixz="0" iyy="0.1" iyz="0" izz="0.1"/></inertial></link>
     <link name="massless"/>
     <link name="tip"><inertial><mass value="0.1"/><inertia ixx="0.001" ixy="0" ixz="0" iyy="0.001" iyz="0" izz="0.001"/></inertial></link>
     <joint name="j1" type="revolute"><parent link="base"/><child link="massless"/><axis xyz="0 0 1"/><limit lower="-1" upper="1" effort="1" velocity="1"/></joint>
     <joint name="j2" type="revolute"><parent link="massless"/><child link="tip"/><axis xyz="0 1 0"/><limit lower="-1" upper="1" effort="1" velocity="1"/></joint>`,
  );
  const model = loadRobotDescription(warned);
  assert.ok(model.warnings?.some((w) => /warning: check the masses/.test(w)));
  assert.ok(model.warnings?.some((w) => /moving link "massless" has no <inertial>/.test(w)));
  const invalid = scratch(
    `<link name="base"/>
     <link name="bad_link"><inertial><mass value="1"/><inertia ixx="0.1" ixy="0" ixz="0" iyy="0.1" iyz="0" izz="0.5"/></inertial></link>
     <joint name="j1" type="revolute"><parent link="base"/><child link="bad_link"/><axis xyz="0 0 1"/><limit lower="-1" upper="1" effort="1" velocity="1"/></joint>`,
  );
  assert.throws(() => loadRobotDescription(invalid), /bad_link.*triangle/);
});
