import assert from "node:assert/strict";
import { resolve } from "node:path";
import { test } from "node:test";
import { loadUrdf, parseUrdf, rpyToMatrix, UrdfError } from "../../src/robot/urdf.js";
import { packageRoot } from "../../src/util/paths.js";

const ARM = resolve(packageRoot(), "urdf/arm.urdf");

test("the arm: four joints in order, an end effector, and plausible mass properties", () => {
  const model = loadUrdf(ARM);
  assert.equal(model.dof, 4);
  assert.deepEqual(
    model.joints.map((j) => j.name),
    ["joint1", "joint2", "joint3", "joint4"],
  );
  assert.deepEqual(
    model.links.map((l) => l.name),
    ["base_link", "link1", "link2", "link3", "link4", "end_effector"],
  );
  assert.equal(model.endEffector, "end_effector");
  const ee = model.links[5];
  assert.equal(ee.jointIndex, -1, "the end effector hangs on a fixed joint");
  assert.equal(ee.parent, 4);
  assert.deepEqual(model.jointLink, [1, 2, 3, 4]);
  assert.deepEqual(model.gravity, [0, 0, -9.81]);
  for (const link of model.links.slice(1, 5)) {
    assert.ok(
      link.inertial.mass >= 0.08 && link.inertial.mass <= 0.15,
      `${link.name} mass ${link.inertial.mass}`,
    );
    const I = link.inertial.inertia;
    assert.ok(I[0] > 0 && I[4] > 0 && I[8] > 0, `${link.name} has a non-zero inertia`);
  }
  assert.deepEqual(model.links[1].axis, [0, 0, 1]);
  for (const j of [2, 3, 4]) assert.deepEqual(model.links[j].axis, [0, 1, 0]);
});

test("the arm: limits, dynamics and safety_controller values are read exactly", () => {
  const model = loadUrdf(ARM);
  const joint2 = model.joints[1];
  assert.equal(joint2.type, "revolute");
  assert.equal(joint2.lower, -1.8);
  assert.equal(joint2.upper, 1.55);
  assert.equal(joint2.effort, 4.1);
  assert.equal(joint2.velocity, 4.8);
  assert.equal(joint2.damping, 0.03);
  assert.equal(joint2.friction, 0.03);
  assert.deepEqual(joint2.safety, { softLower: -1.7, softUpper: 1.45, kPosition: 10, kVelocity: 0.5 });
  for (const joint of model.joints) {
    assert.ok(joint.safety !== undefined, `${joint.name} has a safety_controller`);
    assert.ok(
      joint.lower < joint.safety.softLower && joint.safety.softUpper < joint.upper,
      `${joint.name} soft limits inside hard`,
    );
    assert.ok(joint.damping > 0 && joint.friction > 0, `${joint.name} has damping and friction`);
    assert.ok(joint.effort > 3 && joint.effort <= 4.1, `${joint.name} effort ${joint.effort}`);
  }
  assert.equal(model.joints[3].damping, 0.02);
  // Reflected rotor inertia from <transmission>: 8.5e-8 kg·m² × 353.5².
  for (const joint of model.joints) assert.ok(Math.abs(joint.armature - 8.5e-8 * 353.5 ** 2) < 1e-15);
});

test("armature comes from the joint's transmission; a joint without one has none", () => {
  const model = loadUrdf(resolve(packageRoot(), "test/urdf/branched.urdf"));
  const armature = Object.fromEntries(model.joints.map((j) => [j.name, j.armature]));
  assert.ok(Math.abs(armature.waist - 2e-7 * 50 ** 2) < 1e-15);
  assert.ok(Math.abs(armature.lift - 1e-3 * 9) < 1e-15);
  assert.equal(armature.left_elbow, 0);
});

test("rpy is fixed-axis X, Y, Z: R = Rz(yaw)·Ry(pitch)·Rx(roll)", () => {
  const R = rpyToMatrix(0.3, -0.4, 1.1);
  const rx = [1, 0, 0, 0, Math.cos(0.3), -Math.sin(0.3), 0, Math.sin(0.3), Math.cos(0.3)];
  const ry = [Math.cos(-0.4), 0, Math.sin(-0.4), 0, 1, 0, -Math.sin(-0.4), 0, Math.cos(-0.4)];
  const rz = [Math.cos(1.1), -Math.sin(1.1), 0, Math.sin(1.1), Math.cos(1.1), 0, 0, 0, 1];
  const mul = (a: number[], b: number[]) =>
    Array.from({ length: 9 }, (_, k) => {
      const i = Math.floor(k / 3);
      const j = k % 3;
      return a[3 * i] * b[j] + a[3 * i + 1] * b[3 + j] + a[3 * i + 2] * b[6 + j];
    });
  const expected = mul(rz, mul(ry, rx));
  for (const [k, x] of R.entries()) assert.ok(Math.abs(x - expected[k]) < 1e-15, `entry ${k}`);
});

