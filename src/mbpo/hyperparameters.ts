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
