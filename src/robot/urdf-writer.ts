/**
 * Writes identified parameters back into the URDF they came from, as text edits that keep every
 * other line (comments, visuals, ros2_control, Gazebo tags) as the user wrote it:
 *
 *   each moving link's <inertial>        replaced (origin at the centre of mass, rpy 0, full tensor)
 *   each joint's <dynamics>              damping and friction replaced, or added
 *   each joint's armature                its <transmission>'s <drake:rotor_inertia> set to
 *                                        armature / gear_ratio², or a transmission added
 *
 * The result is parsed again and checked against the model it was written from.
 */
import type { Inertial, RobotModel } from "./types.js";
import { parseUrdf } from "./urdf.js";

const DRAKE_NAMESPACE = 'xmlns:drake="http://drake.mit.edu"';

/** `xml` (the URDF `nominal` was parsed from) with the inertials, friction and armatures of `model`. */
export function writeIdentifiedUrdf(
  xml: string,
  nominal: RobotModel,
  model: RobotModel,
  source: string,
): string {
  let out = xml;
  for (const linkIndex of model.jointLink) {
    const link = model.links[linkIndex];
    out = editElement(out, "link", link.name, source, (body) => {
      const inertial = inertialXml(link.inertial);
      return /<inertial>[\s\S]*?<\/inertial>/.test(body)
        ? body.replace(/<inertial>[\s\S]*?<\/inertial>/, inertial)
        : `${body}  ${inertial}\n  `;
    });
  }
  model.joints.forEach((joint) => {
    const dynamics = `<dynamics damping="${number(joint.damping)}" friction="${number(joint.friction)}"/>`;
    out = editElement(out, "joint", joint.name, source, (body) =>
      /<dynamics\b[^>]*\/>/.test(body)
        ? body.replace(/<dynamics\b[^>]*\/>/, dynamics)
        : `${body}  ${dynamics}\n  `,
    );
  });
  model.joints.forEach((joint, i) => {
    if (joint.armature === nominal.joints[i].armature) return;
    out = writeArmature(out, joint.name, joint.armature);
  });
  // The check: the written file gives back the model it was written from.
  const reread = parseUrdf(out, source);
  model.joints.forEach((joint, i) => {
    const r = reread.joints[i];
    for (const key of ["armature", "damping", "friction"] as const) {
      if (!close(r[key], joint[key]))
        throw new Error(`${source}: writing ${joint.name}'s ${key} failed (${r[key]} ≠ ${joint[key]})`);
    }
  });
  return out;
}

/** Replaces the body of the one `<tag name="NAME" ...> ... </tag>` element with edit(body). */
function editElement(
  xml: string,
  tag: string,
  name: string,
  source: string,
  edit: (body: string) => string,
): string {
  // A robot's <joint> has a type; a transmission's <joint name="..."> has none.
  const typed = tag === "joint" ? '(?=[^>]*\\btype=")' : "";
  const open = new RegExp(`<${tag}\\b(?=[^>]*\\bname="${escapeRegExp(name)}")${typed}[^>]*?(/?)>`);
  const match = open.exec(withoutComments(xml));
  if (match === null) throw new Error(`${source}: no <${tag} name="${name}"> to write into`);
  const start = match.index + match[0].length;
  if (match[1] === "/") {
    // <link name="x"/>: give it a body.
    const opened = match[0].replace(/\s*\/>$/, ">");
    return `${xml.slice(0, match.index)}${opened}${edit("\n  ")}</${tag}>${xml.slice(start)}`;
  }
  const end = withoutComments(xml).indexOf(`</${tag}>`, start);
  if (end < 0) throw new Error(`${source}: <${tag} name="${name}"> is not closed`);
  return xml.slice(0, start) + edit(xml.slice(start, end)) + xml.slice(end);
}

function writeArmature(xml: string, joint: string, armature: number): string {
  // Searched in the text with its comments blanked out (a comment may mention a <transmission>).
  const masked = withoutComments(xml);
  const transmissions = /<transmission\b[\s\S]*?<\/transmission>/g;
  for (let match = transmissions.exec(masked); match !== null; match = transmissions.exec(masked)) {
    const block = match[0];
    if (!new RegExp(`<joint\\s+name="${escapeRegExp(joint)}"`).test(block)) continue;
    const rotor = /<drake:rotor_inertia\s+value="[^"]*"/.exec(block);
    if (rotor === null) continue;
    const gear = /<drake:gear_ratio\s+value="([^"]+)"/.exec(block);
    const ratio = gear === null ? 1 : Number(gear[1]);
    const at = match.index + rotor.index;
    return `${xml.slice(0, at)}<drake:rotor_inertia value="${number(armature / (ratio * ratio))}"${xml.slice(at + rotor[0].length)}`;
  }
  const out = xml;
  const added = [
    `  <transmission name="${joint}_identified_armature">`,
    "    <type>transmission_interface/SimpleTransmission</type>",
    `    <joint name="${joint}"><hardwareInterface>hardware_interface/EffortJointInterface</hardwareInterface></joint>`,
    `    <actuator name="${joint}_actuator"><drake:rotor_inertia value="${number(armature)}"/><drake:gear_ratio value="1"/></actuator>`,
    "  </transmission>",
    "",
  ].join("\n");
  const withNamespace = out.includes(DRAKE_NAMESPACE)
    ? out
    : out.replace(/<robot\b/, `<robot ${DRAKE_NAMESPACE}`);
  return withNamespace.replace(/<\/robot>\s*$/, `${added}</robot>\n`);
}

/** xml with every comment's characters replaced by spaces (indices unchanged). */
function withoutComments(xml: string): string {
  return xml.replace(/<!--[\s\S]*?-->/g, (comment) => " ".repeat(comment.length));
}

function inertialXml({ mass, com, inertia: I }: Inertial): string {
  return [
    "<inertial>",
    `      <origin xyz="${com.map(number).join(" ")}" rpy="0 0 0"/>`,
    `      <mass value="${number(mass)}"/>`,
    `      <inertia ixx="${number(I[0])}" ixy="${number(I[1])}" ixz="${number(I[2])}" iyy="${number(I[4])}" iyz="${number(I[5])}" izz="${number(I[8])}"/>`,
    "    </inertial>",
  ].join("\n");
}

function number(x: number): string {
  return Number(x.toPrecision(10)).toString();
}

function close(a: number, b: number): boolean {
  return Math.abs(a - b) <= 1e-8 * Math.max(Math.abs(a), Math.abs(b), 1e-12);
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}
