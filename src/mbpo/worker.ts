/**
 * The learner in a worker_threads Worker, seen from the control thread.
 *
 * The control thread must never wait for learning: every call here returns a promise at once, and
 * the caller keeps ticking the robot (see src/app/hold.ts holdWhile) until it settles. The worker
 * (src/mbpo/worker-main.ts) loads TensorFlow.js and the learner; this side never imports either.
 *
 * Protocol: the host sends one request at a time or several (the worker runs them in order); each
 * request carries an id and gets exactly one reply with that id. Everything is plain data; real
 * transitions travel packed (src/mbpo/transition-batch.ts) with their buffers transferred.
 *
 * Failure: an uncaught exception in the worker, its exit, an unreadable message, a reply the host
 * cannot match, or an error reply to any request marks the worker failed: every pending and later
 * request rejects, the thread is terminated, and onFailure is called once (the trainer latches the
 * safety filter's "learner" fault there).
 */
import { Worker } from "node:worker_threads";
import type { BackendSelection } from "./backend.js";
import type { ActorWeights, BootstrapReport, LearnerSpec, PretrainReport, UpdateReport } from "./learner.js";
import { type PackedTransitions, transferList } from "./transition-batch.js";

/** Each request: what it carries and what its reply's value is. */
export interface LearnerRequests {
  /** Selects the backend and builds a new learner. */
  init: { args: { spec: LearnerSpec }; result: { backend: BackendSelection } };
  /** Selects the backend (forced one, or the fastest) and restores a learner saved under dir. */
  load: {
    args: { dir: string; backend?: string; threads?: number };
    result: { spec: LearnerSpec; backend: BackendSelection };
  };
  /** Real transitions, packed. The reply says how many were stored. */
  addReal: { args: { batch: PackedTransitions }; result: { added: number } };
  /** Transitions recorded before the run (Learner.addBootstrap), packed; then pretrain. */
  addBootstrap: { args: { batch: PackedTransitions }; result: BootstrapReport };
  pretrain: { args: Record<string, never>; result: PretrainReport };
  update: { args: Record<string, never>; result: UpdateReport };
  actorWeights: { args: Record<string, never>; result: ActorWeights };
  save: { args: { dir: string }; result: { dir: string } };
  dispose: { args: Record<string, never>; result: { disposed: true } };
}

export type LearnerRequestType = keyof LearnerRequests;

/** Host → worker. */
export type HostMessage = {
  [K in LearnerRequestType]: { type: K; id: number } & LearnerRequests[K]["args"];
}[LearnerRequestType];

/** Worker → host. */
export type WorkerMessage =
  | { type: "reply"; id: number; ok: true; value: unknown }
  | { type: "reply"; id: number; ok: false; error: string; stack?: string }
  | { type: "log"; level: "info" | "warn" | "debug"; message: string };

/** What the worker thread is started with. */
export interface LearnerWorkerData {
  /** URL (file:) of the module exporting createLearner and loadLearner. */
  learnerModule: string;
  /**
   * One Int32 shared with the host: 1 asks the running update or pretrain to stop at its next
   * gradient step (see LearnerWorker.interrupt). Shared memory, not a message, because the
   * worker's event loop is busy for the whole phase.
   */
  stopFlag: Int32Array;
}

/** The real learner: MBPO (and its SAC baseline) from src/mbpo/mbpo.ts. */
export const DEFAULT_LEARNER_MODULE = new URL("./mbpo.js", import.meta.url).href;

export interface LearnerWorkerOptions {
  /**
   * Module exporting `createLearner(spec)` and `loadLearner(dir)`: the real learner by default.
   * Tests pass a test double here; nothing else should.
   */
  learnerModule?: string;
  /** Called once, on the first failure (crash, exit, bad message, error reply). */
  onFailure?: (error: Error) => void;
  /** Log lines the worker sends. */
  onLog?: (level: "info" | "warn" | "debug", message: string) => void;
}

interface Pending {
  type: LearnerRequestType;
  resolve: (value: unknown) => void;
  reject: (error: Error) => void;
}

export class LearnerWorker {
  private readonly worker: Worker;
  private readonly options: LearnerWorkerOptions;
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  private failed: Error | undefined;
  private closing = false;
  private readonly stopFlag = new Int32Array(new SharedArrayBuffer(4));

  constructor(options: LearnerWorkerOptions = {}) {
    this.options = options;
    const workerData: LearnerWorkerData = {
      learnerModule: options.learnerModule ?? DEFAULT_LEARNER_MODULE,
      stopFlag: this.stopFlag,
    };
    this.worker = new Worker(new URL("./worker-main.js", import.meta.url), { workerData });
    this.worker.on("message", (message: unknown) => this.onMessage(message));
    this.worker.on("error", (error: Error) =>
      this.fail(new Error(`learner worker crashed: ${firstLine(error)}`)),
    );
    this.worker.on("messageerror", (error: Error) =>
      this.fail(new Error(`learner worker sent an unreadable message: ${firstLine(error)}`)),
    );
    this.worker.on("exit", (code: number) => {
      if (!this.closing) this.fail(new Error(`learner worker exited unexpectedly (exit code ${code})`));
      this.rejectAll(this.failed ?? new Error("learner worker has exited"));
    });
  }

