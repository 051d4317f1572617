/**
 * Every hyperparameter of the MBPO learner, in one place, with where each default comes from.
 * Sections: SAC (the policy learner) and the replay buffers here; the ensemble dynamics model and
 * the rollout schedule have their own sections.
 */

/**
 * Soft Actor-Critic defaults: Haarnoja et al. 2018 ("Soft Actor-Critic Algorithms and
 * Applications", Table 1), as used by MBPO (Janner et al. 2019) and CleanRL's sac_continuous_action.
 */
export const SAC_DEFAULTS = {
  /** Hidden layer widths of every network (both critics and the actor), ReLU between layers. */
  hiddenSizes: [256, 256] as readonly number[],
  /** Adam learning rate of the critics. */
  criticLearningRate: 3e-4,
  /** Adam learning rate of the actor. */
  actorLearningRate: 3e-4,
  /** Adam learning rate of log α (the entropy temperature). */
  alphaLearningRate: 3e-4,
  /** Transitions per gradient step. */
  batchSize: 256,
  /** Discount γ of the soft Bellman backup. */
  discount: 0.99,
  /** Polyak factor τ: target ← (1 − τ)·target + τ·online after every update. */
  polyakTau: 0.005,
  /** α at the start (softlearning and CleanRL start log α at 0, i.e. α = 1). */
  initialAlpha: 1,
  /** Learn α so that the policy's entropy tracks targetEntropy (false: α stays at initialAlpha). */
  autoTuneAlpha: true,
  /** Target entropy; null means the usual heuristic −|A| (minus the action dimension). */
  targetEntropy: null as number | null,
  /** The actor's log-std head is clamped to [logStdMin, logStdMax] (Spinning Up's bounds). */
  logStdMin: -20,
  logStdMax: 2,
};

export type SacHyperparameters = typeof SAC_DEFAULTS;

/** Replay buffer defaults (MBPO: real buffer of the whole run, model buffer of a few retrains). */
export const BUFFER_DEFAULTS = {
  /** Real transitions kept (far more than a run's real steps: nothing real is ever dropped). */
  realCapacity: 100_000,
  /**
   * Model transitions kept = rollouts per real step × rollout length × steps per retrain ×
   * retrains kept; this is the floor, the learner sizes it from those numbers.
   */
  modelCapacity: 400_000,
  /** Fraction of each SAC batch drawn from the real buffer; the rest comes from model rollouts. */
  realFraction: 0.05,
};

export type BufferHyperparameters = typeof BUFFER_DEFAULTS;

/**
 * Probabilistic ensemble dynamics model defaults: MBPO (Janner et al. 2019, jannerm/mbpo's
 * BNN and its per-environment configs) and facebookresearch/mbrl-lib (GaussianMLP, ModelTrainer).
 * The model maps normalised (q, q̇, τ) to a Gaussian over normalised Δ(q, q̇).
 */
export const ENSEMBLE_DEFAULTS = {
  /** Members trained side by side, each on its own bootstrap sample (MBPO: 7). */
  members: 7,
  /** Members used for rollouts: the ones with the lowest holdout MSE (MBPO: 5). */
  elites: 5,
  /** Hidden layer widths, SiLU (x·σ(x), "swish") after each (MBPO and mbrl-lib: 4 × 200). */
  hiddenSizes: [200, 200, 200, 200] as readonly number[],
  /** Adam learning rate (MBPO and mbrl-lib: 1e-3). */
  learningRate: 1e-3,
  /**
   * L2 weight decay per weight matrix, input layer first, output layer last (one per hidden
   * layer plus one): the loss gets Σ_k decay_k · ½‖W_k‖² over all members, biases excluded.
   * MBPO's values, rising with depth.
   */
  weightDecays: [2.5e-5, 5e-5, 7.5e-5, 7.5e-5, 1e-4] as readonly number[],
  /** Rows per member in one gradient step (MBPO and mbrl-lib: 256). */
  batchSize: 256,
  /** Fraction of the data held out for early stopping and elite choice (MBPO: 0.2)... */
  holdoutFraction: 0.2,
  /** ...capped at this many rows (MBPO's max_logging: 5000). */
  maxHoldout: 5000,
  /** Stop after this many epochs in which no member improved its holdout MSE... (5) */
  patience: 5,
  /** ...by more than this fraction of its best so far (1%). */
  improvementThreshold: 0.01,
  /** Hard cap on epochs per train() call (MBPO has none; early stopping ends training first). */
  maxEpochs: 200,
  /** Initial upper / lower soft bounds of the predicted log-variance, learned (MBPO: 0.5, −10). */
  initialMaxLogvar: 0.5,
  initialMinLogvar: -10,
  /** Weight of the bound penalty 0.01·(Σ max_logvar − Σ min_logvar), which keeps the bounds tight. */
  logvarBoundPenalty: 0.01,
  /** Floor of the input and target normalisers' std (in the feature's own units). */
  normalizerMinStd: 1e-6,
  /** Rows per forward chunk in predict/evaluate: bounds the memory of an [E, rows, 200] activation. */
  predictChunkRows: 2048,
};

