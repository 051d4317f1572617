/**
 * A robot description as users have one: a plain `.urdf`, a `.xacro` (expanded here, src/robot/
 * xacro.ts) or the URDF text a ROS graph publishes as `robot_description`, and the link that is
 * the tool frame. Everything that needs the arm's model loads it here.
 */
import { readFileSync } from "node:fs";
import type { RobotModel } from "./types.js";
import { nameList, parseUrdf, UrdfError } from "./urdf.js";
import { expandXacro, isXacroPath, type XacroOptions } from "./xacro.js";

export interface DescriptionOptions {
  /** xacro arguments (name → value); ignored for a plain URDF. */
  xacroArgs?: Readonly<Record<string, string | number | boolean>>;
  /** Directories searched first for `$(find pkg)` and `package://pkg` (then AMENT_PREFIX_PATH, ROS_PACKAGE_PATH). */
  packagePaths?: readonly string[];
  /** The end-effector link; default: `end_effector` if there is one, else the last link of the longest chain. */
  toolFrame?: string;
}

/** The URDF text of a description file: the file itself, or its xacro expansion. */
export function descriptionXml(
  path: string,
  options: DescriptionOptions = {},
): { xml: string; warnings: string[] } {
  if (isXacroPath(path)) {
    const xacro: XacroOptions = { args: options.xacroArgs, packagePaths: options.packagePaths };
    return expandXacro(path, xacro);
  }
  try {
    return { xml: readFileSync(path, "utf8"), warnings: [] };
  } catch (err) {
    throw new UrdfError(`${path}: cannot read the file (${(err as Error).message})`);
  }
}

/** Loads a `.urdf` or `.xacro` into a RobotModel; xacro warnings join the model's warnings. */
export function loadRobotDescription(path: string, options: DescriptionOptions = {}): RobotModel {
  const { xml, warnings } = descriptionXml(path, options);
  return modelFromXml(xml, path, options.toolFrame, warnings);
}

/** A RobotModel from URDF text (a `robot_description` read from the ROS graph, say). */
export function modelFromXml(
  xml: string,
  source: string,
  toolFrame?: string,
  warnings: readonly string[] = [],
): RobotModel {
  const model = parseUrdf(xml, source);
  if (toolFrame !== undefined) {
    if (!model.links.some((l) => l.name === toolFrame))
      throw new UrdfError(
        `${source}: tool_frame "${toolFrame}" is not a link of the description (links: ${nameList(model.links.map((l) => l.name))})`,
      );
    model.endEffector = toolFrame;
  }
  if (warnings.length > 0) model.warnings = [...warnings, ...(model.warnings ?? [])];
  return model;
}
