/**
 * Property tests of the safety filter with fast-check: random joint sets and configs, and
 * sequences of hostile ticks (NaN, ±Infinity, −0, huge values, wrong lengths, undefined; typed and
 * plain arrays; stale, future, missing, malformed, non-finite and out-of-range states; bad gravity
 * and bad dt; external latches and reset attempts at random). After every tick the output must be
 * finite, within ±effort·effortScale and never push further past a hard position or velocity
 * limit; a fault must stay latched until a reset succeeds, and a reset must fail while the state
 * is bad; the safe stop must be zero without a trustworthy state; when nothing is wrong the rate
 * limit must hold; and the soft limits must match the law written out again here.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import fc from "fast-check";
import type { JointState } from "../../src/drivers/driver.js";
import type { JointSpec } from "../../src/robot/types.js";
import type { SafetyConfig } from "../../src/safety/config.js";
import { SafetyFilter } from "../../src/safety/filter.js";

// fast-check arbitraries

/** Every IEEE-754 double, NaN, ±Infinity and −0 included, with the awkward ones made common. */
const hostileNumber: fc.Arbitrary<number> = fc.oneof(
  fc.double(),
  fc.constantFrom(Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY, -0, 1e308, -1e308, 5e-324),
  fc.double({ min: -10, max: 10, noNaN: true }),
);

const jointSpec: fc.Arbitrary<JointSpec> = fc
  .record({
    type: fc.constantFrom("revolute", "prismatic", "continuous"),
    lower: fc.double({ min: -3, max: -0.2, noNaN: true }),
    upper: fc.double({ min: 0.2, max: 3, noNaN: true }),
    effort: fc.oneof(fc.double({ min: 0.05, max: 50, noNaN: true }), fc.constant(Number.POSITIVE_INFINITY)),
    velocity: fc.oneof(fc.double({ min: 0.1, max: 20, noNaN: true }), fc.constant(Number.POSITIVE_INFINITY)),
    soft: fc.option(
      fc.record({
        inset: fc.double({ min: 0, max: 0.4, noNaN: true }),
        kPosition: fc.double({ min: 0.5, max: 50, noNaN: true }),
        kVelocity: fc.double({ min: 0.05, max: 5, noNaN: true }),
      }),
      { nil: undefined },
    ),
  })
  .map(({ type, lower, upper, effort, velocity, soft }): JointSpec => {
    const continuous = type === "continuous";
    const spec: JointSpec = {
      name: "j",
      type: type as JointSpec["type"],
      lower: continuous ? Number.NEGATIVE_INFINITY : lower,
      upper: continuous ? Number.POSITIVE_INFINITY : upper,
      // Infinite limits only where the URDF parser gives them: a continuous joint without <limit>.
      effort: continuous ? effort : Number.isFinite(effort) ? effort : 4.1,
      velocity: continuous ? velocity : Number.isFinite(velocity) ? velocity : 4.8,
      damping: 0,
      friction: 0,
      armature: 0,
    };
    if (soft !== undefined) {
      const span = continuous ? 0 : (upper - lower) * soft.inset * 0.5;
      spec.safety = {
        softLower: continuous ? Number.NEGATIVE_INFINITY : lower + span,
        softUpper: continuous ? Number.POSITIVE_INFINITY : upper - span,
        kPosition: soft.kPosition,
        kVelocity: soft.kVelocity,
      };
    }
    return spec;
  });

const jointSet: fc.Arbitrary<JointSpec[]> = fc
  .array(jointSpec, { minLength: 1, maxLength: 6 })
  .map((joints) => joints.map((j, i) => ({ ...j, name: `j${i}` })));

