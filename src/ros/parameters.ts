/**
 * Every setting of config/mbpo_arm.yaml (the zod schema in src/config/config.ts) as a ROS 2
 * parameter with a descriptor: its type, its range (from the schema's bounds), a description (the
 * comment beside the key in config/mbpo_arm.yaml) and read-only unless changing it live is safe.
 * The list is walked from the schema, so a setting added there is declared here without an edit;
 * settings without a default (optional in the schema) are left out: there is no value to declare.
 *
 * `--ros-args -p key:=value` and `--params-file` apply when a parameter is declared (rclnodejs's
 * overrides); the values read back are validated with the same schema the CLI uses, so a bad value
 * is one line naming the parameter.
 */
import { readFileSync } from "node:fs";
import { isMap, isScalar, parseDocument, type YAMLMap } from "yaml";
import { type Config, ConfigSchema, NODE_NAME, validateConfig } from "../config/config.js";
import type {
  ParameterTypeValue,
  RclNode,
  Rclnodejs,
  RclParameter,
  RclSetParametersResult,
} from "../drivers/ros2/rclnodejs.js";
import { ParameterType } from "../drivers/ros2/rclnodejs.js";
import { resolveDataPath } from "../util/paths.js";

export type ParameterKind = "bool" | "integer" | "double" | "string";

export interface ConfigParameterSpec {
  /** Dotted name, as `ros2 param` shows it (e.g. safety.effort_scale). */
  name: string;
  kind: ParameterKind;
  /**
   * Bounds from the schema. An integer's are inclusive (an exclusive bound n of the schema is
   * n ± 1 here); a double's exclude their value where `minExclusive`/`maxExclusive` say so (a ROS
   * range is always inclusive: the schema itself then refuses the bound).
   */
  min?: number;
  max?: number;
  minExclusive?: boolean;
  maxExclusive?: boolean;
  /** Allowed values of an enumerated string. */
  choices?: readonly string[];
  readOnly: boolean;
  description: string;
}

/**
 * Settings that may change while the node runs. They are applied at the next episode boundary
 * (the task and episode runner are rebuilt), never in the middle of one. Everything else (the
 * robot model, the control rate, every safety setting, the driver) is fixed at startup: changing
 * it live would change what the safety filter guarantees under a moving arm.
 */
export const LIVE_SETTINGS: readonly string[] = [
  "action_torque_fraction",
  "task.episode_steps",
  "task.success_radius",
  "reset.speed",
  "reset.tolerance",
  "reset.timeout",
];

/** One of a zod number's checks: `greater_than`/`less_than` carry a bound and its inclusiveness. */
interface ZodCheckLike {
  _zod: { def: { check: string; value?: unknown; inclusive?: boolean } };
}

interface ZodLike {
  _zod: {
    def: {
      type: string;
      innerType?: ZodLike;
      entries?: Record<string, string>;
      shape?: unknown;
      checks?: ZodCheckLike[];
    };
  };
  shape?: Record<string, ZodLike>;
  minValue?: number | null;
  maxValue?: number | null;
  isInt?: boolean;
}

/** A zod number's kind and bounds (see ConfigParameterSpec.min). */
function numberBounds(
  s: ZodLike,
): Pick<ConfigParameterSpec, "kind" | "min" | "max" | "minExclusive" | "maxExclusive"> {
  const checks = (s._zod.def.checks ?? []).map((c) => c._zod.def);
  const open = (check: string, value: number) =>
    checks.some((d) => d.check === check && d.value === value && d.inclusive === false);
  const min = s.minValue ?? undefined;
  const max = s.maxValue ?? undefined;
  const hasMin = min !== undefined && Number.isFinite(min);
  const hasMax = max !== undefined && Number.isFinite(max) && max < Number.MAX_SAFE_INTEGER;
  const minOpen = hasMin && open("greater_than", min);
  const maxOpen = hasMax && open("less_than", max);
  if (s.isInt) {
    return {
      kind: "integer",
      min: hasMin ? (minOpen ? Math.floor(min) + 1 : Math.ceil(min)) : undefined,
      max: hasMax ? (maxOpen ? Math.ceil(max) - 1 : Math.floor(max)) : undefined,
    };
  }
  return {
    kind: "double",
    min: hasMin ? min : undefined,
    max: hasMax ? max : undefined,
    ...(minOpen ? { minExclusive: true } : {}),
    ...(maxOpen ? { maxExclusive: true } : {}),
  };
}

