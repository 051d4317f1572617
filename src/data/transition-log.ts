/**
 * The transition log of a run: every real transition, into DIR/transitions.mcap, as rosbag2 would
 * record it (see mcap-writer.ts and log-messages.ts for the file).
 *
 * The control thread only copies each transition into preallocated typed arrays (record()); at the
 * episode's end the arrays are transferred to a worker thread that serialises, compresses and writes
 * the episode as complete chunks (endEpisode()). A run stopped by Ctrl-C closes the file properly
 * (close()); a run killed outright loses the episode in progress and keeps every earlier one.
 * A write error (full disk, unwritable directory) is reported once and never stops the robot.
 */
import { mkdirSync } from "node:fs";
import { homedir } from "node:os";
import { dirname, join } from "node:path";
import { Worker } from "node:worker_threads";
import type { EpisodeResult, Transition } from "../control/episode.js";
import type { Policy } from "../control/policy.js";
import { RecordingPolicy } from "../control/recording-policy.js";
import type { Driver, JointState } from "../drivers/driver.js";
import {
  appendRow,
  createRecording,
  type EpisodeRecording,
  growRecording,
  type RecordingShape,
  recordingBuffers,
} from "./episode-recording.js";
import { SOURCE_POLICY } from "./log-messages.js";
import type { FromWorker, LogWorkerData, ToWorker } from "./log-worker.js";

export { TRANSITIONS_FILE } from "./run-log.js";

/** Where a command's run directory goes when --out is not given: ~/.mbpo-arm/runs/<command>-<time>/. */
export function defaultRunDir(command: string): string {
  const root = process.env["MBPO_ARM_RUNS_DIR"] ?? join(homedir(), ".mbpo-arm", "runs");
  return join(root, `${command}-${new Date().toISOString().replace(/[:.]/g, "-")}`);
}

export interface TransitionLogOptions extends RecordingShape {
  jointNames: readonly string[];
  /** Rows preallocated per episode (the task's episode length); an episode may grow past it. */
  episodeSteps: number;
  /** SOURCE_POLICY or SOURCE_TELEOP (mbpo_arm_msgs/msg/Transition). */
  source?: number;
  library?: string;
}

export interface TransitionLogStats {
  path: string;
  episodes: number;
  messages: number;
  bytes: number;
}

export class TransitionLog {
  readonly path: string;
  private readonly worker: Worker;
  private readonly shape: RecordingShape;
  private readonly episodeSteps: number;
  private recording: EpisodeRecording;
  private written = { episodes: 0, messages: 0, bytes: 0 };
  private failure: string | undefined;
  private onFailure: ((message: string) => void) | undefined;
  private closing: Promise<TransitionLogStats> | undefined;
  private resolveClosed: ((stats: TransitionLogStats) => void) | undefined;
  private exited = false;

  private constructor(path: string, worker: Worker, options: TransitionLogOptions) {
    this.path = path;
    this.worker = worker;
    this.shape = {
      dof: options.dof,
      obsSize: options.obsSize,
      actSize: options.actSize,
      goalSize: options.goalSize,
    };
    this.episodeSteps = options.episodeSteps;
    this.recording = createRecording(this.shape, 0, options.episodeSteps);
  }

  /**
   * Starts the writer thread, which creates the file (and its directory) and writes the header and
   * topics. Rejects with a one-line error when the file cannot be created.
   */
  static async open(path: string, options: TransitionLogOptions): Promise<TransitionLog> {
    mkdirSync(dirname(path), { recursive: true });
    const data: LogWorkerData = {
      path,
      jointNames: [...options.jointNames],
      library: options.library ?? "mbpo-arm",
      source: options.source ?? SOURCE_POLICY,
    };
    const worker = new Worker(new URL("./log-worker.js", import.meta.url), { workerData: data });
    const log = new TransitionLog(path, worker, options);
    await new Promise<void>((resolve, reject) => {
      const first = (m: FromWorker) => {
        worker.off("error", failed);
        if (m.kind === "ready") resolve();
        else if (m.kind === "error") {
          void worker.terminate();
          reject(new Error(m.message));
        }
      };
      const failed = (err: Error) => reject(new Error(`transition log: ${err.message}`));
      worker.once("message", first);
      worker.once("error", failed);
    });
    worker.on("message", (m: FromWorker) => log.handle(m));
    worker.on("error", (err) => log.fail(`transition log writer crashed: ${err.message}`));
    worker.on("exit", () => {
      log.exited = true;
      if (log.resolveClosed !== undefined) log.resolveClosed(log.stats());
    });
    return log;
  }