const safetyConfig: fc.Arbitrary<SafetyConfig> = fc.record({
  effortScale: fc.double({ min: 0.01, max: 1, noNaN: true }),
  torqueRateLimit: fc.oneof(
    fc.double({ min: 0.5, max: 1000, noNaN: true }),
    fc.constant(Number.POSITIVE_INFINITY),
  ),
  staleTimeout: fc.double({ min: 0.005, max: 1, noNaN: true }),
  positionMargin: fc.double({ min: 0, max: 0.3, noNaN: true }),
  velocityMargin: fc.double({ min: 0, max: 1, noNaN: true }),
  staleGrace: fc.double({ min: 0, max: 1, noNaN: true }),
  dynamicLimits: fc.boolean(),
  velocityHeadroom: fc.double({ min: 0, max: 0.5, noNaN: true }),
  approachRate: fc.double({ min: 0.05, max: 1, noNaN: true }),
  modelError: fc.double({ min: 0, max: 0.6, noNaN: true }),
  positionHeadroom: fc.double({ min: 0, max: 0.1, noNaN: true }),
  brakeFraction: fc.double({ min: 0.05, max: 1, noNaN: true }),
  safeStopBandwidth: fc.double({ min: 1, max: 30, noNaN: true }),
  safeStopDamping: fc.double({ min: 0, max: 2, noNaN: true }),
  useSoftLimits: fc.boolean(),
});

/** A value for one joint coordinate: near the limits, well inside, far outside, or hostile. */
function coordinate(lower: number, upper: number): fc.Arbitrary<number> {
  const lo = Number.isFinite(lower) ? lower : -4;
  const hi = Number.isFinite(upper) ? upper : 4;
  return fc.oneof(
    { weight: 6, arbitrary: fc.double({ min: lo - 0.1, max: hi + 0.1, noNaN: true }) },
    { weight: 2, arbitrary: fc.constantFrom(lo, hi) },
    { weight: 1, arbitrary: hostileNumber },
  );
}

/** One tick's inputs, for a given joint set. */
interface TickInput {
  command: ArrayLike<number> | undefined;
  state: JointState | undefined;
  /** Age of the state (now − stamp). */
  age: number;
  gravity: Float64Array | undefined;
  dt: number;
  /** Call resetFault() before this tick. */
  reset: boolean;
  /** Latch an external fault before this tick. */
  latch: boolean;
}

function tickInput(joints: readonly JointSpec[], staleTimeout: number): fc.Arbitrary<TickInput> {
  const n = joints.length;
  const positions = fc.tuple(...joints.map((j) => coordinate(j.lower, j.upper)));
  const velocities = fc.tuple(
    ...joints.map((j) => {
      const v = Number.isFinite(j.velocity) ? j.velocity : 10;
      return coordinate(-v * 1.3, v * 1.3);
    }),
  );
  const anyLength = fc.integer({ min: 0, max: n + 2 });
  const plainCommand = fc.oneof(
    {
      weight: 8,
      arbitrary: fc.array(fc.double({ min: -60, max: 60, noNaN: true }), { minLength: n, maxLength: n }),
    },
    { weight: 2, arbitrary: fc.array(hostileNumber, { minLength: n, maxLength: n }) },
    {
      weight: 1,
      arbitrary: anyLength.chain((len) => fc.array(hostileNumber, { minLength: len, maxLength: len })),
    },
  );
  const command: fc.Arbitrary<ArrayLike<number> | undefined> = fc.oneof(
    { weight: 6, arbitrary: plainCommand.map((a) => Float64Array.from(a)) },
    { weight: 2, arbitrary: plainCommand },
    { weight: 1, arbitrary: plainCommand.map((a) => Float32Array.from(a)) },
    { weight: 1, arbitrary: fc.constant(undefined) },
  );
  const wrongLengthArray = anyLength.map((len) => new Float64Array(len));
  const state: fc.Arbitrary<JointState | undefined> = fc.oneof(
    { weight: 12, arbitrary: fc.tuple(positions, velocities).map(([p, v]) => stateOf(p, v)) },
    { weight: 1, arbitrary: fc.constant(undefined) },
    {
      weight: 1,
      arbitrary: fc.tuple(wrongLengthArray, velocities).map(([p, v]) => ({
        stamp: 0,
        position: p,
        velocity: Float64Array.from(v),
        effort: new Float64Array(n),
      })),
    },
  );
  const age = fc.oneof(
    { weight: 10, arbitrary: fc.double({ min: 0, max: staleTimeout * 0.99, noNaN: true }) },
    { weight: 1, arbitrary: fc.double({ min: -3 * staleTimeout, max: 3 * staleTimeout, noNaN: true }) },
    { weight: 1, arbitrary: hostileNumber },
  );
  const gravity: fc.Arbitrary<Float64Array | undefined> = fc.oneof(
    {
      weight: 6,
      arbitrary: fc
        .array(fc.double({ min: -3, max: 3, noNaN: true }), { minLength: n, maxLength: n })
        .map((a) => Float64Array.from(a)),
    },
    { weight: 2, arbitrary: fc.constant(undefined) },
    {
      weight: 1,
      arbitrary: anyLength.chain((len) =>
        fc.array(hostileNumber, { minLength: len, maxLength: len }).map((a) => Float64Array.from(a)),
      ),
    },
  );
  const dt = fc.oneof(
    { weight: 10, arbitrary: fc.constantFrom(0.02, 0.01, 0.001) },
    { weight: 1, arbitrary: hostileNumber },
  );
  return fc.record({
    command,
    state,
    age,
    gravity,
    dt,
    reset: fc.boolean(),
    latch: fc.oneof(
      { weight: 15, arbitrary: fc.constant(false) },
      { weight: 1, arbitrary: fc.constant(true) },
    ),
  });
}

