/**
 * The transition log's writer thread: receives whole episodes from the control thread, serialises
 * and compresses them into the MCAP file, and ends a chunk after each, so that the control tick
 * never waits on CDR, zstd or the disk.
 */
import { parentPort, workerData } from "node:worker_threads";
import type { EpisodeResult } from "../control/episode.js";
import type { EpisodeRecording } from "./episode-recording.js";
import { addLogTopics, writeEpisode } from "./log-messages.js";
import { loadZstd, Ros2McapWriter } from "./mcap-writer.js";

export interface LogWorkerData {
  path: string;
  jointNames: string[];
  library: string;
  source: number;
}

export type ToWorker =
  | { kind: "episode"; recording: EpisodeRecording; result?: EpisodeResult }
  | { kind: "close" };

export type FromWorker =
  | { kind: "ready" }
  | { kind: "written"; episode: number; messages: number; bytes: number }
  | { kind: "closed"; messages: number; bytes: number }
  | { kind: "error"; message: string };

const port = parentPort!;
const data = workerData as LogWorkerData;
const post = (m: FromWorker) => port.postMessage(m);

let writer: Ros2McapWriter | undefined;
try {
  await loadZstd();
  writer = new Ros2McapWriter(data.path, { library: data.library });
  addLogTopics(writer);
  post({ kind: "ready" });
} catch (err) {
  post({ kind: "error", message: `cannot write ${data.path}: ${(err as Error).message}` });
}

port.on("message", (m: ToWorker) => {
  if (writer === undefined) {
    if (m.kind === "close") port.close();
    return;
  }
  try {
    if (m.kind === "episode") {
      writeEpisode(writer, m.recording, data.jointNames, m.result, data.source);
      writer.flush();
      post({ kind: "written", episode: m.recording.episode, messages: writer.messages, bytes: writer.bytes });
    } else {
      writer.close();
      post({ kind: "closed", messages: writer.messages, bytes: writer.bytes });
      port.close();
    }
  } catch (err) {
    post({ kind: "error", message: `writing ${data.path}: ${(err as Error).message}` });
    if (m.kind === "close") port.close();
  }
});
