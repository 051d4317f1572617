/**
 * The resynchronising packet reader: bytes in, whole packets out. A serial line delivers packets
 * split across reads, several in one read, or behind garbage (line noise, a half packet from
 * before the port was opened). The reader keeps what it has not parsed yet, looks for the header
 * FF FF FD 00, waits for the length the packet announces, checks the CRC, removes the stuffing and
 * hands the packet on. A bad length or CRC does not lose what follows: the reader drops one byte and
 * searches again, so a real packet hidden behind a damaged one is still found.
 *
 * No allocation while reading: one receive buffer and one body buffer, made in the constructor; the
 * packet handed to onPacket is one reused object whose `params` view is valid only during the call.
 */
import { crc16, Instruction, PREFIX_LENGTH, unstuff } from "./protocol.js";

export interface ReceivedPacket {
  id: number;
  instruction: number;
  /** Status packets: the error byte; 0 for instruction packets. */
  error: number;
  /** The unstuffed parameters (without the error byte): a view, valid only inside onPacket. */
  params: Uint8Array;
}

export interface ReaderStats {
  packets: number;
  /** Complete packets whose CRC did not match (dropped). */
  crcErrors: number;
  /** Headers with an impossible length field (dropped). */
  lengthErrors: number;
  /** Bytes skipped while searching for a header. */
  garbageBytes: number;
}

export interface PacketReaderOptions {
  /** Largest length field accepted (instruction + params + CRC). Default 1024. */
  maxLength?: number;
}

export class PacketReader {
  readonly stats: ReaderStats = { packets: 0, crcErrors: 0, lengthErrors: 0, garbageBytes: 0 };
  private readonly onPacket: (packet: ReceivedPacket) => void;
  private readonly maxLength: number;
  private readonly buffer: Uint8Array;
  private readonly body: Uint8Array;
  private readonly packet: ReceivedPacket;
  /** Unparsed bytes are buffer[start, end). */
  private start = 0;
  private end = 0;

  constructor(onPacket: (packet: ReceivedPacket) => void, options: PacketReaderOptions = {}) {
    this.onPacket = onPacket;
    this.maxLength = options.maxLength ?? 1024;
    this.buffer = new Uint8Array(4 * (PREFIX_LENGTH + this.maxLength));
    this.body = new Uint8Array(this.maxLength);
    this.packet = { id: 0, instruction: 0, error: 0, params: this.body.subarray(0, 0) };
  }

  /** Bytes waiting for the rest of their packet. */
  get pending(): number {
    return this.end - this.start;
  }

  /** Forgets buffered bytes (after a timeout, so that a late half packet cannot pair with new bytes). */
  reset(): void {
    this.stats.garbageBytes += this.end - this.start;
    this.start = 0;
    this.end = 0;
  }

  push(chunk: Uint8Array): void {
    let offset = 0;
    while (offset < chunk.length) {
      this.makeRoom();
      const n = Math.min(chunk.length - offset, this.buffer.length - this.end);
      this.buffer.set(chunk.subarray(offset, offset + n), this.end);
      this.end += n;
      offset += n;
      this.parse();
    }
  }

  /** Moves unparsed bytes to the front; if the buffer is still full, drops the oldest bytes. */
  private makeRoom(): void {
    if (this.start > 0) {
      this.buffer.copyWithin(0, this.start, this.end);
      this.end -= this.start;
      this.start = 0;
    }
    if (this.end === this.buffer.length) {
      // Only reachable with a stream of garbage that keeps looking like a header's start.
      const drop = this.buffer.length >> 1;
      this.buffer.copyWithin(0, drop, this.end);
      this.end -= drop;
      this.stats.garbageBytes += drop;
    }
  }

  private parse(): void {
    const buf = this.buffer;
    for (;;) {
      const header = this.findHeader();
      if (header < 0) return;
      if (this.end - header < PREFIX_LENGTH) return;
      const lengthField = buf[header + 5] | (buf[header + 6] << 8);
      if (lengthField < 3 || lengthField > this.maxLength) {
        this.stats.lengthErrors++;
        this.skip(header + 1);
        continue;
      }
      const total = PREFIX_LENGTH + lengthField;
      if (this.end - header < total) return;
      const crcAt = header + total - 2;
      const received = buf[crcAt] | (buf[crcAt + 1] << 8);
      if (crc16(buf, header, crcAt) !== received) {
        this.stats.crcErrors++;
        this.skip(header + 1);
        continue;
      }
      const n = unstuff(buf, header + PREFIX_LENGTH, crcAt, this.body);
      const packet = this.packet;
      packet.id = buf[header + 4];
      packet.instruction = this.body[0];
      const isStatus = packet.instruction === Instruction.STATUS;
      packet.error = isStatus && n >= 2 ? this.body[1] : 0;
      packet.params = this.body.subarray(isStatus ? Math.min(2, n) : 1, n);
      this.start = header + total;
      this.stats.packets++;
      this.onPacket(packet);
    }
  }

  /** Index of the next header FF FF FD 00 at or after start, or −1 (keeping a possible partial header). */
  private findHeader(): number {
    const buf = this.buffer;
    const end = this.end;
    for (let i = this.start; i < end; i++) {
      if (buf[i] !== 0xff) continue;
      // A header needs 4 bytes; with fewer left, keep them: they may be the start of one.
      if (i + 3 >= end) {
        if (end - i === 1 || buf[i + 1] === 0xff) {
          if (end - i < 3 || buf[i + 2] === 0xfd) {
            this.skip(i);
            return -1;
          }
        }
        continue;
      }
      if (buf[i + 1] === 0xff && buf[i + 2] === 0xfd && buf[i + 3] === 0x00) {
        this.skip(i);
        return i;
      }
    }
    this.skip(end);
    return -1;
  }

  /** Drops bytes before `to` as garbage. */
  private skip(to: number): void {
    if (to > this.start) {
      this.stats.garbageBytes += to - this.start;
      this.start = to;
    }
  }
}