function stateOf(p: number[], v: number[]): JointState {
  return {
    stamp: 0,
    position: Float64Array.from(p),
    velocity: Float64Array.from(v),
    effort: new Float64Array(p.length),
  };
}

// ---------------------------------------------------------------------------------------------
// The watchdog's rules, restated independently of the filter.

/** "stale": well-formed but older than staleTimeout (or in the future): held, latched after the grace. */
type Verdict = "ok" | "out_of_range" | "stale" | "untrusted";

function verdictOf(
  joints: readonly JointSpec[],
  c: SafetyConfig,
  s: JointState | undefined,
  now: number,
): Verdict {
  const n = joints.length;
  if (s === undefined) return "untrusted";
  if (s.position.length !== n || s.velocity.length !== n) return "untrusted";
  const age = now - s.stamp;
  if (Number.isNaN(age)) return "untrusted";
  if (!(Math.abs(age) <= c.staleTimeout)) return "stale";
  for (let i = 0; i < n; i++) {
    if (!Number.isFinite(s.position[i]) || !Number.isFinite(s.velocity[i])) return "untrusted";
  }
  for (let i = 0; i < n; i++) {
    const j = joints[i];
    const q = s.position[i];
    if (j.type !== "continuous" && (q > j.upper + c.positionMargin || q < j.lower - c.positionMargin)) {
      return "out_of_range";
    }
    if (Math.abs(s.velocity[i]) > j.velocity * (1 + c.velocityMargin)) return "out_of_range";
  }
  return "ok";
}

function usable(g: Float64Array | undefined, n: number): Float64Array | undefined {
  if (g === undefined || g.length !== n) return undefined;
  for (let i = 0; i < n; i++) if (!Number.isFinite(g[i])) return undefined;
  return g;
}

/** Strictly inside the hard position and velocity limits, where the hard rules do not act. */
function strictlyInside(j: JointSpec, q: number, v: number): boolean {
  const positionInside = j.type === "continuous" || (q > j.lower && q < j.upper);
  return positionInside && v > -j.velocity && v < j.velocity;
}

const scenario = jointSet.chain((joints) =>
  safetyConfig.chain((config) =>
    fc.record({
      joints: fc.constant(joints),
      config: fc.constant(config),
      ticks: fc.array(tickInput(joints, config.staleTimeout), { minLength: 1, maxLength: 25 }),
    }),
  ),
);

