/**
 * URDF → RobotModel. A real XML parser (fast-xml-parser) reads the file; this module checks every
 * element it uses and turns the link/joint graph into a tree in topological order.
 *
 * Supported: revolute, continuous, prismatic and fixed joints; <origin xyz rpy>; <axis>; <limit>;
 * <dynamics>; <safety_controller>; <inertial> with origin rpy and a full inertia tensor; any tree
 * (one root, every link reachable, no cycles, no link with two parents); a joint's reflected rotor
 * inertia from its <transmission>, in Drake's URDF extension (<actuator> children
 * <drake:rotor_inertia value> and <drake:gear_ratio value>). Visual, collision, gazebo,
 * ros2_control and mujoco elements, and the rest of <transmission>, are ignored.
 *
 * Defaults follow the URDF specification (and urdfdom) where it has one: origin 0, axis 1 0 0,
 * damping and friction 0. Where it is silent or unhelpful we choose the safe reading and say so:
 * a <safety_controller> without soft limits uses the hard limits; a continuous joint without
 * <limit> has effort and velocity limits of +Infinity.
 *
 * Physical validity follows MuJoCo's compiler: a mass is > 0, an inertia tensor is positive
 * semi-definite and its principal moments satisfy the triangle inequality (A + B ≥ C), and every
 * moving joint carries some mass. A link without <inertial> is massless, as the specification
 * says; where a joint moves it, the model's `warnings` say so. Messages are one line and bounded:
 * long lists of names are cut to their first few.
 */
import { readFileSync } from "node:fs";
import { XMLParser, XMLValidator } from "fast-xml-parser";
import type {
  Inertial,
  JointSpec,
  LinkSpec,
  Mat3,
  MovingJointType,
  RobotModel,
  SoftLimits,
  Transform,
  Vec3,
} from "./types.js";

/** A URDF that cannot be read, with a one-line message naming the file, element and problem. */
export class UrdfError extends Error {
  override name = "UrdfError";
}

/** Reads and parses a URDF file. Errors name the path as given. */
export function loadUrdf(path: string): RobotModel {
  let xml: string;
  try {
    xml = readFileSync(path, "utf8");
  } catch (err) {
    throw new UrdfError(`${path}: cannot read the file (${(err as Error).message})`);
  }
  return parseUrdf(xml, path);
}

// ---------------------------------------------------------------------------------------------
// XML access. Every element is parsed as an array (isArray), attributes as strings with an "@_"
// prefix; an empty element without attributes comes back as "" and is normalised to {}.

type XmlElement = Record<string, unknown>;

function asElement(node: unknown): XmlElement {
  return typeof node === "object" && node !== null ? (node as XmlElement) : {};
}

function childElements(parent: XmlElement, tag: string): XmlElement[] {
  const value = parent[tag];
  if (value === undefined) return [];
  return (Array.isArray(value) ? value : [value]).map(asElement);
}

function attribute(el: XmlElement, name: string): string | undefined {
  const value = el[`@_${name}`];
  return value === undefined ? undefined : String(value);
}

/** Reports problems inside one element: `file: <joint name="j">: problem`. */
class Where {
  constructor(
    readonly source: string,
    readonly context: string,
  ) {}

  error(problem: string): UrdfError {
    return new UrdfError(`${this.source}: ${this.context}: ${problem}`);
  }

  /** The single child element `tag`: undefined when absent, an error when repeated. */
  optionalChild(el: XmlElement, tag: string): XmlElement | undefined {
    const list = childElements(el, tag);
    if (list.length > 1) throw this.error(`<${tag}> appears ${list.length} times (expected at most one)`);
    return list[0];
  }

  requiredChild(el: XmlElement, tag: string, what = ""): XmlElement {
    const child = this.optionalChild(el, tag);
    if (child === undefined) throw this.error(`${what}<${tag}> is missing`);
    return child;
  }

  requiredAttribute(el: XmlElement, tag: string, name: string): string {
    const value = attribute(el, name);
    if (value === undefined) throw this.error(`<${tag}> is missing attribute "${name}"`);
    return value;
  }

  number(el: XmlElement, tag: string, name: string, fallback?: number): number {
    const text = attribute(el, name);
    if (text === undefined) {
      if (fallback === undefined) throw this.error(`<${tag}> is missing attribute "${name}"`);
      return fallback;
    }
    const value = Number(text.trim());
    if (text.trim() === "" || !Number.isFinite(value)) {
      throw this.error(`<${tag}> attribute "${name}" must be a finite number, got "${text}"`);
    }
    return value;
  }