  /** The first write error, if any (the log stops writing after it; the run goes on). */
  get error(): string | undefined {
    return this.failure;
  }

  /** Called once with the first write error (e.g. to print a warning). */
  set onError(callback: (message: string) => void) {
    this.onFailure = callback;
  }

  /**
   * Copies one transition into the episode in progress. `state` is the joint state the observation
   * was built from, `next` the one after the step, `goal` the episode's goal. Allocation-free
   * unless the episode outgrows its preallocated length.
   */
  record(t: Transition, state: JointState, next: JointState, goal: ArrayLike<number>): void {
    let r = this.recording;
    if (r.rows === 0) {
      r.episode = t.episode;
      for (let k = 0; k < r.goalSize; k++) r.goal[k] = k < goal.length ? goal[k] : Number.NaN;
    }
    if (r.rows === r.capacity) {
      r = growRecording(r);
      this.recording = r;
    }
    appendRow(r, t, state, next);
  }

  /**
   * Hands the finished episode (with its result) to the writer thread, and starts a fresh buffer.
   * After the writer has flushed it, the episode survives the process being killed.
   */
  endEpisode(result: EpisodeResult): void {
    const r = this.recording;
    r.episode = result.episode;
    this.recording = createRecording(this.shape, result.episode + 1, this.episodeSteps);
    if (this.failure !== undefined || this.closing !== undefined) return;
    const message: ToWorker = { kind: "episode", recording: r, result: { ...result } };
    this.worker.postMessage(message, recordingBuffers(r));
  }

  /**
   * Writes what is pending, the summary and the footer, and stops the writer thread. Transitions
   * recorded since the last endEpisode() (an episode without a result) are dropped.
   */
  close(): Promise<TransitionLogStats> {
    if (this.closing !== undefined) return this.closing;
    this.closing = new Promise<TransitionLogStats>((resolve) => {
      if (this.exited) {
        resolve(this.stats());
        return;
      }
      this.resolveClosed = resolve;
      this.worker.postMessage({ kind: "close" } satisfies ToWorker);
    });
    return this.closing;
  }

  stats(): TransitionLogStats {
    return { path: this.path, ...this.written };
  }

  private handle(m: FromWorker): void {
    if (m.kind === "written") {
      this.written = { episodes: this.written.episodes + 1, messages: m.messages, bytes: m.bytes };
    } else if (m.kind === "closed") {
      this.written = { ...this.written, messages: m.messages, bytes: m.bytes };
    } else if (m.kind === "error") {
      this.fail(m.message);
    }
  }

  private fail(message: string): void {
    if (this.failure !== undefined) return;
    this.failure = message;
    this.onFailure?.(message);
  }
}

/**
 * Connects a run's episodes to a transition log: a policy wrapper that remembers the goal and the
 * joint state each observation was built from (RecordingPolicy), and the runner's hooks. The
 * wrapper changes nothing the policy sees or does.
 */
export function recordEpisodes(
  log: TransitionLog,
  driver: Driver,
  policy: Policy,
  dof: number,
): {
  policy: Policy;
  onTransition: (t: Transition) => void;
  onEpisode: (r: EpisodeResult) => void;
} {
  const recorder = new RecordingPolicy(dof, 0, policy);
  let goal: ArrayLike<number> = new Float64Array(0);
  const wrapped: Policy = {
    name: policy.name,
    reset(episode) {
      goal = episode.goal;
      policy.reset(episode);
    },
    act: (obs, ctx, out) => recorder.act(obs, ctx, out),
  };
  return {
    policy: wrapped,
    onTransition: (t) => {
      // The runner observes the next state from readState() right before this hook.
      const next = driver.readState();
      if (next !== undefined) log.record(t, recorder.observed, next, goal);
    },
    onEpisode: (r) => log.endEpisode(r),
  };
}