test("property: every tick's output is finite, within limits, and never pushes past a hard limit", () => {
  fc.assert(
    fc.property(scenario, ({ joints, config, ticks }) => {
      const n = joints.length;
      const filter = new SafetyFilter(joints, config);
      const out = new Float64Array(n);
      const previous = new Float64Array(n);
      let lastVerdict: Verdict | undefined;
      let fromHold = true;
      let now = 10;
      // What the filter holds without a trusted state: the gravity of the last trusted tick.
      let heldGravity: Float64Array = new Float64Array(n);
      let staleSince = Number.NaN;
      for (const input of ticks) {
        now += 0.02;
        const faultBefore = filter.fault;
        if (input.latch) filter.latch("estop", "property test");
        if (input.reset) {
          const hadFault = filter.fault !== undefined;
          const ok = filter.resetFault();
          if (!hadFault) assert.equal(ok, true, "reset with nothing latched");
          else if (lastVerdict !== "ok") {
            assert.equal(ok, false, `reset must be refused after a ${lastVerdict} state`);
            assert.notEqual(filter.fault, undefined);
          } else {
            assert.equal(ok, true, "reset on a good state");
            fromHold = true;
          }
        }
        const latchedBefore = filter.fault;
        if (faultBefore !== undefined && !input.reset) {
          assert.equal(latchedBefore, faultBefore, "a fault stays latched (and unchanged) without a reset");
        }
        const state = input.state === undefined ? undefined : { ...input.state, stamp: now - input.age };
        const report = filter.filter(input.command, state, now, input.gravity, input.dt, out);
        const verdict = verdictOf(joints, config, state, now);
        lastVerdict = verdict;
        if (verdict === "stale" && Number.isNaN(staleSince)) staleSince = now;
        if (verdict === "ok" || verdict === "out_of_range") staleSince = Number.NaN;

        // Latching.
        if (latchedBefore !== undefined) assert.equal(report.fault, latchedBefore, "latched fault kept");
        if (verdict === "stale") {
          const beyondGrace = now - staleSince >= config.staleGrace;
          if (beyondGrace) assert.equal(report.faulted, true, "a state stale beyond the grace latches");
          else if (latchedBefore === undefined)
            assert.equal(report.faulted, false, "no latch within the grace");
        } else if (verdict !== "ok") {
          assert.equal(report.faulted, true, `a ${verdict} state latches`);
        }
        assert.equal(report.faulted, filter.fault !== undefined);

        for (let i = 0; i < n; i++) {
          const j = joints[i];
          const x = out[i];
          assert.ok(Number.isFinite(x), `out[${i}] = ${x} is not finite`);
          const limit = j.effort * config.effortScale;
          assert.ok(Math.abs(x) <= limit, `|out[${i}]| = ${Math.abs(x)} > ${limit}`);
          if (verdict === "untrusted" || verdict === "stale") {
            const expected = Math.min(Math.max(heldGravity[i], -limit), limit);
            assert.ok(
              Math.abs(x - expected) <= 1e-12 * (1 + Math.abs(expected)),
              `without a trustworthy state: the last trusted gravity ${expected}, got ${x}`,
            );
            continue;
          }
          const s = state as JointState;
          const q = s.position[i];
          const v = s.velocity[i];
          if (j.type !== "continuous") {
            if (q >= j.upper) assert.ok(x <= 0, `joint ${i} at/past upper limit gets ${x}`);
            if (q <= j.lower) assert.ok(x >= 0, `joint ${i} at/past lower limit gets ${x}`);
          }
          if (v >= j.velocity) assert.ok(x <= 0, `joint ${i} at/over +velocity limit gets ${x}`);
          if (v <= -j.velocity) assert.ok(x >= 0, `joint ${i} at/over −velocity limit gets ${x}`);

          const g = usable(input.gravity, n);
          if (report.faulted && strictlyInside(j, q, v)) {
            // The safe stop on a fresh state: damping plus gravity, clamped.
            const raw = -config.safeStopDamping * v + (g !== undefined ? g[i] : 0);
            const expected = Math.min(Math.max(raw, -limit), limit);
            assert.ok(
              Math.abs(x - expected) <= 1e-12 * (1 + Math.abs(expected)),
              `safe stop of joint ${i}: ${x}, expected ${expected}`,
            );
          }
          if (!report.faulted && strictlyInside(j, q, v) && input.dt > 0 && Number.isFinite(input.dt)) {
            const reference = fromHold ? (g !== undefined ? g[i] : 0) : previous[i];
            if (Math.abs(reference) <= limit) {
              const step = (config.torqueRateLimit as number) * input.dt;
              const tolerance = 1e-12 * (1 + Math.abs(reference) + Math.abs(step));
              assert.ok(
                Math.abs(x - reference) <= step + tolerance,
                `rate limit on joint ${i}: |${x} − ${reference}| > ${step}`,
              );
            }
          }
        }
        if (verdict === "ok" || verdict === "out_of_range") {
          heldGravity = usable(input.gravity, n) ?? new Float64Array(n);
        }
        previous.set(out);
        fromHold = false;
      }
    }),
    { numRuns: 300 },
  );
});