function unwrap(schema: ZodLike): ZodLike {
  let s = schema;
  while (s._zod.def.innerType !== undefined) s = s._zod.def.innerType;
  return s;
}

/** The settings of the config schema, in schema order, with descriptions from `yamlText`. */
export function configParameterSpecs(yamlText?: string): ConfigParameterSpec[] {
  const comments = yamlText !== undefined ? yamlComments(yamlText) : new Map<string, string>();
  const specs: ConfigParameterSpec[] = [];
  const walk = (schema: ZodLike, prefix: string) => {
    for (const [key, field] of Object.entries(schema.shape ?? {})) {
      // A setting without a default (sim.urdf, sim.reality's range overrides) has no value to
      // declare: it is a params-file (--config) and -p setting of the CLI, not a ROS parameter.
      if (field._zod.def.type === "optional") continue;
      const s = unwrap(field);
      const name = prefix + key;
      const type = s._zod.def.type;
      if (type === "object") {
        walk(s, `${name}.`);
        continue;
      }
      const readOnly = !LIVE_SETTINGS.includes(name);
      const base = comments.get(name) ?? `setting "${name}" of config/mbpo_arm.yaml`;
      const description = readOnly
        ? `${base} (read-only: fixed at startup)`
        : `${base} (applied at the next episode)`;
      if (type === "boolean") specs.push({ name, kind: "bool", readOnly, description });
      else if (type === "string") specs.push({ name, kind: "string", readOnly, description });
      else if (type === "enum") {
        specs.push({
          name,
          kind: "string",
          choices: Object.keys(s._zod.def.entries ?? {}),
          readOnly,
          description,
        });
      } else if (type === "number") {
        specs.push({ name, ...numberBounds(s), readOnly, description });
      } else {
        throw new Error(`config setting "${name}": schema type "${type}" has no ROS parameter type`);
      }
    }
  };
  walk(ConfigSchema as unknown as ZodLike, "");
  return specs;
}

/** Comments beside (or above) each key of the parameter file, by dotted name. */
function yamlComments(text: string): Map<string, string> {
  const out = new Map<string, string>();
  const doc = parseDocument(text);
  const root = doc.contents;
  if (!isMap(root)) return out;
  const node = root.get(NODE_NAME);
  const params = isMap(node) ? node.get("ros__parameters") : undefined;
  const walk = (map: YAMLMap, prefix: string) => {
    for (const item of map.items) {
      const key = isScalar(item.key) ? String(item.key.value) : undefined;
      if (key === undefined) continue;
      if (isMap(item.value)) walk(item.value, `${prefix}${key}.`);
      else {
        const comment =
          (isScalar(item.value) ? item.value.comment : undefined) ??
          (item.key as { commentBefore?: string }).commentBefore;
        if (comment) out.set(prefix + key, comment.trim());
      }
    }
  };
  if (isMap(params)) walk(params, "");
  return out;
}

/** Reads config/mbpo_arm.yaml for the parameter descriptions (none if it cannot be read). */
export function defaultConfigText(): string | undefined {
  try {
    return readFileSync(resolveDataPath("config/mbpo_arm.yaml"), "utf8");
  } catch {
    return undefined;
  }
}

export function rosType(kind: ParameterKind): ParameterTypeValue {
  switch (kind) {
    case "bool":
      return ParameterType.PARAMETER_BOOL;
    case "integer":
      return ParameterType.PARAMETER_INTEGER;
    case "double":
      return ParameterType.PARAMETER_DOUBLE;
    case "string":
      return ParameterType.PARAMETER_STRING;
  }
}

function getDotted(obj: Record<string, unknown>, name: string): unknown {
  let node: unknown = obj;
  for (const part of name.split(".")) node = (node as Record<string, unknown> | undefined)?.[part];
  return node;
}

function setDotted(obj: Record<string, unknown>, name: string, value: unknown): void {
  const parts = name.split(".");
  let node = obj;
  for (const part of parts.slice(0, -1)) {
    if (typeof node[part] !== "object" || node[part] === null) node[part] = {};
    node = node[part] as Record<string, unknown>;
  }
  node[parts[parts.length - 1]] = value;
}