/** A small valid robot; `edit` replaces parts of it to make one fault at a time. */
const GOOD = `<?xml version="1.0"?>
<robot name="t">
  <link name="base"/>
  <joint name="j1" type="revolute">
    <parent link="base"/><child link="l1"/>
    <origin xyz="0 0 0.1" rpy="0 0 0"/>
    <axis xyz="0 0 1"/>
    <limit lower="-1" upper="1" effort="2" velocity="3"/>
  </joint>
  <link name="l1">
    <inertial><origin xyz="0.1 0 0"/><mass value="0.5"/>
      <inertia ixx="0.001" ixy="0" ixz="0" iyy="0.002" iyz="0" izz="0.002"/></inertial>
  </link>
</robot>`;

function edit(from: string, to: string): string {
  assert.ok(GOOD.includes(from), `test fixture has "${from}"`);
  return GOOD.replace(from, to);
}

test("a well-formed small robot parses", () => {
  const model = parseUrdf(GOOD);
  assert.equal(model.dof, 1);
  assert.equal(model.endEffector, "l1");
  assert.equal(model.joints[0].damping, 0);
  assert.equal(model.joints[0].safety, undefined);
});

const L1_INERTIAL =
  '<inertial><origin xyz="0.1 0 0"/><mass value="0.5"/>\n      <inertia ixx="0.001" ixy="0" ixz="0" iyy="0.002" iyz="0" izz="0.002"/></inertial>';
