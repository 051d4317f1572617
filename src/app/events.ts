/**
 * What the application core reports as it works, for any front end to show: the CLI prints lines
 * or JSON, the ROS node publishes diagnostics and a progress topic. One typed event per thing that
 * happened; the core never formats for a particular front end.
 */
import type { EpisodeResult } from "../control/episode.js";
import type { BackendSelection } from "../mbpo/backend.js";
import type { MetricsRow } from "../train/run-dir.js";

/** What an episode was for: a fixed policy's run, learning, evaluating, or learning paused. */
export type EpisodeKind = "run" | "train" | "eval" | "paused";

export type AppEvent =
  | { type: "episode"; kind: EpisodeKind; result: EpisodeResult }
  /** A learning run is ready: its learner started (or loaded), before its first episode. */
  | {
      type: "learn-start";
      realSteps: number;
      stepsTarget: number;
      backend: BackendSelection;
      resumed: boolean;
    }
  /** One training episode's metrics row, written to metrics.csv (evaluation included when due). */
  | { type: "row"; row: MetricsRow; realSteps: number; stepsTarget: number }
  | { type: "checkpoint"; dir: string; episodes: number; realSteps: number }
  /** The learner's worker thread is busy with a request (training) or waiting (idle). */
  | { type: "learner"; state: "training" | "idle" }
  | { type: "fault"; fault: string };

export type EventSink = (event: AppEvent) => void;

export const ignoreEvents: EventSink = () => {};
