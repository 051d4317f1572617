/**
 * The learner's worker thread (started by LearnerWorker in src/mbpo/worker.ts). It selects the
 * TensorFlow.js backend, builds or restores the learner, and answers the host's requests one at a
 * time, in the order they arrive. A learner error becomes an error reply; anything thrown outside a
 * request crashes the thread, which the host sees as a failure.
 */
import { readlinkSync } from "node:fs";
import { getPriority, setPriority } from "node:os";
import { parentPort, workerData } from "node:worker_threads";
import { type BackendSelection, describeAdapter, selectBackend } from "./backend.js";
import type { Learner, LearnerSpec, RealTransitionInput } from "./learner.js";
import { forEachTransition } from "./transition-batch.js";
import type { HostMessage, LearnerWorkerData, WorkerMessage } from "./worker.js";

/** What a learner module exports (src/mbpo/mbpo.ts, or a test double). */
interface LearnerModule {
  createLearner(spec: LearnerSpec): Promise<Learner>;
  loadLearner(dir: string): Promise<Learner>;
}

/** Nice value of the learner's thread (0 normal, 19 lowest); the control thread stays at its own. */
const LEARNER_NICE = 10;

if (parentPort === null) throw new Error("worker-main: must run in a worker thread (see LearnerWorker)");
const port = parentPort;

/**
 * Learning yields the CPU to the control thread: on Linux the nice value is per thread, so the
 * worker lowers its own (threads it starts, e.g. libtensorflow's pool, inherit it). Elsewhere, or
 * where it is not permitted, learning runs at normal priority.
 */
function lowerThreadPriority(): string {
  try {
    const tid = Number(readlinkSync("/proc/thread-self").split("/").pop());
    if (!Number.isInteger(tid)) return "not lowered (no thread id)";
    setPriority(tid, LEARNER_NICE);
    return `nice ${getPriority(tid)}`;
  } catch (error) {
    return `not lowered (${(error as Error).message.split("\n")[0]})`;
  }
}
const priority = lowerThreadPriority();
const { learnerModule, stopFlag } = workerData as LearnerWorkerData;
/** The host's LearnerWorker.interrupt(), read between gradient steps. */
const stopRequested = (): boolean => Atomics.load(stopFlag, 0) === 1;
const learnerApi = (await import(learnerModule)) as LearnerModule;

/** The backend, and for webgpu the adapter that runs it. */
function describeBackend(selection: BackendSelection): string {
  if (selection.adapter !== undefined) return `${selection.name} on ${describeAdapter(selection.adapter)}`;
  return (selection.threads ?? 1) > 1 ? `${selection.name} on ${selection.threads} threads` : selection.name;
}

let learner: Learner | undefined;
let queue: Promise<void> = Promise.resolve();

function post(message: WorkerMessage): void {
  port.postMessage(message);
}

function requireLearner(type: string): Learner {
  if (learner === undefined) throw new Error(`${type} before init or load`);
  return learner;
}

async function handle(message: HostMessage): Promise<unknown> {
  switch (message.type) {
    case "init": {
      if (learner !== undefined) throw new Error("init: a learner already exists");
      const backend = await selectBackend(message.spec.backend, message.spec.threads);
      post({
        type: "log",
        level: "debug",
        message: `learner: TensorFlow.js backend ${describeBackend(backend)}, thread ${priority}`,
      });
      learner = await learnerApi.createLearner(message.spec);
      return { backend };
    }
    case "load": {
      if (learner !== undefined) throw new Error("load: a learner already exists");
      const backend = await selectBackend(message.backend, message.threads);
      post({
        type: "log",
        level: "debug",
        message: `learner: TensorFlow.js backend ${describeBackend(backend)}, thread ${priority}`,
      });
      learner = await learnerApi.loadLearner(message.dir);
      return { spec: learner.spec, backend };
    }
    case "addReal": {
      const target = requireLearner("addReal");
      forEachTransition(message.batch, (t) => target.addReal(t));
      return { added: message.batch.count };
    }
    case "addBootstrap": {
      const rows: RealTransitionInput[] = [];
      // Each row's arrays are views into the batch, which stays alive: no copy needed here.
      forEachTransition(message.batch, (t) => rows.push({ ...t }));
      return requireLearner("addBootstrap").addBootstrap(rows);
    }
    case "pretrain":
      return await requireLearner("pretrain").pretrain(stopRequested);
    case "update":
      return await requireLearner("update").update(stopRequested);
    case "actorWeights":
      return await requireLearner("actorWeights").actorWeights();
    case "save":
      await requireLearner("save").save(message.dir);
      return { dir: message.dir };
    case "dispose":
      learner?.dispose();
      learner = undefined;
      return { disposed: true };
    default:
      throw new Error(`unknown request type ${JSON.stringify((message as { type?: unknown }).type)}`);
  }
}

port.on("message", (message: HostMessage) => {
  queue = queue.then(async () => {
    const id = message?.id;
    try {
      const value = await handle(message);
      post({ type: "reply", id, ok: true, value });
    } catch (error) {
      const e = error instanceof Error ? error : new Error(String(error));
      post({ type: "reply", id, ok: false, error: e.message.split("\n")[0], stack: e.stack });
    }
  });
});
