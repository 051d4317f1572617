/** The safety filter: every command passes it, every tick. */
export {
  DEFAULT_SAFETY_CONFIG,
  resolveSafetyConfig,
  type SafetyConfig,
  SafetyConfigError,
} from "./config.js";
export { FAULT_REASONS, type Fault, type FaultReason } from "./fault.js";
export {
  INTERVENTION_KINDS,
  type InterventionCounts,
  type InterventionKind,
  SafetyFilter,
  type SafetyReport,
} from "./filter.js";
export { softEffortBounds, softVelocityBounds } from "./soft-limits.js";
