/**
 * The bus (transactions, timeouts, bounded retries, status errors, alerts, a lost link) against the
 * servo emulator over an in-memory link that can split, merge and pollute the byte stream.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { DynamixelBus, DynamixelError } from "../../../src/drivers/dynamixel/bus.js";
import { loadCalibration } from "../../../src/drivers/dynamixel/calibration.js";
import { STATE_BLOCK, X_SERIES } from "../../../src/drivers/dynamixel/control-table.js";
import { loadUrdf } from "../../../src/robot/urdf.js";
import { packageRoot } from "../../../src/util/paths.js";
import { ServoBusEmulator } from "./emulator.js";
import { MemoryLink } from "./memory-link.js";

const model = loadUrdf(`${packageRoot()}/urdf/arm.urdf`);
const calibration = loadCalibration(
  `${packageRoot()}/calibration/arm.yaml`,
  model.joints.map((j) => j.name),
);
const ids = calibration.joints.map((j) => j.id);

function setup() {
  const [host, servos] = MemoryLink.pair();
  const emu = new ServoBusEmulator(model, calibration.joints);
  emu.attach(servos);
  const bus = new DynamixelBus(host, { latencyMs: 50, retries: 2 });
  return { host, servos, emu, bus, done: () => emu.close() };
}

describe("dynamixel bus", () => {
  it("pings, reads and writes; replies split into single bytes behind line noise still arrive", async () => {
    const { servos, bus, emu, done } = setup();
    try {
      servos.chunk = 1;
      servos.noise = [0x00, 0xff, 0xff, 0x13, 0xfd];
      assert.deepEqual(await bus.ping(12), { id: 12, modelNumber: 1020, model: "XM430-W350", firmware: 46 });
      await bus.write(12, X_SERIES.goalCurrent, -300);
      assert.equal(await bus.readValue(12, X_SERIES.goalCurrent, true), -300);
      // The stream is the same on every attempt, so success means the reader parsed it; on a loaded
      // machine an attempt may still time out, so count the noise rather than the attempts.
      assert.ok(
        bus.reader.stats.garbageBytes >= 5 * 3,
        `noise skipped: ${bus.reader.stats.garbageBytes} bytes`,
      );
      assert.equal(bus.reader.stats.crcErrors, 0);
      assert.ok(emu.counts.instructions >= 3);
    } finally {
      await done();
    }
  });

  it("retries a dropped reply a bounded number of times, then names the servo", async () => {
    const { bus, emu, done } = setup();
    try {
      emu.faults.silent.add(13);
      const started = performance.now();
      await assert.rejects(bus.ping(13), (e: Error) => {
        assert.ok(e instanceof DynamixelError && e.kind === "timeout");
        assert.match(e.message, /ping servo 13: no reply after 3 attempts/);
        return true;
      });
      const elapsed = performance.now() - started;
      assert.equal(emu.counts.instructions, 3, "three attempts, no more");
      // Three timeouts of about 2·50 ms + 2 ms + wire time, each twice the one before.
      assert.ok(elapsed < 7 * bus.timeoutMs(10, 14, 1) + 200, `gave up after ${elapsed.toFixed(0)} ms`);
      emu.faults.silent.clear();
      assert.equal((await bus.ping(13)).id, 13, "the bus is usable again");
    } finally {
      await done();
    }
  });

  it("reports damaged replies as CRC trouble, and does not retry a status error", async () => {
    const { bus, emu, done } = setup();
    try {
      emu.faults.corruptCrc = true;
      await assert.rejects(bus.ping(11), /ping servo 11: 1 damaged reply \(CRC mismatch\) after 3 attempts/);
      const out = new Uint8Array(STATE_BLOCK.size * ids.length);
      const o = await bus.syncRead(STATE_BLOCK.address, STATE_BLOCK.size, ids, out);
      assert.equal(o.ok, false);
      assert.equal(o.missing, 4);
      assert.equal(o.badPackets, 4);
      emu.faults.corruptCrc = false;
      await bus.write(11, X_SERIES.torqueEnable, 1);
      const before = emu.counts.instructions;
      // EEPROM is locked while torque is on: the servo says "access error", once.
      await assert.rejects(bus.write(11, X_SERIES.operatingMode, 0), /the servo answered "access error"/);
      assert.equal(emu.counts.instructions - before, 1);
    } finally {
      await done();
    }
  });

  it("sync read retries within the call: only the servos still missing, and damaged replies need no timeout", async () => {
    const { bus, emu, done } = setup();
    try {
      const out = new Uint8Array(STATE_BLOCK.size * ids.length);
      // A silent servo: asked three times in all, alone after the first; the others answer once.
      emu.faults.silent.add(12);
      const replies = emu.counts.replies;
      const silent = await bus.syncRead(STATE_BLOCK.address, STATE_BLOCK.size, ids, out, 2);
      assert.equal(silent.ok, false);
      assert.equal(silent.attempts, 3);
      assert.equal(silent.firstMissingId, 12);
      assert.equal(silent.missing, 1);
      assert.equal(emu.counts.replies - replies, 3, "11, 13 and 14 answered the first attempt only");
      emu.faults.silent.clear();
      // Every reply damaged: each attempt ends when all four damaged packets are in, not at its timeout.
      emu.faults.corruptCrc = true;
      const started = performance.now();
      const damaged = await bus.syncRead(STATE_BLOCK.address, STATE_BLOCK.size, ids, out, 2);
      const elapsed = performance.now() - started;
      assert.equal(damaged.ok, false);
      assert.equal(damaged.attempts, 3);
      assert.equal(damaged.badPackets, 12);
      const timeout = bus.timeoutMs(18, 4 * 21, 4);
      assert.ok(
        elapsed < timeout,
        `three damaged attempts took ${elapsed.toFixed(0)} ms (one timeout: ${timeout.toFixed(0)} ms)`,
      );
      emu.faults.corruptCrc = false;
      // Line noise on 9% of replies (the arm held still): every read completes, each block in its
      // servo's place.
      emu.paused = true;
      const clean = new Uint8Array(out.length);
      assert.ok((await bus.syncRead(STATE_BLOCK.address, STATE_BLOCK.size, ids, clean, 2)).ok);
      emu.setLineNoise({ drop: 0.03, corrupt: 0.03, garbage: 0.03, seed: 3 });
      let recovered = 0;
      for (let k = 0; k < 300; k++) {
        out.fill(0);
        const o = await bus.syncRead(STATE_BLOCK.address, STATE_BLOCK.size, ids, out, 2);
        assert.ok(o.ok, `read ${k}: ${JSON.stringify(o)}`);
        if (o.attempts > 1) recovered++;
        assert.deepEqual(out, clean, `read ${k}: every block from its own servo`);
      }
      const { dropped, corrupted, garbage } = emu.injected;
      assert.ok(dropped > 10 && corrupted > 10 && garbage > 10, JSON.stringify(emu.injected));
      assert.ok(recovered >= 10, `${recovered} reads recovered on a retry`);
      assert.ok(bus.reader.stats.garbageBytes > garbage, "the noise was skipped");
    } finally {
      await done();
    }
  });

  it("sync read fills every servo's block and flags a hardware alert; reboot clears it", async () => {
    const { bus, emu, done } = setup();
    try {
      const out = new Uint8Array(STATE_BLOCK.size * ids.length);
      const ok = await bus.syncRead(STATE_BLOCK.address, STATE_BLOCK.size, ids, out);
      assert.equal(ok.ok, true);
      emu.raiseHardwareError(14, 0x04);
      const alert = await bus.syncRead(STATE_BLOCK.address, STATE_BLOCK.size, ids, out);
      assert.equal(alert.ok, false);
      assert.equal(alert.alertId, 14);
      await assert.rejects(bus.read(14, X_SERIES.presentPosition), /servo 14 reports a hardware alert/);
      assert.equal(await bus.readValue(14, X_SERIES.hardwareErrorStatus), 0x04);
      await bus.reboot(14);
      assert.equal((await bus.syncRead(STATE_BLOCK.address, STATE_BLOCK.size, ids, out)).ok, true);
    } finally {
      await done();
    }
  });

  it("a broadcast scan finds every servo; a cut link fails the transaction in flight and all after", async () => {
    const { host, bus, emu, done } = setup();
    try {
      assert.deepEqual(
        (await bus.scan()).map((s) => s.id),
        ids,
      );
      emu.faults.silent.add(11);
      const pending = bus.ping(11);
      setTimeout(() => host.cut("unplugged"), 2);
      await assert.rejects(pending, (e: Error) => e instanceof DynamixelError && e.kind === "closed");
      await assert.rejects(bus.ping(12), /unplugged/);
      const o = await bus.syncRead(STATE_BLOCK.address, STATE_BLOCK.size, ids, new Uint8Array(40));
      assert.equal(o.closed, true);
    } finally {
      await done();
    }
  });

  it("a scan repeats the broadcast while it finds new servos: ones silent at the first broadcast are found", async () => {
    const { host, bus, emu, done } = setup();
    try {
      let broadcasts = 0;
      const write = host.write.bind(host);
      host.write = (bytes: Uint8Array) => {
        broadcasts++;
        // The first broadcast loses two replies (line noise, a late servo); later ones lose none.
        if (broadcasts === 1) for (const id of [12, 13]) emu.faults.silent.add(id);
        else emu.faults.silent.clear();
        write(bytes);
      };
      assert.deepEqual(
        (await bus.scan()).map((s) => s.id),
        ids,
      );
      assert.equal(broadcasts, 3, "a second broadcast found 12 and 13, a third found nothing new");
    } finally {
      await done();
    }
  });

  it("an unpowered servo's joint is held (the gearbox carries the arm's weight): the arm does not fall", async () => {
    const { emu, done } = setup();
    try {
      const start = Array.from(emu.sim.readState().position);
      await new Promise((r) => setTimeout(r, 300));
      const now = emu.sim.readState();
      assert.ok(emu.sim.simTime > 0.2, `the physics ran (${emu.sim.simTime} s)`);
      assert.deepEqual(Array.from(now.position), start);
      assert.deepEqual(Array.from(now.velocity), [0, 0, 0, 0]);
    } finally {
      await done();
    }
  });
});
