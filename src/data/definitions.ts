/**
 * ROS 2 message definitions (.msg text) of every type the transition log writes or the importer
 * reads, and the "complete definition" rosbag2 stores as an MCAP schema (encoding `ros2msg`): the
 * type's own text, then each type it depends on after a line of 80 "=" and a line "MSG: pkg/msg/Type".
 *
 * Ours (mbpo_arm_msgs) are copies of msg/*.msg, which is what a ROS 2 workspace builds; a test keeps
 * the two identical. The standard ones are the Humble definitions (comments shortened).
 */

const TRANSITION_MSG = `# One real transition of the arm (package mbpo_arm_msgs): the joint state the policy acted on,
# the effort that was applied, and the state it led to. mbpo-arm publishes one per control tick
# on /mbpo/transition. Units are SI: rad or m, rad/s or m/s, N*m or N.

# Recorded by \`mbpo-arm run\` or \`train\` while a policy drove the arm.
uint8 SOURCE_POLICY=0
# Converted from a teleoperation recording by \`mbpo-arm bootstrap\` (action derived from effort).
uint8 SOURCE_TELEOP=1

# stamp: when the observed joint state was measured (the driver's clock).
std_msgs/Header header
uint8 source
uint32 episode
uint32 step

# Joint names, in the order of every joint-space array below.
string[] joint_names
float64[] position
float64[] velocity
# Effort applied during the step: after gravity compensation and the safety filter.
float64[] effort
float64[] next_position
float64[] next_velocity
# The episode's goal (reach: the target point in the base frame).
float64[] goal

float32[] observation
# The policy's normalised action, in [-1, 1].
float32[] action
float32[] next_observation
float64 reward
bool terminated
bool truncated
# Safety filter interventions at this tick (0: the command went through unchanged).
uint32 safety_interventions
`;

const EPISODE_SUMMARY_MSG = `# The end of one episode of the arm (package mbpo_arm_msgs), published on /mbpo/episode.

# stamp: the driver's clock at the episode's last state.
std_msgs/Header header
uint32 episode
uint32 steps
float64 episode_return
bool success
# Task distance to the goal at the end (reach: metres).
float64 final_distance
# Whether the reset move reached the start pose in time.
bool reset_reached
# True when the run was stopped (Ctrl-C) during the episode.
bool aborted
# The safety fault that ended the episode; empty when none latched.
string fault
# Safety interventions during the episode, by kind (parallel arrays).
string[] intervention_kinds
uint32[] intervention_counts
# Largest |effort| sent per joint, as a fraction of its effort limit.
float64[] peak_effort_fraction
`;

export interface MessageType {
  /** Full ROS 2 name, e.g. "sensor_msgs/msg/JointState". */
  name: string;
  /** The .msg text. */
  text: string;
}

export const JOINT_STATE = "sensor_msgs/msg/JointState";
export const FLOAT64_MULTI_ARRAY = "std_msgs/msg/Float64MultiArray";
export const TRANSITION = "mbpo_arm_msgs/msg/Transition";
export const EPISODE_SUMMARY = "mbpo_arm_msgs/msg/EpisodeSummary";

const TYPES: readonly MessageType[] = [
  {
    name: "builtin_interfaces/msg/Time",
    text: "# Time in seconds and nanoseconds since the clock's epoch.\nint32 sec\nuint32 nanosec\n",
  },
  {
    name: "std_msgs/msg/Header",
    text: "# When and in which frame the data was measured.\nbuiltin_interfaces/Time stamp\nstring frame_id\n",
  },
  {
    name: JOINT_STATE,
    text:
      "# The state of a set of joints; arrays are parallel to name, and may be empty.\n" +
      "std_msgs/Header header\nstring[] name\nfloat64[] position\nfloat64[] velocity\nfloat64[] effort\n",
  },
  {
    name: "std_msgs/msg/MultiArrayDimension",
    text: "string label\nuint32 size\nuint32 stride\n",
  },
  {
    name: "std_msgs/msg/MultiArrayLayout",
    text: "MultiArrayDimension[] dim\nuint32 data_offset\n",
  },
  {
    name: FLOAT64_MULTI_ARRAY,
    text: "# An array of float64 with an optional layout.\nMultiArrayLayout layout\nfloat64[] data\n",
  },
  {
    name: "std_msgs/msg/String",
    text: "string data\n",
  },
  { name: TRANSITION, text: TRANSITION_MSG },
  { name: EPISODE_SUMMARY, text: EPISODE_SUMMARY_MSG },
];

const byName = new Map(TYPES.map((t) => [t.name, t]));

/** "pkg/Type" or "pkg/msg/Type" → "pkg/msg/Type". */
export function fullTypeName(name: string): string {
  const parts = name.split("/");
  return parts.length === 2 ? `${parts[0]}/msg/${parts[1]}` : name;
}

export function messageType(name: string): MessageType {
  const type = byName.get(fullTypeName(name));
  if (type === undefined) throw new Error(`no message definition for "${name}"`);
  return type;
}

const PRIMITIVES = new Set([
  "bool",
  "byte",
  "char",
  "float32",
  "float64",
  "int8",
  "uint8",
  "int16",
  "uint16",
  "int32",
  "uint32",
  "int64",
  "uint64",
  "string",
  "wstring",
]);

/**
 * The types a .msg text's fields use, as rosbag2 finds them: the type word of each field line,
 * primitives skipped, a bare "Type" taken from the same package, in sorted order.
 */
function dependencies(text: string, packageName: string): string[] {
  const found = new Set<string>();
  for (const match of text.matchAll(/(?:^|\n)\s*([a-zA-Z0-9_/]+)(?:\[[^\]]*\])?\s+/g)) {
    const type = match[1].replace(/<=\d+$/, "");
    if (PRIMITIVES.has(type)) continue;
    found.add(type.includes("/") ? type : `${packageName}/${type}`);
  }
  return [...found].sort();
}

const DELIMITER = "=".repeat(80);

/**
 * The complete definition of a type as rosbag2 writes it into an MCAP schema: the type's text, then
 * for each type it depends on (each once, depth first, in sorted order) a newline, a line of 80
 * "=", a line "MSG: " plus the dependency's name as its field spells it, and its own complete text.
 */
export function completeDefinition(name: string): string {
  const seen = new Set<string>();
  const expand = (typeName: string): string => {
    const type = messageType(typeName);
    let result = type.text;
    for (const dep of dependencies(type.text, type.name.split("/")[0])) {
      if (seen.has(dep)) continue;
      seen.add(dep);
      result += `\n${DELIMITER}\nMSG: ${dep}\n${expand(dep)}`;
    }
    return result;
  };
  return expand(name);
}
