/**
 * Protocol 2.0 packets against the protocol's own worked examples (ROBOTIS e-manual, "DYNAMIXEL
 * Protocol 2.0", Instruction Details), property tests that decoding inverts encoding (stuffing
 * included), and the resynchronising reader on garbage, split and merged input.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import {
  ALERT_BIT,
  crc16,
  decodePacket,
  describeStatusError,
  encodeInstruction,
  encodeStatus,
  Instruction,
  pingPacket,
  readLE,
  readPacket,
  rebootPacket,
  stuffedLength,
  syncReadPacket,
  syncWritePacket,
  writeInstructionPacket,
} from "../../../src/drivers/dynamixel/protocol.js";
import { PacketReader, type ReceivedPacket } from "../../../src/drivers/dynamixel/reader.js";

const bytes = (...b: number[]) => Uint8Array.from(b);
const H = [0xff, 0xff, 0xfd, 0x00];

describe("protocol 2.0: the e-manual's worked examples", () => {
  it("PING to ID 1 and its status (XM430-W210, model 1030, firmware 38)", () => {
    assert.deepEqual(pingPacket(1), bytes(...H, 0x01, 0x03, 0x00, 0x01, 0x19, 0x4e));
    const status = bytes(...H, 0x01, 0x07, 0x00, 0x55, 0x00, 0x06, 0x04, 0x26, 0x65, 0x5d);
    assert.deepEqual(encodeStatus(1, 0, [0x06, 0x04, 0x26]), status);
    const d = decodePacket(status);
    assert.equal(d.id, 1);
    assert.equal(d.instruction, Instruction.STATUS);
    assert.equal(d.error, 0);
    assert.equal(readLE(d.params, 0, 2, false), 1030);
    assert.equal(d.params[2], 38);
  });

  it("broadcast PING and the status of ID 2", () => {
    assert.deepEqual(pingPacket(0xfe), bytes(...H, 0xfe, 0x03, 0x00, 0x01, 0x31, 0x42));
    assert.deepEqual(
      encodeStatus(2, 0, [0x06, 0x04, 0x26]),
      bytes(...H, 0x02, 0x07, 0x00, 0x55, 0x00, 0x06, 0x04, 0x26, 0x6f, 0x6d),
    );
  });

  it("READ of Present Position (132, 4 bytes) from ID 1, and the reply 166", () => {
    assert.deepEqual(
      readPacket(1, 132, 4),
      bytes(...H, 0x01, 0x07, 0x00, 0x02, 0x84, 0x00, 0x04, 0x00, 0x1d, 0x15),
    );
    const status = bytes(...H, 0x01, 0x08, 0x00, 0x55, 0x00, 0xa6, 0x00, 0x00, 0x00, 0x8c, 0xc0);
    assert.deepEqual(encodeStatus(1, 0, [0xa6, 0, 0, 0]), status);
    assert.equal(readLE(decodePacket(status).params, 0, 4, true), 166);
  });

  it("WRITE of 512 to Goal Position (116) of ID 1, and its empty status", () => {
    assert.deepEqual(
      writeInstructionPacket(1, 116, [0x00, 0x02, 0x00, 0x00]),
      bytes(...H, 0x01, 0x09, 0x00, 0x03, 0x74, 0x00, 0x00, 0x02, 0x00, 0x00, 0xca, 0x89),
    );
    assert.deepEqual(encodeStatus(1, 0), bytes(...H, 0x01, 0x04, 0x00, 0x55, 0x00, 0xa1, 0x0c));
  });

  it("REBOOT of ID 1", () => {
    assert.deepEqual(rebootPacket(1), bytes(...H, 0x01, 0x03, 0x00, 0x08, 0x2f, 0x4e));
  });

  it("SYNC_READ of Present Position from IDs 1 and 2, and both replies (166 and 2079)", () => {
    assert.deepEqual(
      syncReadPacket(132, 4, [1, 2]),
      bytes(...H, 0xfe, 0x09, 0x00, 0x82, 0x84, 0x00, 0x04, 0x00, 0x01, 0x02, 0xce, 0xfa),
    );
    const reply2 = bytes(...H, 0x02, 0x08, 0x00, 0x55, 0x00, 0x1f, 0x08, 0x00, 0x00, 0xba, 0xbe);
    assert.deepEqual(encodeStatus(2, 0, [0x1f, 0x08, 0, 0]), reply2);
    assert.equal(readLE(decodePacket(reply2).params, 0, 4, true), 2079);
  });

  it("SYNC_WRITE of Goal Position 150 to ID 1 and 170 to ID 2", () => {
    assert.deepEqual(
      syncWritePacket(116, 4, [1, 2], [0x96, 0, 0, 0, 0xaa, 0, 0, 0]),
      bytes(
        ...H,
        0xfe,
        0x11,
        0x00,
        0x83,
        0x74,
        0x00,
        0x04,
        0x00,
        0x01,
        0x96,
        0x00,
        0x00,
        0x00,
        0x02,
        0xaa,
        0x00,
        0x00,
        0x00,
        0x82,
        0x87,
      ),
    );
  });

  it('CRC-16/0x8005 matches the standard check value of the CRC catalogue ("123456789" → 0xFEE8)', () => {
    assert.equal(crc16(new TextEncoder().encode("123456789")), 0xfee8);
  });
});

describe("protocol 2.0: byte stuffing", () => {
  it("adds an FD after each FF FF FD in the body, counts it in the length, and removes it on decode", () => {
    const p = encodeInstruction(1, Instruction.WRITE, [0x00, 0x01, 0xff, 0xff, 0xfd, 0x11]);
    // body: 03 00 01 FF FF FD 11 → 03 00 01 FF FF FD FD 11 (8 bytes) + CRC = length 10
    assert.deepEqual(Array.from(p.subarray(7, 15)), [0x03, 0x00, 0x01, 0xff, 0xff, 0xfd, 0xfd, 0x11]);
    assert.equal(p[5], 10);
    assert.deepEqual(Array.from(decodePacket(p).params), [0x00, 0x01, 0xff, 0xff, 0xfd, 0x11]);
  });

  it("leaves FF FD and FF FF FC alone", () => {
    const body = bytes(0x03, 0xff, 0xfd, 0xff, 0xff, 0xfc);
    assert.equal(stuffedLength(body), body.length);
  });
});

/** Parameter bytes rich in 0xFF and 0xFD, so that the stuffing pattern appears often. */
const paramBytes = fc.array(fc.oneof(fc.constantFrom(0xff, 0xfd, 0x00), fc.integer({ min: 0, max: 255 })), {
  maxLength: 64,
});

