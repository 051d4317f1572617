/**
 * The arm's description from the ROS graph: the URDF text that robot_state_publisher (or any
 * node) publishes on `/robot_description` as a std_msgs/String, reliable and transient-local, so
 * that a node started later still gets it. With the node parameter `robot_description_topic` set,
 * the node waits for that message before it builds anything, checks that it is a URDF it can use,
 * keeps it in a file named by its content (`~/.mbpo-arm/descriptions/<first 16 hex digits of its sha256>.urdf`, or under
 * MBPO_ARM_DESCRIPTIONS_DIR) and runs on that file, as if `urdf` named it: a learning run's
 * config.yaml then names a file that still holds the arm it learned on, whatever the graph
 * publishes later. Unset (the default ""), the `urdf` parameter is used.
 *
 * The same text drives ros2_control and robot_state_publisher, so the model the safety filter
 * believes is the arm the rest of the graph runs; a launch file that starts robot_state_publisher
 * passes `robot_description_topic:=/robot_description` (launch/mbpo_arm_common.py).
 */
import { createHash } from "node:crypto";
import { mkdirSync, renameSync, writeFileSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";
import type { RclNode, Rclnodejs, RclSubscription } from "../drivers/ros2/rclnodejs.js";
import { ParameterType } from "../drivers/ros2/rclnodejs.js";
import { modelFromXml } from "../robot/description.js";

export const DESCRIPTION_TOPIC_PARAM = "robot_description_topic";
export const DESCRIPTION_TIMEOUT_PARAM = "robot_description_timeout";
/** Seconds to wait for the description when the parameter does not say. */
export const DESCRIPTION_TIMEOUT_DEFAULT = 10;

export interface DescriptionSource {
  /** The topic to read the description from; "" for none (the `urdf` parameter). */
  topic: string;
  /** Seconds to wait for its first message. */
  timeout: number;
}

type Rcl = Pick<Rclnodejs, "Parameter" | "ParameterDescriptor" | "FloatingPointRange" | "QoS">;

/** Declares `robot_description_topic` and `robot_description_timeout` (read-only) and reads them. */
export function declareDescriptionParameters(rcl: Rcl, node: RclNode): DescriptionSource {
  const declare = (name: string, type: number, value: unknown, description: string, range?: object) => {
    const descriptor = new rcl.ParameterDescriptor(
      name,
      type as never,
      `${description} (read-only: fixed at startup)`,
      true,
      range as never,
    );
    try {
      return node.declareParameter(new rcl.Parameter(name, type as never, value), descriptor).value;
    } catch (err) {
      throw new Error(`parameter "${name}": ${String((err as Error).message).split("\n")[0]}`);
    }
  };
  const topic = declare(
    DESCRIPTION_TOPIC_PARAM,
    ParameterType.PARAMETER_STRING,
    "",
    'topic of the arm\'s URDF (std_msgs/String, transient-local), e.g. "/robot_description"; "" uses the urdf parameter',
  );
  const timeout = declare(
    DESCRIPTION_TIMEOUT_PARAM,
    ParameterType.PARAMETER_DOUBLE,
    DESCRIPTION_TIMEOUT_DEFAULT,
    "seconds to wait for the description on robot_description_topic",
    new rcl.FloatingPointRange(0.1, 3600, 0),
  );
  return { topic: String(topic ?? ""), timeout: Number(timeout) };
}

/** Reliable, transient-local, keep the last one: what robot_state_publisher offers. */
function latchedQos(rcl: Pick<Rclnodejs, "QoS">): object {
  const { HistoryPolicy, ReliabilityPolicy, DurabilityPolicy } = rcl.QoS;
  return new rcl.QoS(
    HistoryPolicy.RMW_QOS_POLICY_HISTORY_KEEP_LAST,
    1,
    ReliabilityPolicy.RMW_QOS_POLICY_RELIABILITY_RELIABLE,
    DurabilityPolicy.RMW_QOS_POLICY_DURABILITY_TRANSIENT_LOCAL,
  );
}

/**
 * The first message on `source.topic` (the node must be spinning), as URDF text. Rejects, in one
 * line naming the topic, when none comes within the timeout or `signal` aborts first.
 */
export function receiveRobotDescription(
  rcl: Pick<Rclnodejs, "QoS">,
  node: RclNode,
  source: DescriptionSource,
  signal?: AbortSignal,
): Promise<string> {
  return new Promise<string>((resolve, reject) => {
    let subscription: RclSubscription | undefined;
    let timer: NodeJS.Timeout | undefined;
    const finish = (end: () => void) => {
      clearTimeout(timer);
      signal?.removeEventListener("abort", onAbort);
      if (subscription !== undefined) node.destroySubscription?.(subscription);
      subscription = undefined;
      end();
    };
    const onAbort = () =>
      finish(() => reject(new Error(`stopped while waiting for the robot description on ${source.topic}`)));
    if (signal?.aborted) return onAbort();
    signal?.addEventListener("abort", onAbort, { once: true });
    timer = setTimeout(
      () =>
        finish(() =>
          reject(
            new Error(
              `no robot description on ${source.topic} within ${source.timeout} s ` +
                "(is robot_state_publisher running? it publishes the URDF there, transient-local)",
            ),
          ),
        ),
      source.timeout * 1000,
    );
    subscription = node.createSubscription<{ data: string }>(
      "std_msgs/msg/String",
      source.topic,
      { qos: latchedQos(rcl) },
      (message) => {
        if (subscription === undefined) return;
        const text = typeof message?.data === "string" ? message.data : "";
        finish(() => resolve(text));
      },
    );
  });
}

/** Where descriptions read from the graph are kept. */
export function descriptionCacheDir(): string {
  return process.env["MBPO_ARM_DESCRIPTIONS_DIR"] ?? join(homedir(), ".mbpo-arm", "descriptions");
}

/**
 * Checks URDF text from `topic` (one line naming the topic and what is wrong) and keeps it in a
 * file named by its SHA-256 (written whole, then renamed into place). Returns the file's path.
 */
export function keepRobotDescription(xml: string, topic: string, dir = descriptionCacheDir()): string {
  if (xml.trim() === "") throw new Error(`robot description on ${topic}: the message is empty`);
  try {
    modelFromXml(xml, `robot description on ${topic}`);
  } catch (err) {
    throw new Error(String((err as Error).message).split("\n")[0]);
  }
  const digest = createHash("sha256").update(xml).digest("hex").slice(0, 16);
  const path = join(dir, `${digest}.urdf`);
  mkdirSync(dir, { recursive: true });
  const partial = `${path}.${process.pid}.partial`;
  writeFileSync(partial, xml);
  renameSync(partial, path);
  return path;
}

/**
 * The description file the node runs on: undefined when no topic is set, else the file holding
 * what the topic published (waited for, checked and kept; see above).
 */
export async function robotDescriptionFromGraph(
  rcl: Rcl,
  node: RclNode,
  signal?: AbortSignal,
): Promise<{ path: string; topic: string } | undefined> {
  const source = declareDescriptionParameters(rcl, node);
  if (source.topic === "") return undefined;
  const xml = await receiveRobotDescription(rcl, node, source, signal);
  return { path: keepRobotDescription(xml, source.topic), topic: source.topic };
}