/** A parameter's value as the config holds it (integers arrive as bigint). */
export function fromRosValue(kind: ParameterKind, value: unknown): unknown {
  if (kind === "integer" && typeof value === "bigint") return Number(value);
  return value;
}

function toRosValue(kind: ParameterKind, value: unknown): unknown {
  if (kind === "integer") return BigInt(value as number);
  return value;
}

/**
 * Declares every setting on the node, starting from `defaults` (with `fixed` forced, e.g. the
 * driver), and returns the validated config after the command line's overrides. Throws one line
 * naming the parameter that is wrong.
 */
export function declareConfigParameters(
  rcl: Pick<Rclnodejs, "Parameter" | "ParameterDescriptor" | "FloatingPointRange" | "IntegerRange">,
  node: RclNode,
  defaults: Config,
  specs: readonly ConfigParameterSpec[],
  /** Settings the node decides (e.g. `driver`): declared with the default, overrides ignored. */
  fixed: readonly string[] = [],
): Config {
  for (const spec of specs) {
    const type = rosType(spec.kind);
    const value = toRosValue(spec.kind, getDotted(defaults as unknown as Record<string, unknown>, spec.name));
    let range: object | undefined;
    if (spec.kind === "double" && (spec.min !== undefined || spec.max !== undefined)) {
      range = new rcl.FloatingPointRange(spec.min ?? -Number.MAX_VALUE, spec.max ?? Number.MAX_VALUE, 0);
    } else if (spec.kind === "integer" && (spec.min !== undefined || spec.max !== undefined)) {
      range = new rcl.IntegerRange(
        BigInt(spec.min ?? Number.MIN_SAFE_INTEGER),
        BigInt(spec.max ?? Number.MAX_SAFE_INTEGER),
        1n,
      );
    }
    const descriptor = new rcl.ParameterDescriptor(spec.name, type, spec.description, spec.readOnly, range);
    if (spec.choices !== undefined) descriptor.additionalConstraints = `one of: ${spec.choices.join(", ")}`;
    // Also in words: rclnodejs 1.9 enforces the range but leaves it out of describe_parameters.
    else if (range !== undefined)
      descriptor.additionalConstraints = `range ${spec.minExclusive ? "(" : "["}${spec.min ?? "-inf"}, ${spec.max ?? "inf"}${spec.maxExclusive ? ")" : "]"}`;
    try {
      node.declareParameter(new rcl.Parameter(spec.name, type, value), descriptor, fixed.includes(spec.name));
    } catch (err) {
      throw new Error(`parameter "${spec.name}": ${firstLine(err)}`);
    }
  }
  return readConfigParameters(node, specs);
}

/** The config the node's parameters hold now, validated. */
export function readConfigParameters(node: RclNode, specs: readonly ConfigParameterSpec[]): Config {
  const params: Record<string, unknown> = {};
  for (const spec of specs)
    setDotted(params, spec.name, fromRosValue(spec.kind, node.getParameter(spec.name).value));
  return validateConfig(params, "ROS parameters");
}

/**
 * The check run before any parameter changes (`ros2 param set`, a params-file load): the new values
 * merged into the current config must pass the schema. Returns the merged config when they do.
 */
export function checkParameterChange(
  current: Config,
  changes: readonly RclParameter[],
  specs: readonly ConfigParameterSpec[],
): { result: RclSetParametersResult; config?: Config } {
  const merged = structuredClone(current) as unknown as Record<string, unknown>;
  for (const p of changes) {
    const spec = specs.find((s) => s.name === p.name);
    if (spec === undefined) continue; // not a config setting (e.g. use_sim_time): not ours to judge
    if (spec.choices !== undefined && !spec.choices.includes(String(p.value))) {
      return {
        result: { successful: false, reason: `${p.name}: must be one of ${spec.choices.join(", ")}` },
      };
    }
    setDotted(merged, p.name, fromRosValue(spec.kind, p.value));
  }
  try {
    const config = validateConfig(merged, "parameter change");
    return { result: { successful: true, reason: "" }, config };
  } catch (err) {
    return { result: { successful: false, reason: firstLine(err) } };
  }
}

function firstLine(err: unknown): string {
  return String((err as Error)?.message ?? err).split("\n")[0];
}