export type EnsembleHyperparameters = typeof ENSEMBLE_DEFAULTS;

/**
 * MBPO's own schedule (Janner et al. 2019, "When to Trust Your Model"; jannerm/mbpo's
 * examples/config and mbrl-lib's algorithm/mbpo.yaml): how often the model is retrained, how many
 * branched rollouts start per real step and how long they are, how long their transitions are
 * kept, and how many SAC updates each real step buys. The model-free baseline ("sac") uses
 * sacUpdatesPerRealStep and initialExplorationSteps from here too, so the two differ only in the
 * model.
 */
export const MBPO_DEFAULTS = {
  /**
   * Branched rollouts started per real step (MBPO: rollout_batch_size 100,000 every 250 steps,
   * i.e. 400 per step; mbrl-lib: effective_model_rollouts_per_step 400). MBPO starts them all at
   * each retrain; we start 400 × (new real steps) in every update phase, from the policy of that
   * moment: the same number per real step, from a fresher policy, and no long pause every 250 steps.
   */
  rolloutsPerRealStep: 400,
  /** The model is retrained on all real data once this many real steps have come since the last
   *  training (MBPO: model_train_freq 250; mbrl-lib: freq_train_model 250). */
  modelRetrainEvery: 250,
  /**
   * Rollout length k as a function of the real step t, MBPO's linear schedule
   * [startStep, endStep, minLength, maxLength]: k = minLength up to startStep, rising linearly to
   * maxLength at endStep, truncated to an integer (MBPO's _set_rollout_length, which counts in
   * epochs of 1000 steps; these are real steps). MBPO's schedules are per environment (Hopper
   * [20, 100, 1, 15] epochs, HalfCheetah and Walker2d k = 1 throughout); reach is 100-step
   * episodes at 50 Hz with smooth dynamics, so: k from 1 after 1,000 steps to 5 at 4,000.
   */
  rolloutSchedule: [1000, 4000, 1, 5] as readonly [number, number, number, number],
  /**
   * Model transitions are kept for this many retrains: the model buffer holds
   * rolloutsPerRealStep × modelRetrainEvery × modelRetainRetrains × k transitions (MBPO:
   * model_retain_epochs 1, an epoch of 1000 steps being 4 retrains at 250 steps each), resized
   * (newest kept) when k changes, as MBPO's _reallocate_model_pool does.
   */
  modelRetainRetrains: 4,
  /** G, SAC gradient updates per real step (MBPO: n_train_repeat 20; the paper's range 20–40). */
  sacUpdatesPerRealStep: 20,
  /**
   * Real steps before any learning: the host runs the untrained, stochastic actor
   * (a = tanh(N(μ ≈ 0, σ ≈ 1))), which explores at random (MBPO: 5,000 steps, i.e. five
   * 1000-step MuJoCo episodes; here five 100-step reach episodes). No model training, rollouts
   * or SAC updates happen before this; no SAC updates are owed for these steps.
   */
  initialExplorationSteps: 500,
  /**
   * The uncertainty filter: a branch stops, and its last predicted transition is dropped, where
   * the elites' disagreement about it (ProbabilisticEnsemble.disagreement: the largest, over the
   * outputs, std of the elites' means in units of that output's std over the training data)
   * passes this. Not in the MBPO paper (which relies on short k alone); in the spirit of MOPO's
   * and M2AC's uncertainty penalties. In-distribution predictions of a trained reach model sit
   * well below it, so it only cuts branches that wander where the model has not been.
   */
  disagreementThreshold: 0.5,
  /**
   * Fraction of branched rollouts whose start takes a hindsight goal: the goal a later step of the
   * same real episode achieved (HER's "future" strategy, Andrychowicz et al. 2017; with model
   * rollouts as in MHER, Yang et al. 2021). Not in MBPO, whose tasks have no goals. On reach the
   * policy otherwise settles a few centimetres off its targets: its own data almost never holds
   * the arm on one, so the critic never learns what settling there is worth. 0 switches it off.
   */
  hindsightFraction: 0.5,
  /**
   * Relabel only with achieved goals that lie where the task sets its goals (Task.goalInRange);
   * a start whose hindsight goal lies outside keeps its episode's goal. Not in HER, whose Fetch
   * arm stays near its goals. A redundant arm (the 7-joint Panda) whose early policy swings into
   * its joint limits ends many episodes pinned there, far from every target; relabelled "future"
   * goals there are met by staying pinned, and the critic learns that the corners pay.
   */
  hindsightInRange: true,
  /**
   * SAC's networks see observations standardised per feature, (obs − mean) / std, with the
   * statistics of the real data at the first update after exploration, then frozen (inputs that keep their
   * meaning; the actor handed to the control loop has the standardisation folded into its first
   * layer). Not in MBPO or the SAC paper, whose MuJoCo observations are all of order one; reach's
   * are metres, and 2 cm decides success. Both algorithms use it alike.
   */
  normalizeObservations: true,
  /** Floor of that std (in the feature's own units): a feature the exploration hardly moved is not blown up. */
  observationMinStd: 0.01,
  /**
   * Floor each feature's std at the spread the task says it has over its whole range
   * (Task.observationSpread; reach: a joint position uniform over its soft range). The first
   * exploration moves a big arm's joints over a tenth of their range: on the 7-joint Panda a joint
   * at its soft limit was then an input of ten standard deviations, the critic extrapolated there,
   * and the policy swung the arm into its limits (bench/learning --urdf urdf/panda.urdf.xacro).
   */
  observationSpreadFloor: true,
  /**
   * What the ensemble learns on top of: "none", the whole Δ(q, q̇) (MBPO); "urdf", the residual over
   * the URDF's rigid-body prediction of the control period (src/mbpo/model-prior.ts), so that the
   * learned part is zero where the URDF is right. Not in MBPO, whose tasks come without a model;
   * in the spirit of residual physics (Zeng et al. 2020, "TossingBot"; Ajay et al. 2018).
   */
  modelPrior: "none" as "none" | "urdf",
  /** Integration rate (Hz) of the URDF prior over a control period: 1 kHz, the twin's physics rate. */
  priorRateHz: 1000,
  /**
   * Give the model the effort sent the tick before as a fourth input block: (q, q̇, τ_prev, τ). On
   * an arm whose state arrives late (USB, bus, ROS: part of a control period) the previous command
   * still acts during the logged interval, and (q, q̇, τ) alone does not determine Δ. Not in MBPO
   * (MuJoCo has no latency); real-robot model learning commonly feeds the action history. Where the
   * tick before is not in the buffer (an episode's first step), τ stands in for it.
   */
  modelPreviousEffort: false,
};