  vector3(el: XmlElement, tag: string, name: string, fallback: Vec3): Vec3 {
    const text = attribute(el, name);
    if (text === undefined) return [...fallback];
    const parts = text
      .trim()
      .split(/\s+/)
      .filter((s) => s !== "");
    const values = parts.map(Number);
    if (values.length !== 3 || !values.every(Number.isFinite)) {
      throw this.error(`<${tag}> attribute "${name}" must be 3 numbers, got "${text}"`);
    }
    return [values[0], values[1], values[2]];
  }

  /** An <origin xyz rpy> child as a transform (identity when absent). */
  origin(el: XmlElement): Transform {
    const origin = this.optionalChild(el, "origin");
    if (origin === undefined) return { R: identity3(), p: [0, 0, 0] };
    const xyz = this.vector3(origin, "origin", "xyz", [0, 0, 0]);
    const rpy = this.vector3(origin, "origin", "rpy", [0, 0, 0]);
    return { R: rpyToMatrix(rpy[0], rpy[1], rpy[2]), p: xyz };
  }
}

// ---------------------------------------------------------------------------------------------
// Small 3-D helpers for the (cold) parsed model.

function identity3(): Mat3 {
  return [1, 0, 0, 0, 1, 0, 0, 0, 1];
}

/** URDF rpy: fixed-axis rotations about X, then Y, then Z, so R = Rz(yaw)·Ry(pitch)·Rx(roll). */
export function rpyToMatrix(roll: number, pitch: number, yaw: number): Mat3 {
  const cr = Math.cos(roll);
  const sr = Math.sin(roll);
  const cp = Math.cos(pitch);
  const sp = Math.sin(pitch);
  const cy = Math.cos(yaw);
  const sy = Math.sin(yaw);
  return [
    cy * cp,
    cy * sp * sr - sy * cr,
    cy * sp * cr + sy * sr,
    sy * cp,
    sy * sp * sr + cy * cr,
    sy * sp * cr - cy * sr,
    -sp,
    cp * sr,
    cp * cr,
  ];
}