describe("protocol 2.0: properties", () => {
  it("decode(encode(instruction)) is the identity, and the stuffed body never holds a header", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 0xfe }),
        fc.integer({ min: 0, max: 255 }),
        paramBytes,
        (id, inst, params) => {
          fc.pre(inst !== Instruction.STATUS);
          const packet = encodeInstruction(id, inst, params);
          const d = decodePacket(packet);
          assert.equal(d.id, id);
          assert.equal(d.instruction, inst);
          assert.deepEqual(Array.from(d.params), params);
          // No FF FF FD 00 anywhere after the header: the reader can never sync inside a packet.
          for (let i = 4; i + 3 < packet.length - 2; i++) {
            const header =
              packet[i] === 0xff && packet[i + 1] === 0xff && packet[i + 2] === 0xfd && packet[i + 3] === 0;
            assert.ok(!header, `header inside the packet at ${i}`);
          }
        },
      ),
      { numRuns: 2000 },
    );
  });

  it("decode(encode(status)) is the identity, error byte included", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 252 }),
        fc.integer({ min: 0, max: 255 }),
        paramBytes,
        (id, error, params) => {
          const d = decodePacket(encodeStatus(id, error, params));
          assert.deepEqual(
            [d.id, d.instruction, d.error, Array.from(d.params)],
            [id, Instruction.STATUS, error, params],
          );
        },
      ),
      { numRuns: 2000 },
    );
  });

  it("the reader recovers every packet from a stream cut at random points, with garbage between packets", () => {
    const packetArb = fc.record({
      id: fc.integer({ min: 0, max: 252 }),
      error: fc.integer({ min: 0, max: 255 }),
      params: paramBytes,
    });
    fc.assert(
      fc.property(
        fc.array(
          fc.record({
            packet: packetArb,
            garbage: fc.array(fc.integer({ min: 0, max: 255 }), { maxLength: 12 }),
          }),
          {
            minLength: 1,
            maxLength: 8,
          },
        ),
        fc.array(fc.integer({ min: 1, max: 40 }), { minLength: 1, maxLength: 20 }),
        (items, cuts) => {
          const stream: number[] = [];
          for (const { packet, garbage } of items) {
            // Garbage that happens to hold a header could swallow the next packet as a "length";
            // real line noise can too, and the reader then recovers on the packet after. Keep the
            // property exact by keeping headers out of the garbage.
            stream.push(...garbage.map((b) => (b === 0xfd ? 0xfc : b)));
            stream.push(...encodeStatus(packet.id, packet.error, packet.params));
          }
          const got: { id: number; error: number; params: number[] }[] = [];
          const reader = new PacketReader((p) =>
            got.push({ id: p.id, error: p.error, params: Array.from(p.params) }),
          );
          let at = 0;
          let k = 0;
          while (at < stream.length) {
            const n = cuts[k++ % cuts.length];
            reader.push(Uint8Array.from(stream.slice(at, at + n)));
            at += n;
          }
          assert.deepEqual(
            got,
            items.map(({ packet }) => ({ id: packet.id, error: packet.error, params: packet.params })),
          );
        },
      ),
      { numRuns: 500 },
    );
  });
});