const FAULTS: Array<[string, string, string | RegExp]> = [
  ["not XML", GOOD.slice(0, 60), "x.urdf: not well-formed XML at line"],
  ["no robot", "<?xml version='1.0'?><model/>", "x.urdf: expected one <robot> root element, found 0"],
  [
    "limit without effort",
    edit('effort="2" ', ""),
    'x.urdf: <joint name="j1">: <limit> is missing attribute "effort"',
  ],
  [
    "mass 0",
    edit('<mass value="0.5"/>', '<mass value="0"/>'),
    'x.urdf: <inertial> of link "l1": mass must be > 0, got 0',
  ],
  [
    "mass not a number",
    edit('<mass value="0.5"/>', '<mass value="heavy"/>'),
    'x.urdf: <inertial> of link "l1": <mass> attribute "value" must be a finite number, got "heavy"',
  ],
  [
    "inertia without izz",
    edit(' izz="0.002"', ""),
    'x.urdf: <inertial> of link "l1": <inertia> is missing attribute "izz"',
  ],
  [
    "inertia not positive semi-definite",
    edit('ixy="0" ixz="0" iyy', 'ixy="0.01" ixz="0" iyy'),
    'x.urdf: <inertial> of link "l1": the inertia tensor is not positive semi-definite',
  ],
  [
    "unknown joint type",
    edit('type="revolute"', 'type="hinge"'),
    'x.urdf: <joint name="j1">: unknown joint type "hinge"',
  ],
  ["floating joint", edit('type="revolute"', 'type="floating"'), 'joint type "floating" is not supported'],
  [
    "child link missing",
    edit('<child link="l1"/>', '<child link="nope"/>'),
    'x.urdf: <joint name="j1">: <child> names link "nope", which does not exist',
  ],
  [
    "non-numeric xyz",
    edit('xyz="0 0 0.1"', 'xyz="0 a 0.1"'),
    'x.urdf: <joint name="j1">: <origin> attribute "xyz" must be 3 numbers, got "0 a 0.1"',
  ],
  [
    "rpy with two numbers",
    edit('rpy="0 0 0"', 'rpy="0 0"'),
    'x.urdf: <joint name="j1">: <origin> attribute "rpy" must be 3 numbers, got "0 0"',
  ],
  [
    "revolute without limit",
    edit('<limit lower="-1" upper="1" effort="2" velocity="3"/>', ""),
    'x.urdf: <joint name="j1">: a revolute joint needs a <limit> element',
  ],
  ["lower above upper", edit('lower="-1" upper="1"', 'lower="1" upper="-1"'), "<limit> needs lower < upper"],
  [
    "zero axis",
    edit('<axis xyz="0 0 1"/>', '<axis xyz="0 0 0"/>'),
    'x.urdf: <joint name="j1">: <axis> must not be zero',
  ],
  [
    "two parents",
    edit("</robot>", '<joint name="j2" type="fixed"><parent link="base"/><child link="l1"/></joint></robot>'),
    'x.urdf: <joint name="j2">: link "l1" already has a parent through joint "j1"',
  ],
  [
    "two roots",
    edit("</robot>", '<link name="stray"/></robot>'),
    'x.urdf: the tree has 2 roots ("base", "stray")',
  ],
  [
    "a cycle off the root",
    edit(
      "</robot>",
      '<link name="a"/><link name="b"/>' +
        '<joint name="ab" type="fixed"><parent link="a"/><child link="b"/></joint>' +
        '<joint name="ba" type="fixed"><parent link="b"/><child link="a"/></joint></robot>',
    ),
    'x.urdf: links "a", "b" are not connected to the root "base"',
  ],
  [
    "duplicate link",
    edit("</robot>", '<link name="l1"/></robot>'),
    'x.urdf: <link name="l1">: the name is used twice',
  ],
  ["joint moving no mass", edit(L1_INERTIAL, ""), 'x.urdf: <joint name="j1">: moves no mass'],
  [
    "safety_controller without k_velocity",
    edit(
      "</joint>",
      '<safety_controller soft_lower_limit="-0.9" soft_upper_limit="0.9" k_position="5"/></joint>',
    ),
    'x.urdf: <joint name="j1">: <safety_controller> is missing attribute "k_velocity"',
  ],
  [
    "transmission for a joint that does not exist",
    edit(
      "</robot>",
      '<transmission name="t"><joint name="nope"/><actuator name="m">' +
        '<drake:rotor_inertia value="1e-7"/></actuator></transmission></robot>',
    ),
    'x.urdf: <transmission> for joint "nope": no such joint',
  ],
  [
    "negative rotor inertia",
    edit(
      "</robot>",
      '<transmission name="t"><joint name="j1"/><actuator name="m">' +
        '<drake:rotor_inertia value="-1"/></actuator></transmission></robot>',
    ),
    'x.urdf: <transmission name="t">: rotor inertia must be ≥ 0, got -1',
  ],
  [
    "a duplicate joint name, the first one fixed and named by a transmission",
    edit(
      '<joint name="j1" type="revolute">',
      '<joint name="j1" type="fixed"><parent link="l1"/><child link="tip"/></joint><link name="tip"/>' +
        '<transmission name="t"><joint name="j1"/><actuator name="m">' +
        '<drake:rotor_inertia value="1e-7"/></actuator></transmission>' +
        '<joint name="j1" type="revolute">',
    ),
    'x.urdf: <joint name="j1">: the name is used twice',
  ],
  ["an empty file", "", "x.urdf: the file is empty"],
  ["only whitespace", " \n\t\n", "x.urdf: the file is empty"],
  [
    "inertia breaking the triangle inequality (A + B < C)",
    edit('iyy="0.002" iyz="0" izz="0.002"', 'iyy="0.001" iyz="0" izz="0.003"'),
    'x.urdf: <inertial> of link "l1": the inertia tensor breaks the triangle inequality',
  ],
  [
    "inertia breaking the triangle inequality only off its axes",
    // Principal moments 0.0005, 0.0035, 0.0045 after a rotation about z: 0.0005 + 0.0035 < 0.0045.
    edit(
      'ixx="0.001" ixy="0" ixz="0" iyy="0.002" iyz="0" izz="0.002"',
      'ixx="0.002" ixy="0.0015" ixz="0" iyy="0.002" iyz="0" izz="0.0045"',
    ),
    "breaks the triangle inequality",
  ],
  [
    "repeated origin",
    edit('<axis xyz="0 0 1"/>', '<axis xyz="0 0 1"/><origin xyz="0 0 0"/>'),
    'x.urdf: <joint name="j1">: <origin> appears 2 times (expected at most one)',
  ],
];

for (const [fault, xml, message] of FAULTS) {
  test(`malformed URDF (${fault}) gets a one-line error naming the problem`, () => {
    assert.throws(
      () => parseUrdf(xml, "x.urdf"),
      (err: unknown) => {
        assert.ok(err instanceof UrdfError, `a UrdfError, got ${err}`);
        if (typeof message === "string")
          assert.ok(err.message.startsWith(message) || err.message.includes(message), err.message);
        else assert.match(err.message, message);
        assert.ok(!err.message.includes("\n"), "one line");
        return true;
      },
    );
  });
}