  /** The first failure, if any: once set, every request rejects with it. */
  get failure(): Error | undefined {
    return this.failed;
  }

  /** Requests in flight. */
  get busy(): boolean {
    return this.pending.size > 0;
  }

  init(spec: LearnerSpec): Promise<{ backend: BackendSelection }> {
    return this.request("init", { spec });
  }

  load(
    dir: string,
    backend?: string,
    threads?: number,
  ): Promise<{ spec: LearnerSpec; backend: BackendSelection }> {
    return this.request("load", {
      dir,
      ...(backend !== undefined ? { backend } : {}),
      ...(threads !== undefined ? { threads } : {}),
    });
  }

  /** Sends the batch; its buffers are transferred (the caller's arrays become empty). */
  addReal(batch: PackedTransitions): Promise<{ added: number }> {
    return this.request("addReal", { batch }, transferList(batch));
  }

  /** Sends transitions recorded before the run; buffers transferred as by addReal. */
  addBootstrap(batch: PackedTransitions): Promise<BootstrapReport> {
    return this.request("addBootstrap", { batch }, transferList(batch));
  }

  pretrain(): Promise<PretrainReport> {
    Atomics.store(this.stopFlag, 0, 0);
    return this.request("pretrain", {});
  }

  update(): Promise<UpdateReport> {
    Atomics.store(this.stopFlag, 0, 0);
    return this.request("update", {});
  }

  /**
   * Asks the update or pretrain in progress to stop at its next gradient step (Learner.update's
   * shouldStop): its reply then comes within one step, `interrupted`, and the learner can be saved
   * at once. No effect on other requests; the next update or pretrain clears it.
   */
  interrupt(): void {
    Atomics.store(this.stopFlag, 0, 1);
  }

  actorWeights(): Promise<ActorWeights> {
    return this.request("actorWeights", {});
  }

  save(dir: string): Promise<{ dir: string }> {
    return this.request("save", { dir });
  }

  /** Frees the learner's tensors and ends the thread. Safe after a failure, and twice. */
  async dispose(): Promise<void> {
    if (this.closing) return;
    if (this.failed === undefined) {
      try {
        await this.request("dispose", {});
      } catch {
        // The thread is ended below either way.
      }
    }
    this.closing = true;
    await this.worker.terminate();
  }

  private request<K extends LearnerRequestType>(
    type: K,
    args: LearnerRequests[K]["args"],
    transfer: ArrayBuffer[] = [],
  ): Promise<LearnerRequests[K]["result"]> {
    if (this.failed !== undefined) return Promise.reject(this.failed);
    if (this.closing) return Promise.reject(new Error(`learner worker: ${type} after dispose`));
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { type, resolve: resolve as (value: unknown) => void, reject });
      try {
        this.worker.postMessage({ type, id, ...args }, transfer);
      } catch (error) {
        this.pending.delete(id);
        const failure = new Error(`learner worker: cannot send ${type}: ${firstLine(error)}`);
        reject(failure);
        this.fail(failure);
      }
    });
  }

  private onMessage(raw: unknown): void {
    const message = raw as WorkerMessage;
    if (typeof message !== "object" || message === null) {
      this.fail(new Error("learner worker sent a message that is not an object"));
      return;
    }
    if (message.type === "log") {
      this.options.onLog?.(message.level, String(message.message));
      return;
    }
    if (message.type !== "reply" || !Number.isInteger(message.id)) {
      this.fail(
        new Error(
          `learner worker sent an unknown message type ${JSON.stringify((message as { type?: unknown }).type)}`,
        ),
      );
      return;
    }
    const pending = this.pending.get(message.id);
    if (pending === undefined) {
      this.fail(new Error(`learner worker replied to request ${message.id}, which is not pending`));
      return;
    }
    this.pending.delete(message.id);
    if (message.ok) {
      pending.resolve(message.value);
      return;
    }
    const error = new Error(`learner ${pending.type} failed: ${message.error}`);
    if (message.stack !== undefined) error.stack = `${error.message}\n(worker) ${message.stack}`;
    pending.reject(error);
    this.fail(error);
  }

  private fail(error: Error): void {
    if (this.failed !== undefined) return;
    this.failed = error;
    this.rejectAll(error);
    this.closing = true;
    void this.worker.terminate();
    this.options.onFailure?.(error);
  }

  private rejectAll(error: Error): void {
    for (const pending of this.pending.values()) pending.reject(error);
    this.pending.clear();
  }
}

function firstLine(error: unknown): string {
  const text = error instanceof Error ? error.message : String(error);
  return text.split("\n")[0];
}