export type MbpoHyperparameters = typeof MBPO_DEFAULTS;

/** Every section, by the name LearnerSpec.hyperparameters uses for its overrides. */
export const HYPERPARAMETER_DEFAULTS = {
  sac: SAC_DEFAULTS,
  buffer: BUFFER_DEFAULTS,
  ensemble: ENSEMBLE_DEFAULTS,
  mbpo: MBPO_DEFAULTS,
};

export type HyperparameterSection = keyof typeof HYPERPARAMETER_DEFAULTS;

/** All sections with every value filled in. */
export interface Hyperparameters {
  sac: SacHyperparameters;
  buffer: BufferHyperparameters;
  ensemble: EnsembleHyperparameters;
  mbpo: MbpoHyperparameters;
}

/** Overrides by section and key, as LearnerSpec.hyperparameters carries them. */
export type HyperparameterOverrides = Record<string, Record<string, unknown>>;

/**
 * Named override sets. The defaults above are the papers'; a profile is a documented departure
 * for a stated reason, chosen by name (`train --profile NAME`, bench/learning.ts --profile NAME).
 * A new run without one gets DEFAULT_PROFILE; a run directory records the profile it used.
 */
/**
 * "quick": MBPO and SAC on `reach` within the time two shared CPU cores give a benchmark (the
 * wasm backend runs one 256×256 SAC update in tens of milliseconds and a 7 × 4×200 ensemble
 * over 8,000 rows in about a second there). Smaller networks, fewer rollouts and fewer SAC
 * updates per real step, and the URDF prior under the model (below).
 */