test("property: with the state inside all limits and no rate limit, the output is ros2_control's soft-limit law", () => {
  const inside = jointSet.chain((joints) =>
    fc.record({
      joints: fc.constant(joints),
      config: safetyConfig.map((c) => ({ ...c, torqueRateLimit: Number.POSITIVE_INFINITY })),
      position: fc.tuple(
        ...joints.map((j) =>
          j.type === "continuous"
            ? fc.double({ min: -100, max: 100, noNaN: true })
            : fc.double({ min: j.lower, max: j.upper, noNaN: true, minExcluded: true, maxExcluded: true }),
        ),
      ),
      velocity: fc.tuple(
        ...joints.map((j) => {
          const v = Number.isFinite(j.velocity) ? j.velocity : 50;
          return fc.double({ min: -v, max: v, noNaN: true, minExcluded: true, maxExcluded: true });
        }),
      ),
      command: fc.array(fc.double({ min: -80, max: 80, noNaN: true }), {
        minLength: joints.length,
        maxLength: joints.length,
      }),
      gravity: fc.option(
        fc.array(fc.double({ min: -5, max: 5, noNaN: true }), {
          minLength: joints.length,
          maxLength: joints.length,
        }),
        { nil: undefined },
      ),
    }),
  );
  fc.assert(
    fc.property(inside, ({ joints, config, position, velocity, command, gravity }) => {
      const n = joints.length;
      const filter = new SafetyFilter(joints, config);
      const out = new Float64Array(n);
      const g = gravity === undefined ? undefined : Float64Array.from(gravity);
      const state: JointState = {
        stamp: 1,
        position: Float64Array.from(position),
        velocity: Float64Array.from(velocity),
        effort: new Float64Array(n),
      };
      const report = filter.filter(command, state, 1, g, 0.02, out);
      assert.equal(report.faulted, false);
      for (let i = 0; i < n; i++) {
        const j = joints[i];
        const e = j.effort * config.effortScale;
        let expected = Math.min(Math.max(command[i], -e), e);
        const soft = j.safety;
        if (config.useSoftLimits && soft !== undefined) {
          const vMax = j.velocity;
          const limited = j.type !== "continuous";
          const vLo = limited
            ? Math.min(Math.max(-soft.kPosition * (position[i] - soft.softLower), -vMax), vMax)
            : -vMax;
          const vHi = limited
            ? Math.min(Math.max(-soft.kPosition * (position[i] - soft.softUpper), -vMax), vMax)
            : vMax;
          const gi = g === undefined ? 0 : g[i];
          const eLo = Math.min(Math.max(-soft.kVelocity * (velocity[i] - vLo) + gi, -e), e);
          const eHi = Math.min(Math.max(-soft.kVelocity * (velocity[i] - vHi) + gi, -e), e);
          assert.ok(eLo <= eHi, "bounds in order");
          expected = Math.min(Math.max(expected, eLo), eHi);
        }
        assert.equal(out[i], expected, `joint ${i}`);
      }
    }),
    { numRuns: 500 },
  );
});
