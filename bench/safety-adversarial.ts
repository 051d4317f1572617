/**
 * The adversarial safety benchmark: attackers that know the filter, against the twin through the
 * real control loop (test/safety/adversary.ts), on the nominal twin and on twins whose masses,
 * inertias and armatures are 30% off the URDF the filter believes (light, heavy, and mixed: each
 * link and joint drawn in ±30%). Every physics step (1 kHz) is checked.
 *
 * Prints, per model variant and attacker: episodes, ticks past a hard velocity limit, ticks past
 * (or touching) a hard position limit, the worst |q̇|/limit and position excess, faults latched,
 * ticks in which the dynamic limits acted (and of those, could only brake as hard as allowed), and
 * the filter's cost per tick (median and p99, µs; SafetyFilter.filter() alone). Then one JSON line.
 *
 *   npx tsc -p . && node dist/bench/safety-adversarial.js [--episodes 2000] [--ticks 100]
 *       [--variants nominal,light,heavy,mixed] [--set use_soft_limits=false] [--set torque_rate_limit=1e9]
 *
 * --episodes is per variant, spread evenly over the attackers; --set overrides a `safety.` setting
 * (dynamic_limits=false shows what the per-joint rules alone allow).
 */
import {
  ATTACKERS,
  type AttackerName,
  type EpisodeOutcome,
  loadArm,
  MODEL_VARIANTS,
  type ModelVariant,
  runAdversarialEpisode,
} from "../test/safety/adversary.js";

interface Row {
  variant: ModelVariant;
  attacker: AttackerName;
  episodes: number;
  velocityTicks: number;
  positionTicks: number;
  worstVelocityRatio: number;
  worstPositionExcess: number;
  faults: number;
  constrainedTicks: number;
  relaxedTicks: number;
  ticks: number;
  filterMedianUs: number;
  filterP99Us: number;
}

function parseArgs(argv: string[]) {
  let episodes = 2000;
  let ticks = 100;
  let variants: ModelVariant[] = [...MODEL_VARIANTS];
  const safety: Record<string, number | boolean> = {};
  for (let k = 0; k < argv.length; k++) {
    const flag = argv[k];
    const value = argv[k + 1];
    if (flag === "--episodes") episodes = Number(value);
    else if (flag === "--ticks") ticks = Number(value);
    else if (flag === "--variants") variants = value.split(",") as ModelVariant[];
    else if (flag === "--set") {
      const [key, raw] = value.split("=");
      safety[key] = raw === "true" ? true : raw === "false" ? false : Number(raw);
    } else throw new Error(`safety-adversarial: unknown flag ${flag}`);
    k++;
  }
  for (const v of variants) {
    if (!MODEL_VARIANTS.includes(v)) throw new Error(`safety-adversarial: unknown variant "${v}"`);
  }
  if (!(episodes >= ATTACKERS.length)) throw new Error(`--episodes must be ≥ ${ATTACKERS.length}`);
  return { episodes, ticks, variants, safety };
}

function quantile(sorted: Float64Array, q: number): number {
  return sorted.length === 0 ? 0 : sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
}

function runRow(
  variant: ModelVariant,
  attacker: AttackerName,
  episodes: number,
  options: ReturnType<typeof parseArgs>,
): Row {
  const arm = loadArm();
  const row: Row = {
    variant,
    attacker,
    episodes,
    velocityTicks: 0,
    positionTicks: 0,
    worstVelocityRatio: 0,
    worstPositionExcess: 0,
    faults: 0,
    constrainedTicks: 0,
    relaxedTicks: 0,
    ticks: 0,
    filterMedianUs: 0,
    filterP99Us: 0,
  };
  const times: number[] = [];
  for (let e = 0; e < episodes; e++) {
    const seed = 100_000 * (1 + MODEL_VARIANTS.indexOf(variant)) + 1_000 * ATTACKERS.indexOf(attacker) + e;
    const o: EpisodeOutcome = runAdversarialEpisode(arm, attacker, seed, {
      model: variant,
      ticks: options.ticks,
      safety: options.safety,
    });
    row.velocityTicks += o.velocityTicks;
    row.positionTicks += o.positionTicks;
    row.worstVelocityRatio = Math.max(row.worstVelocityRatio, o.worstVelocityRatio);
    row.worstPositionExcess = Math.max(row.worstPositionExcess, o.worstPositionExcess);
    if (o.fault !== undefined) row.faults++;
    row.constrainedTicks += o.constrainedTicks;
    row.relaxedTicks += o.relaxedTicks;
    row.ticks += options.ticks;
    // Skip each episode's first tick (the filter's first call after construction).
    for (let t = 1; t < o.filterMicros.length; t++) times.push(o.filterMicros[t]);
  }
  const sorted = Float64Array.from(times).sort();
  row.filterMedianUs = quantile(sorted, 0.5);
  row.filterP99Us = quantile(sorted, 0.99);
  return row;
}

function main(): void {
  const options = parseArgs(process.argv.slice(2));
  const perAttacker = Math.floor(options.episodes / ATTACKERS.length);
  console.log(
    `safety-adversarial: ${perAttacker * ATTACKERS.length} episodes per variant (${perAttacker} per attacker), ${options.ticks} ticks each at 50 Hz, physics checked at 1 kHz; safety overrides ${JSON.stringify(options.safety)}`,
  );
  console.log(
    "variant  attacker    episodes  vel-ticks  pos-ticks  worst|q̇|/lim  worst-pos(rad)  faults  constrained  relaxed  filter-median(µs)  p99(µs)",
  );
  const rows: Row[] = [];
  for (const variant of options.variants) {
    for (const attacker of ATTACKERS) {
      const r = runRow(variant, attacker, perAttacker, options);
      rows.push(r);
      console.log(
        [
          r.variant.padEnd(8),
          r.attacker.padEnd(10),
          String(r.episodes).padStart(9),
          String(r.velocityTicks).padStart(10),
          String(r.positionTicks).padStart(10),
          r.worstVelocityRatio.toFixed(3).padStart(13),
          r.worstPositionExcess.toExponential(1).padStart(15),
          String(r.faults).padStart(7),
          `${((100 * r.constrainedTicks) / r.ticks).toFixed(0)}%`.padStart(12),
          `${((100 * r.relaxedTicks) / r.ticks).toFixed(1)}%`.padStart(8),
          r.filterMedianUs.toFixed(1).padStart(18),
          r.filterP99Us.toFixed(1).padStart(8),
        ].join(" "),
      );
    }
  }
  const total = {
    episodes: rows.reduce((s, r) => s + r.episodes, 0),
    velocityTicks: rows.reduce((s, r) => s + r.velocityTicks, 0),
    positionTicks: rows.reduce((s, r) => s + r.positionTicks, 0),
    worstVelocityRatio: Math.max(...rows.map((r) => r.worstVelocityRatio)),
    faults: rows.reduce((s, r) => s + r.faults, 0),
  };
  console.log(
    `total: ${total.episodes} episodes, ${total.velocityTicks} ticks past a hard velocity limit, ${total.positionTicks} ticks past or touching a hard position limit, worst |q̇|/limit ${total.worstVelocityRatio.toFixed(3)}, ${total.faults} faults`,
  );
  console.log(JSON.stringify({ total, rows }));
}

main();