test("100,000 stray links: the error stays one short line and says how many", () => {
  const stray = Array.from({ length: 100_000 }, (_, i) => `<link name="stray_${i}"/>`).join("");
  assert.throws(
    () => parseUrdf(edit("</robot>", `${stray}</robot>`), "x.urdf"),
    (err: unknown) => {
      assert.ok(err instanceof UrdfError);
      assert.match(err.message, /the tree has 100001 roots \("base", "stray_0", .* and 99996 more\)/);
      assert.ok(err.message.length < 300, `${err.message.length} characters`);
      return true;
    },
  );
});

test("a moving link without <inertial> is a warning naming it; a massless frame past it is not", () => {
  const xml = edit(
    "</robot>",
    '<joint name="j2" type="revolute"><parent link="l1"/><child link="l2"/>' +
      '<limit lower="-1" upper="1" effort="2" velocity="3"/></joint><link name="l2"/>' +
      // l2's mass is all in a part fixed to it, so j2 still moves mass.
      '<joint name="motor_mount" type="fixed"><parent link="l2"/><child link="motor"/></joint>' +
      `<link name="motor">${L1_INERTIAL}</link>` +
      '<joint name="tool" type="fixed"><parent link="l2"/><child link="tool0"/></joint><link name="tool0"/></robot>',
  );
  const model = parseUrdf(xml, "x.urdf");
  assert.deepEqual(model.warnings, [
    'x.urdf: moving link "l2" has no <inertial>: massless (the URDF default), which a real link is not',
  ]);
  assert.deepEqual(parseUrdf(GOOD).warnings, []);
  assert.deepEqual(loadUrdf(ARM).warnings, []);
});

test("a missing file names the path", () => {
  assert.throws(
    () => loadUrdf("/nonexistent/robot.urdf"),
    /\/nonexistent\/robot\.urdf: cannot read the file/,
  );
});

test("inertial origin rpy rotates the inertia tensor into link axes", () => {
  // A rod along x in its inertial frame, turned 90° about z: along y in the link frame.
  const xml = edit(
    L1_INERTIAL,
    '<inertial><origin xyz="0 0 0" rpy="0 0 1.5707963267948966"/><mass value="1"/>' +
      '<inertia ixx="0.001" ixy="0" ixz="0" iyy="0.1" iyz="0" izz="0.1"/></inertial>',
  );
  const I = parseUrdf(xml).links[1].inertial.inertia;
  const expected = [0.1, 0, 0, 0, 0.001, 0, 0, 0, 0.1];
  for (const [k, x] of I.entries()) {
    assert.ok(Math.abs(x - expected[k]) < 1e-12, `I[${k}] = ${x}, expected ${expected[k]}`);
  }
});

test("a tree with a fixed joint in the middle and a branch: topological order and joint order", () => {
  const model = loadUrdf(resolve(packageRoot(), "test/urdf/branched.urdf"));
  assert.deepEqual(
    model.joints.map((j) => j.name),
    ["lift", "waist", "left_shoulder", "left_elbow", "right_shoulder", "right_elbow"],
  );
  assert.deepEqual(
    model.joints.map((j) => j.type),
    ["prismatic", "continuous", "revolute", "revolute", "revolute", "revolute"],
  );
  for (const [i, link] of model.links.entries()) assert.ok(link.parent < i, `${link.name} after its parent`);
  const plate = model.links.find((l) => l.name === "plate")!;
  assert.equal(plate.jointIndex, -1);
  assert.equal(model.links[plate.parent].name, "torso");
  const children = model.links.filter((l) => l.parent === model.links.indexOf(plate)).map((l) => l.name);
  assert.deepEqual(children, ["left_upper", "right_upper"]);
  const waist = model.joints[1];
  assert.equal(waist.lower, Number.NEGATIVE_INFINITY);
  assert.equal(waist.upper, Number.POSITIVE_INFINITY);
  assert.equal(waist.effort, 50);
  // The axis is normalised.
  const axis = model.links[model.jointLink[1]].axis;
  assert.ok(Math.abs(Math.hypot(...axis) - 1) < 1e-15);
  // No link named end_effector: the deepest leaf.
  assert.equal(model.endEffector, "right_tool");
});
