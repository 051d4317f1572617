/**
 * Episodes with a fixed policy (`run`, the ROS node's run mode): start poses and goals from their
 * own seeded stream, so that the same seed gives the same episodes whatever the policy draws, and
 * the series continues where it stopped when it is run again (the node's next ~/start).
 */
import type { EpisodeResult, Transition } from "../control/episode.js";
import type { Policy } from "../control/policy.js";
import { RecordingPolicy } from "../control/recording-policy.js";
import type { ControlStack } from "../control/stack.js";
import type { TimingSummary } from "../control/tick-timer.js";
import { Rng } from "../util/rng.js";
import type { EventSink } from "./events.js";
import { makeTransitionSink, type TransitionSink } from "./transitions.js";

export interface RunSummary {
  episodes: number;
  successRate: number;
  meanReturn: number;
  meanFinalDistance: number;
  /** Interventions over the whole run, by kind. */
  interventions: Record<string, number>;
  /** Largest |effort| sent per joint over the run, as a fraction of its effort limit. */
  peakEffortFraction: number[];
  /** Control tick compute time (read state → policy → safety → send), µs. */
  tick: TimingSummary;
  fault?: string;
  aborted: boolean;
}

export class EpisodeSeries {
  /** Episodes run so far (the next one's index). */
  index = 0;
  private readonly stack: ControlStack;
  private readonly rng: Rng;
  private readonly recorder: RecordingPolicy;
  private readonly sink;
  private log: TransitionSink | undefined;

  constructor(stack: ControlStack, seed: number, log?: TransitionSink) {
    this.stack = stack;
    this.rng = new Rng(seed, 1);
    this.log = log;
    this.recorder = new RecordingPolicy(stack.model.dof, stack.task.goalSize);
    this.sink = makeTransitionSink(stack, this.recorder, undefined, () => this.log);
  }

  /**
   * Runs up to `count` episodes (Infinity: until stopped) with `policy`; stops early on a fault or
   * the signal. Each episode is logged (when there is a log) and reported as an event.
   */
  async run(
    policy: Policy,
    count: number,
    options: { signal?: AbortSignal; emit?: EventSink; onTransition?: (t: Transition) => void } = {},
  ): Promise<RunSummary> {
    const { signal, emit, onTransition: extra } = options;
    const { stack, recorder, sink } = this;
    recorder.use(policy);
    const logged = this.log !== undefined;
    const onTransition =
      extra === undefined
        ? logged
          ? sink
          : undefined
        : logged
          ? (t: Transition) => {
              sink(t);
              extra(t);
            }
          : extra;
    const results: EpisodeResult[] = [];
    for (let i = 0; i < count && !signal?.aborted; i++) {
      const episode = stack.task.sampleEpisode(this.rng);
      const result = await stack.runner.runEpisode(this.index++, episode, recorder, {
        signal,
        onTransition,
      });
      this.log?.endEpisode(result);
      results.push(result);
      emit?.({ type: "episode", kind: "run", result });
      if (result.fault !== undefined) emit?.({ type: "fault", fault: result.fault });
      if (result.fault !== undefined || result.aborted) break;
    }
    return summariseEpisodes(results, stack, signal?.aborted ?? false);
  }
}

export function summariseEpisodes(
  results: EpisodeResult[],
  stack: ControlStack,
  aborted: boolean,
): RunSummary {
  const n = results.length;
  const mean = (f: (r: EpisodeResult) => number) =>
    n === 0 ? Number.NaN : results.reduce((s, r) => s + f(r), 0) / n;
  const interventions: Record<string, number> = {};
  const peak = new Array<number>(stack.model.dof).fill(0);
  for (const r of results) {
    for (const [kind, count] of Object.entries(r.interventions))
      interventions[kind] = (interventions[kind] ?? 0) + count;
    r.peakEffortFraction.forEach((p, j) => {
      peak[j] = Math.max(peak[j], p);
    });
  }
  const fault = results.find((r) => r.fault !== undefined)?.fault;
  return {
    episodes: n,
    successRate: mean((r) => (r.success ? 1 : 0)),
    meanReturn: mean((r) => r.return),
    meanFinalDistance: mean((r) => r.finalDistance),
    interventions,
    peakEffortFraction: peak,
    tick: stack.loop.timing.summary().compute,
    ...(fault !== undefined ? { fault } : {}),
    aborted,
  };
}

/** Runs episodes on an already-started stack (tests and benchmarks; `run` goes through ArmApp). */
export function runEpisodes(
  stack: ControlStack,
  policy: Policy,
  options: {
    episodes: number;
    seed: number;
    signal?: AbortSignal;
    onEpisode?: (r: EpisodeResult) => void;
    onTransition?: (t: Transition) => void;
  },
): Promise<RunSummary> {
  return new EpisodeSeries(stack, options.seed).run(policy, options.episodes, {
    signal: options.signal,
    onTransition: options.onTransition,
    emit: (e) => {
      if (e.type === "episode") options.onEpisode?.(e.result);
    },
  });
}