describe("packet reader", () => {
  const collect = () => {
    const got: ReceivedPacket[] = [];
    const reader = new PacketReader((p) => got.push({ ...p, params: p.params.slice() }));
    return { got, reader };
  };

  it("handles one packet split byte by byte, and several merged in one chunk", () => {
    const { got, reader } = collect();
    const a = encodeStatus(1, 0, [1, 2, 3]);
    for (const b of a) reader.push(bytes(b));
    assert.equal(got.length, 1);
    const merged = new Uint8Array([...encodeStatus(2, 0, [9]), ...encodeStatus(3, ALERT_BIT, [8]), ...a]);
    reader.push(merged);
    assert.deepEqual(
      got.map((p) => [p.id, p.error]),
      [
        [1, 0],
        [2, 0],
        [3, ALERT_BIT],
        [1, 0],
      ],
    );
  });

  it("drops a packet with a bad CRC, counts it, and still finds the packet right behind it", () => {
    const { got, reader } = collect();
    const bad = encodeStatus(1, 0, [1, 2, 3, 4]);
    bad[bad.length - 1] ^= 0x55;
    reader.push(new Uint8Array([...bad, ...encodeStatus(2, 0, [5])]));
    assert.deepEqual(
      got.map((p) => p.id),
      [2],
    );
    assert.equal(reader.stats.crcErrors, 1);
  });

  it("survives garbage, a false header with an absurd length, and a truncated packet followed by a whole one", () => {
    const { got, reader } = collect();
    const whole = encodeStatus(7, 0, [0x10, 0x20]);
    reader.push(bytes(0x00, 0x13, 0xff, 0xff, 0xff, 0xfd, 0x00, 0x07, 0xff, 0xff)); // length 0xFFFF: impossible
    reader.push(whole.subarray(0, 6)); // the start of a packet that never completes...
    reader.reset(); // ...until the bus gives up on it
    reader.push(whole);
    assert.deepEqual(
      got.map((p) => [p.id, Array.from(p.params)]),
      [[7, [0x10, 0x20]]],
    );
    assert.equal(reader.stats.lengthErrors, 1);
    assert.ok(reader.stats.garbageBytes > 0);
  });

  it("names status errors", () => {
    assert.equal(describeStatusError(0x84), "data range error");
    assert.equal(describeStatusError(0x80), "");
    assert.throws(() => decodePacket(bytes(...H, 1, 4, 0, 0x55, 0, 0, 0)), /CRC mismatch/);
    assert.throws(() => decodePacket(bytes(1, 2, 3, 4, 5, 6, 7, 8, 9, 10)), /header/);
  });
});