/** R · I · Rᵀ for row-major 3×3 matrices: an inertia tensor re-expressed in rotated axes. */
function rotateInertia(R: Mat3, I: Mat3): Mat3 {
  const RI = [0, 0, 0, 0, 0, 0, 0, 0, 0];
  for (let i = 0; i < 3; i++)
    for (let j = 0; j < 3; j++)
      RI[3 * i + j] = R[3 * i] * I[j] + R[3 * i + 1] * I[3 + j] + R[3 * i + 2] * I[6 + j];
  const out: Mat3 = [0, 0, 0, 0, 0, 0, 0, 0, 0];
  for (let i = 0; i < 3; i++)
    for (let j = 0; j < 3; j++)
      out[3 * i + j] = RI[3 * i] * R[3 * j] + RI[3 * i + 1] * R[3 * j + 1] + RI[3 * i + 2] * R[3 * j + 2];
  // Symmetrise exactly: rounding must not make the tensor asymmetric.
  for (let i = 0; i < 3; i++)
    for (let j = i + 1; j < 3; j++) {
      const mean = 0.5 * (out[3 * i + j] + out[3 * j + i]);
      out[3 * i + j] = mean;
      out[3 * j + i] = mean;
    }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Elements.

/** A link without <inertial>: the URDF specification's reading (massless). */
const MASSLESS: Inertial = Object.freeze({
  mass: 0,
  com: [0, 0, 0],
  inertia: [0, 0, 0, 0, 0, 0, 0, 0, 0],
}) as Inertial;

function parseInertial(link: XmlElement, linkName: string, source: string): Inertial {
  const where = new Where(source, `<link name="${linkName}">`);
  const inertial = where.optionalChild(link, "inertial");
  if (inertial === undefined) return MASSLESS;
  const inside = new Where(source, `<inertial> of link "${linkName}"`);
  const origin = inside.origin(inertial);
  const massEl = inside.requiredChild(inertial, "mass");
  const mass = inside.number(massEl, "mass", "value");
  if (!(mass > 0)) throw inside.error(`mass must be > 0, got ${mass}`);
  const inertiaEl = inside.requiredChild(inertial, "inertia");
  const [ixx, ixy, ixz, iyy, iyz, izz] = ["ixx", "ixy", "ixz", "iyy", "iyz", "izz"].map((name) =>
    inside.number(inertiaEl, "inertia", name),
  );
  const inInertialFrame: Mat3 = [ixx, ixy, ixz, ixy, iyy, iyz, ixz, iyz, izz];
  checkInertia(inInertialFrame, inside);
  return { mass, com: origin.p, inertia: rotateInertia(origin.R, inInertialFrame) };
}

/**
 * A rotational inertia must be positive semi-definite, and its principal moments must satisfy the
 * triangle inequality A + B ≥ C (MuJoCo's compiler refuses it otherwise): no real mass distribution
 * has, say, ixx = iyy = 1 and izz = 3. Both tests are one test of a symmetric matrix: I itself, and
 * S = ½·tr(I)·1 − I, the mass distribution's second moment ∫ r·rᵀ dm, whose eigenvalues are
 * (B + C − A)/2 and its permutations.
 */
function checkInertia(I: Mat3, where: Where): void {
  const [ixx, , , , iyy, , , , izz] = I;
  const scale = Math.max(Math.abs(ixx), Math.abs(iyy), Math.abs(izz), Number.MIN_VALUE);
  const moments = `ixx=${ixx} iyy=${iyy} izz=${izz}`;
  if (!isPositiveSemiDefinite(I, scale)) {
    throw where.error(`the inertia tensor is not positive semi-definite (${moments})`);
  }
  const halfTrace = 0.5 * (ixx + iyy + izz);
  const S: Mat3 = I.map((v, k) => (k % 4 === 0 ? halfTrace - v : -v)) as Mat3;
  if (!isPositiveSemiDefinite(S, scale)) {
    throw where.error(
      `the inertia tensor breaks the triangle inequality of its principal moments, A + B ≥ C (${moments}): no mass distribution has it`,
    );
  }
}

/** All principal minors of a symmetric 3×3 matrix ≥ 0, up to rounding relative to `scale`. */
function isPositiveSemiDefinite(A: Mat3, scale: number): boolean {
  const [a, b, c, , d, e, , , f] = A;
  const tol = 1e-9 * scale;
  const minors2 = [a * d - b * b, a * f - c * c, d * f - e * e];
  const det = a * (d * f - e * e) - b * (b * f - e * c) + c * (b * e - d * c);
  return (
    a >= -tol &&
    d >= -tol &&
    f >= -tol &&
    minors2.every((m) => m >= -tol * scale) &&
    det >= -tol * scale * scale
  );
}

/** Names for a one-line message: the first few, quoted, then how many more. */
export function nameList(names: readonly string[], shown = 5): string {
  const head = names.slice(0, shown).map((n) => `"${n.length > 64 ? `${n.slice(0, 61)}...` : n}"`);
  const rest = names.length - head.length;
  return rest > 0 ? `${head.join(", ")} and ${rest} more` : head.join(", ");
}

interface RawJoint {
  name: string;
  type: "fixed" | MovingJointType;
  parent: string;
  child: string;
  origin: Transform;
  axis: Vec3;
  spec?: JointSpec;
}

function parseJoint(el: XmlElement, source: string, index: number): RawJoint {
  const name = attribute(el, "name");
  if (name === undefined || name === "") {
    throw new UrdfError(`${source}: <joint> number ${index + 1} has no "name" attribute`);
  }
  const where = new Where(source, `<joint name="${name}">`);
  const type = attribute(el, "type");
  if (type === undefined) throw where.error(`missing attribute "type"`);
  if (type === "floating" || type === "planar") {
    throw where.error(`joint type "${type}" is not supported (use revolute, continuous, prismatic or fixed)`);
  }
  if (type !== "revolute" && type !== "continuous" && type !== "prismatic" && type !== "fixed") {
    throw where.error(`unknown joint type "${type}" (expected revolute, continuous, prismatic or fixed)`);
  }
  const parent = where.requiredAttribute(where.requiredChild(el, "parent"), "parent", "link");
  const child = where.requiredAttribute(where.requiredChild(el, "child"), "child", "link");
  const origin = where.origin(el);
  if (type === "fixed") return { name, type, parent, child, origin, axis: [0, 0, 0] };

  const axisEl = where.optionalChild(el, "axis");
  const rawAxis =
    axisEl === undefined ? ([1, 0, 0] as Vec3) : where.vector3(axisEl, "axis", "xyz", [1, 0, 0]);
  const norm = Math.hypot(rawAxis[0], rawAxis[1], rawAxis[2]);
  if (!(norm > 1e-12)) throw where.error(`<axis> must not be zero`);
  const axis: Vec3 = [rawAxis[0] / norm, rawAxis[1] / norm, rawAxis[2] / norm];

  const limitEl = where.optionalChild(el, "limit");
  let lower = Number.NEGATIVE_INFINITY;
  let upper = Number.POSITIVE_INFINITY;
  let effort = Number.POSITIVE_INFINITY;
  let velocity = Number.POSITIVE_INFINITY;
  if (limitEl === undefined) {
    if (type !== "continuous") throw where.error(`a ${type} joint needs a <limit> element`);
  } else {
    effort = where.number(limitEl, "limit", "effort");
    velocity = where.number(limitEl, "limit", "velocity");
    if (!(effort > 0)) throw where.error(`<limit> attribute "effort" must be > 0, got ${effort}`);
    if (!(velocity > 0)) throw where.error(`<limit> attribute "velocity" must be > 0, got ${velocity}`);
    if (type !== "continuous") {
      lower = where.number(limitEl, "limit", "lower");
      upper = where.number(limitEl, "limit", "upper");
      if (!(lower < upper))
        throw where.error(`<limit> needs lower < upper, got lower=${lower} upper=${upper}`);
    }
  }

  const dynamicsEl = where.optionalChild(el, "dynamics");
  const damping = dynamicsEl === undefined ? 0 : where.number(dynamicsEl, "dynamics", "damping", 0);
  const friction = dynamicsEl === undefined ? 0 : where.number(dynamicsEl, "dynamics", "friction", 0);
  if (damping < 0) throw where.error(`<dynamics> attribute "damping" must be ≥ 0, got ${damping}`);
  if (friction < 0) throw where.error(`<dynamics> attribute "friction" must be ≥ 0, got ${friction}`);

  const spec: JointSpec = { name, type, lower, upper, effort, velocity, damping, friction, armature: 0 };
  const safetyEl = where.optionalChild(el, "safety_controller");
  if (safetyEl !== undefined) spec.safety = parseSafety(safetyEl, where, lower, upper);
  return { name, type, parent, child, origin, axis, spec };
}

function parseSafety(el: XmlElement, where: Where, lower: number, upper: number): SoftLimits {
  const tag = "safety_controller";
  const kVelocity = where.number(el, tag, "k_velocity");
  const kPosition = where.number(el, tag, "k_position", 0);
  const softLower = where.number(el, tag, "soft_lower_limit", lower);
  const softUpper = where.number(el, tag, "soft_upper_limit", upper);
  if (kVelocity < 0 || kPosition < 0) {
    throw where.error(`<${tag}> gains k_position and k_velocity must be ≥ 0`);
  }
  if (!(softLower <= softUpper)) {
    throw where.error(
      `<${tag}> needs soft_lower_limit ≤ soft_upper_limit, got ${softLower} and ${softUpper}`,
    );
  }
  return { softLower, softUpper, kPosition, kVelocity };
}

/**
 * Reflected rotor inertia per joint name, rotor_inertia × gear_ratio², from the <transmission>
 * elements that carry Drake's <drake:rotor_inertia> (a transmission without it adds nothing).
 */
function parseTransmissions(robot: XmlElement, source: string): Map<string, number> {
  const armature = new Map<string, number>();
  childElements(robot, "transmission").forEach((el, index) => {
    const name = attribute(el, "name") ?? `number ${index + 1}`;
    const where = new Where(source, `<transmission name="${name}">`);
    const actuators = childElements(el, "actuator");
    const rotor = actuators.flatMap((a) => childElements(a, "drake:rotor_inertia").map((r) => ({ a, r })));
    if (rotor.length === 0) return;
    const joints = childElements(el, "joint");
    if (joints.length !== 1 || actuators.length !== 1) {
      throw where.error(
        "a transmission with <drake:rotor_inertia> needs exactly one <joint> and one <actuator>",
      );
    }
    const jointName = where.requiredAttribute(joints[0], "joint", "name");
    const rotorInertia = where.number(rotor[0].r, "drake:rotor_inertia", "value");
    const gearEl = childElements(actuators[0], "drake:gear_ratio")[0];
    const gearRatio = gearEl === undefined ? 1 : where.number(gearEl, "drake:gear_ratio", "value");
    if (!(rotorInertia >= 0)) throw where.error(`rotor inertia must be ≥ 0, got ${rotorInertia}`);
    if (!(gearRatio > 0)) throw where.error(`gear ratio must be > 0, got ${gearRatio}`);
    if (armature.has(jointName)) throw where.error(`joint "${jointName}" already has a transmission`);
    armature.set(jointName, rotorInertia * gearRatio * gearRatio);
  });
  return armature;
}

// ---------------------------------------------------------------------------------------------

/** Parses URDF text. `source` names the input in error messages (a file path, usually). */
export function parseUrdf(xml: string, source = "<string>"): RobotModel {
  if (xml.trim() === "") throw new UrdfError(`${source}: the file is empty (expected a <robot> element)`);
  const valid = XMLValidator.validate(xml);
  if (valid !== true) {
    const { msg, line, col } = valid.err;
    const at =
      line === undefined ? "" : col === undefined ? ` at line ${line}` : ` at line ${line}, column ${col}`;
    throw new UrdfError(`${source}: not well-formed XML${at}: ${msg}`);
  }
  const parser = new XMLParser({
    ignoreAttributes: false,
    attributeNamePrefix: "@_",
    parseAttributeValue: false,
    parseTagValue: false,
    isArray: (_name, _path, _isLeaf, isAttribute) => !isAttribute,
  });
  const document = asElement(parser.parse(xml));
  const robots = childElements(document, "robot");
  if (robots.length !== 1) {
    throw new UrdfError(`${source}: expected one <robot> root element, found ${robots.length}`);
  }
  const robot = robots[0];
  const robotName = attribute(robot, "name") ?? "";

  // Links, by name.
  const linkElements = childElements(robot, "link");
  if (linkElements.length === 0) throw new UrdfError(`${source}: <robot> has no <link>`);
  const linkByName = new Map<string, { index: number; inertial: Inertial }>();
  const linkNames: string[] = [];
  linkElements.forEach((el, index) => {
    const name = attribute(el, "name");
    if (name === undefined || name === "") {
      throw new UrdfError(`${source}: <link> number ${index + 1} has no "name" attribute`);
    }
    if (linkByName.has(name)) throw new UrdfError(`${source}: <link name="${name}">: the name is used twice`);
    linkByName.set(name, { index, inertial: parseInertial(el, name, source) });
    linkNames.push(name);
  });

  // Joints, checked against the links.
  const joints = childElements(robot, "joint").map((el, index) => parseJoint(el, source, index));
  // Names first: every later check (transmissions, the tree) looks joints up by name.
  const jointNames = new Set<string>();
  for (const joint of joints) {
    if (jointNames.has(joint.name))
      throw new UrdfError(`${source}: <joint name="${joint.name}">: the name is used twice`);
    jointNames.add(joint.name);
  }
  const armature = parseTransmissions(robot, source);
  for (const [jointName, value] of armature) {
    const joint = joints.find((j) => j.name === jointName);
    if (joint?.spec === undefined) {
      throw new UrdfError(
        `${source}: <transmission> for joint "${jointName}": ` +
          (joint === undefined ? "no such joint" : "the joint is fixed"),
      );
    }
    joint.spec.armature = value;
  }
  const parentJointOf = new Map<string, RawJoint>();
  const childJoints = new Map<string, RawJoint[]>();
  for (const joint of joints) {
    const where = new Where(source, `<joint name="${joint.name}">`);
    for (const [role, link] of [
      ["parent", joint.parent],
      ["child", joint.child],
    ] as const) {
      if (!linkByName.has(link)) throw where.error(`<${role}> names link "${link}", which does not exist`);
    }
    if (joint.parent === joint.child) throw where.error(`link "${joint.child}" cannot be its own parent`);
    const previous = parentJointOf.get(joint.child);
    if (previous !== undefined) {
      throw where.error(
        `link "${joint.child}" already has a parent through joint "${previous.name}" (a link has one parent)`,
      );
    }
    parentJointOf.set(joint.child, joint);
    const siblings = childJoints.get(joint.parent) ?? [];
    siblings.push(joint);
    childJoints.set(joint.parent, siblings);
  }

  // Exactly one root, every link reachable from it (which also rules out cycles).
  const roots = linkNames.filter((name) => !parentJointOf.has(name));
  if (roots.length === 0)
    throw new UrdfError(`${source}: the joints form a cycle: no link is without a parent`);
  if (roots.length > 1) {
    throw new UrdfError(
      `${source}: the tree has ${roots.length} roots (${nameList(roots)}): ` +
        "every link but one needs a joint to a parent",
    );
  }

  // Depth-first, pre-order: parents before children, each chain contiguous, siblings in file order.
  const links: LinkSpec[] = [];
  const depth: number[] = [];
  const indexOf = new Map<string, number>();
  const stack: Array<{ name: string; parent: number; joint?: RawJoint; depth: number }> = [
    { name: roots[0], parent: -1, depth: 0 },
  ];
  const movingJoints: JointSpec[] = [];
  const jointLink: number[] = [];
  while (stack.length > 0) {
    const { name, parent, joint, depth: d } = stack.pop()!;
    const index = links.length;
    indexOf.set(name, index);
    depth.push(d);
    let jointIndex = -1;
    if (joint?.spec !== undefined) {
      jointIndex = movingJoints.length;
      movingJoints.push(joint.spec);
      jointLink.push(index);
    }
    links.push({
      name,
      parent,
      jointName: joint?.name,
      jointIndex,
      origin: joint?.origin ?? { R: identity3(), p: [0, 0, 0] },
      axis: joint?.axis ?? [0, 0, 0],
      inertial: linkByName.get(name)!.inertial,
    });
    const children = childJoints.get(name) ?? [];
    for (let k = children.length - 1; k >= 0; k--) {
      stack.push({ name: children[k].child, parent: index, joint: children[k], depth: d + 1 });
    }
  }
  if (links.length !== linkNames.length) {
    const unreached = linkNames.filter((name) => !indexOf.has(name));
    throw new UrdfError(
      `${source}: links ${nameList(unreached)} are not connected to the root ` +
        `"${roots[0]}" (their joints form a cycle)`,
    );
  }

  checkEveryJointMovesMass(links, movingJoints, jointLink, source);
  const warnings = masslessMovingLinks(links, linkElements, source);

  let endEffector: string;
  if (indexOf.has("end_effector")) {
    endEffector = "end_effector";
  } else {
    const isParent = new Set(links.map((l) => l.parent));
    let best = 0;
    for (let i = 0; i < links.length; i++) if (!isParent.has(i) && depth[i] > depth[best]) best = i;
    endEffector = links[best].name;
  }

  return {
    name: robotName,
    links,
    joints: movingJoints,
    jointLink,
    dof: movingJoints.length,
    endEffector,
    gravity: [0, 0, -9.81],
    warnings,
  };
}

/**
 * Links without <inertial> that are the child of a moving joint: massless by the specification,
 * which is rarely what the author meant (a frame fixed to such a link, a tool point, is fine).
 */
function masslessMovingLinks(links: LinkSpec[], elements: XmlElement[], source: string): string[] {
  const declared = new Set(
    elements.filter((el) => childElements(el, "inertial").length > 0).map((el) => attribute(el, "name")),
  );
  const named = links.filter((l) => l.jointIndex >= 0 && !declared.has(l.name)).map((l) => l.name);
  if (named.length === 0) return [];
  const plural = named.length > 1;
  return [
    `${source}: moving link${plural ? "s" : ""} ${nameList(named)} ha${plural ? "ve" : "s"} no <inertial>: massless (the URDF default), which a real link is not`,
  ];
}
/** A moving joint that carries no mass makes the mass matrix singular; say which one. */

function checkEveryJointMovesMass(
  links: LinkSpec[],
  joints: JointSpec[],
  jointLink: number[],
  source: string,
) {
  const subtreeMass = links.map((l) => l.inertial.mass);
  for (let i = links.length - 1; i > 0; i--) subtreeMass[links[i].parent] += subtreeMass[i];
  joints.forEach((joint, j) => {
    if (!(subtreeMass[jointLink[j]] > 0)) {
      throw new UrdfError(
        `${source}: <joint name="${joint.name}">: moves no mass (no link it carries has an <inertial>), ` +
          "so its dynamics are undefined",
      );
    }
  });
}