const QUICK_PROFILE: HyperparameterOverrides = {
  sac: {
    hiddenSizes: [64, 64],
    batchSize: 128,
    // Reach's rewards are of order 0.1 a step; at α = 1 the entropy bonus (about 4 nats a step
    // at the start) outweighs them for the thousands of updates α takes to fall. With fewer
    // updates per real step that is most of a short run, so α starts lower.
    initialAlpha: 0.05,
  },
  ensemble: { hiddenSizes: [64, 64, 64], weightDecays: [2.5e-5, 5e-5, 7.5e-5, 1e-4], maxEpochs: 40 },
  mbpo: {
    rolloutsPerRealStep: 100,
    sacUpdatesPerRealStep: 10,
    rolloutSchedule: [500, 2500, 1, 3],
    // The ensemble learns the residual over the URDF's rigid-body prediction. Not in MBPO, whose
    // tasks come without a model; here every arm comes with its URDF. Without it a 7-joint arm's
    // coupled dynamics were too much for these small networks within 5,000 real steps: on the
    // Panda twin the held-out error stayed at 0.06-0.14 and no seed of three reached 90% (55%,
    // 85%, 80% at 5,000); with it 0.0001 from the first fit and 90% at 5,000 / 4,000 / 3,500,
    // while the 4-, 5- and 6-joint arms reached it at 1,000-2,000 either way (README, "Your own
    // arm"; on our 4-joint arm's exact twin it costs a little: 8,000 against 7,000 real steps
    // over six seeds). On the realistic reality gap with the latency compensated, 200 exploration
    // steps and G = 20, it cut the mean steps to 90% over six seeds by 54% (per seed 40-67%); with
    // these defaults by 12-47% (README, "A real arm is not its URDF"). `--hp
    // mbpo.modelPrior=none` learns the whole Δ, as MBPO does.
    modelPrior: "urdf",
  },
};

export const HYPERPARAMETER_PROFILES: Record<string, HyperparameterOverrides> = {
  /**
   * "paper": the defaults above unchanged (SAC 256×256, G = 20, 400 rollouts per real step, α from
   * 1). About 1 s per real step on two CPU cores with the wasm backend, and on reach it learns
   * slower than "quick" there (issue 16: 0% / 30% / 20% evaluation success at 1,000 / 1,500 /
   * 2,000 real steps, where quick had 60% / 70% / 100%): α = 1 outweighs reach's rewards for the
   * thousands of updates it takes to fall. For a GPU backend, and for comparisons with the papers.
   */
  paper: {},
  quick: QUICK_PROFILE,
  /**
   * "eager": quick, but learning starts after 200 real steps instead of 500, with 20 SAC updates per
   * real step instead of 10. With the URDF prior the model is right before it has seen data, so the
   * policy can start early and exploit the model harder (without the prior, 20 updates per step
   * did not help). On the 4-joint arm's exact twin 90% at 500 / 500 / 500 real steps on seeds 1-3
   * (quick: 1,000 / 1,000 / 1,500); on its realistic twin with `identify`'s URDF and latency 600 /
   * 400 / 400 (quick: 900 / 800 / 700; README, "A real arm is not its URDF"). Not for bigger arms
   * (exact twins, seeds 1-3): SO-100 1,000 / 2,500 / 3,000 (quick: 2,000 / 1,500 / 1,500), UR5e
   * 1,000 / 1,500 / 1,500 (quick: 1,500 / 2,000 / 1,000), and the 7-joint Panda not reached /
   * 4,500 / not reached (20%, 45% at 5,000; quick: 5,000 / 4,000 / 3,500). Twice the SAC work per
   * real step.
   */
  eager: {
    ...QUICK_PROFILE,
    mbpo: { ...QUICK_PROFILE.mbpo, initialExplorationSteps: 200, sacUpdatesPerRealStep: 20 },
  },
};

/**
 * The profile a new run gets when none is named: the one that learns best on the machines this
 * node runs on (a robot's CPU; see the profiles' notes). A run directory written before profiles
 * had a default stored none, and resolves as before: the papers' defaults.
 */
export const DEFAULT_PROFILE = "quick";

/**
 * The defaults with a profile's and then the given overrides applied. Unknown sections or keys,
 * and values of the wrong kind (number for number, boolean for boolean, array for array, null
 * where the default may be null), are errors naming the key; ranges are checked by the classes
 * that take the values.
 */
export function resolveHyperparameters(
  overrides: HyperparameterOverrides = {},
  profile?: string,
): Hyperparameters {
  const resolved = structuredClone(HYPERPARAMETER_DEFAULTS) as unknown as Record<
    string,
    Record<string, unknown>
  >;
  const layers: [string, HyperparameterOverrides][] = [];
  if (profile !== undefined) {
    if (!Object.hasOwn(HYPERPARAMETER_PROFILES, profile)) {
      throw new Error(
        `hyperparameters: unknown profile "${profile}" (known: ${Object.keys(HYPERPARAMETER_PROFILES).join(", ")})`,
      );
    }
    layers.push([`profile ${profile}`, HYPERPARAMETER_PROFILES[profile]]);
  }
  layers.push(["hyperparameters", overrides]);
  for (const [source, layer] of layers) {
    for (const [section, values] of Object.entries(layer ?? {})) {
      const target = resolved[section];
      if (target === undefined) {
        throw new Error(
          `${source}: unknown section "${section}" (known: ${Object.keys(HYPERPARAMETER_DEFAULTS).join(", ")})`,
        );
      }
      for (const [key, value] of Object.entries(values ?? {})) {
        if (!Object.hasOwn(target, key)) {
          throw new Error(
            `${source}: unknown key "${section}.${key}" (known: ${Object.keys(target).join(", ")})`,
          );
        }
        // Judged against the default, so that a key whose default is null takes null or a number.
        const original = (HYPERPARAMETER_DEFAULTS as unknown as Record<string, Record<string, unknown>>)[
          section
        ][key];
        const sameKind =
          (original === null && (value === null || typeof value === "number")) ||
          (Array.isArray(original) && Array.isArray(value) && value.every((v) => typeof v === "number")) ||
          (original !== null && !Array.isArray(original) && typeof original === typeof value);
        if (!sameKind) {
          throw new Error(
            `${source}: "${section}.${key}" must be like ${JSON.stringify(original)}, got ${JSON.stringify(value)}`,
          );
        }
        target[key] = Array.isArray(value) ? [...value] : value;
      }
    }
  }
  return resolved as unknown as Hyperparameters;
}

/** Rollout length k at real step t, MBPO's linear schedule (see MBPO_DEFAULTS.rolloutSchedule). */
export function rolloutLength(schedule: readonly number[], realStep: number): number {
  const [startStep, endStep, minLength, maxLength] = schedule;
  if (realStep <= startStep) return minLength;
  const progress = endStep > startStep ? Math.min((realStep - startStep) / (endStep - startStep), 1) : 1;
  return Math.trunc(minLength + progress * (maxLength - minLength));
}
