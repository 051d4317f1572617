/**
 * The servo bus: Protocol 2.0 transactions over a Transport, one at a time (the bus is half
 * duplex: a new instruction may only go out once the replies to the last one are in or overdue).
 *
 * Each transaction waits for the status packets it expects, up to a timeout computed from the
 * bytes on the wire at the baud rate, the return delay of each servo and twice the adapter's
 * latency (timeoutMs: about 6 ms for four servos at 1 Mbps behind a U2D2 with a 1 ms latency timer,
 * 37 ms at the FTDI default of 16 ms). A sync read is done as soon as every servo it asked is
 * accounted for, by a good reply or a damaged one (a complete packet with a bad CRC): only a
 * missing reply costs a timeout.
 *
 * Setup transactions (ping, read, write, reboot) retry a bounded number of times on a timeout or
 * damaged reply, each attempt waiting twice as long as the one before (a loaded machine behind a
 * pseudo-terminal can hold a reply back by tens of ms); a status error (e.g. "data range error") is
 * not retried: it names the servo and the field. The tick path (syncRead) retries within the tick:
 * up to `retries` more SYNC_READs, each asking only the servos whose reply is still missing or was
 * damaged, each with the timeout of its own packets; it then reports what went wrong, so the driver
 * decides how many bad ticks in a row it tolerates. A reply that comes after its attempt timed out
 * is still taken by the next attempt (the same servo, the same block: a state a few ms older).
 */
import { modelName } from "./control-table.js";
import {
  ALERT_BIT,
  BROADCAST_ID,
  describeStatusError,
  Instruction,
  PREFIX_LENGTH,
  pingPacket,
  readLE,
  readPacket,
  rebootPacket,
  writeInstructionPacket,
  writePacket,
} from "./protocol.js";
import { PacketReader, type ReceivedPacket } from "./reader.js";
import type { Transport } from "./transport.js";

export type BusErrorKind = "timeout" | "crc" | "status" | "alert" | "closed";

export class DynamixelError extends Error {
  override name = "DynamixelError";
  readonly kind: BusErrorKind;
  readonly servoId: number | undefined;
  constructor(kind: BusErrorKind, message: string, servoId?: number) {
    super(message);
    this.kind = kind;
    this.servoId = servoId;
  }
}

export interface PingReply {
  id: number;
  modelNumber: number;
  model: string;
  firmware: number;
}

export interface BusOptions {
  /** Adapter latency (ms) added twice to every timeout. Default 16 (an FTDI adapter's default). */
  latencyMs?: number;
  /** Extra attempts of a setup transaction after a timeout or damaged reply, each waiting twice as long. Default 3. */
  retries?: number;
  /** Servo Return Delay Time (s) assumed per reply. Default 0.5 ms (the factory setting). */
  returnDelay?: number;
}

/** Broadcast pings a scan sends at most (see scan()). */
const SCAN_ATTEMPTS = 3;
/** What one syncRead saw. A reused object: overwritten by the next syncRead. */
export interface SyncReadOutcome {
  ok: boolean;
  /** Expected replies that did not arrive in time. */
  missing: number;
  /** First ID that did not reply, or −1. */
  firstMissingId: number;
  /** Damaged packets (bad CRC or length) seen during the read. */
  badPackets: number;
  /** First ID whose reply carried the hardware-alert bit, or −1. */
  alertId: number;
  /** First ID whose reply carried an instruction error, and that error byte (or −1, 0). */
  errorId: number;
  error: number;
  /** Set when the link is gone. */
  closed: boolean;
  /** SYNC_READs sent for this outcome: 1, or more when replies were retried. */
  attempts: number;
}

interface Exchange {
  ids: readonly number[];
  /** Expected parameter bytes per reply, or −1 for any. */
  paramLength: number;
  /** Bit k set: ids[k] has replied. */
  received: Uint8Array;
  count: number;
  /** Where reply k's params go (sync read), or undefined to keep them in `replies`. */
  out: Uint8Array | undefined;
  replies: (Uint8Array | undefined)[] | undefined;
  errors: Uint8Array;
  /** Where reply k's params go in `out`, in blocks of paramLength (sync read retries), or undefined for k. */
  outIndex: Uint8Array | undefined;
  badPacketsAtStart: number;
  /** Sync read: finish as soon as every ID has answered, well or with a damaged packet. */
  accountDamaged: boolean;
  crcErrorsAtStart: number;
  resolve: (exchange: Exchange) => void;
  timer: ReturnType<typeof setTimeout> | undefined;
}

export class DynamixelBus {
  readonly transport: Transport;
  readonly latencyMs: number;
  readonly retries: number;
  readonly returnDelay: number;
  /** Counters for diagnostics and the benchmark. */
  readonly stats = {
    transactions: 0,
    timeouts: 0,
    /** Setup transactions sent again. */
    retried: 0,
    unexpectedPackets: 0,
    /** Tick path: SYNC_READs sent again for missing or damaged replies. */
    syncReadRetries: 0,
    /** Tick path: sync reads that got every reply only on a retry. */
    syncReadsRecovered: 0,
  };
  readonly reader: PacketReader;

  private exchange: Exchange | undefined;
  private readonly slot: Exchange = {
    ids: [],
    paramLength: 0,
    received: new Uint8Array(256),
    count: 0,
    out: undefined,
    replies: undefined,
    errors: new Uint8Array(256),
    outIndex: undefined,
    badPacketsAtStart: 0,
    accountDamaged: false,
    crcErrorsAtStart: 0,
    resolve: () => undefined,
    timer: undefined,
  };
  private readonly onTimeout = () => {
    this.stats.timeouts++;
    this.finish();
  };
  /** The tail of the transaction queue. */
  private queue: Promise<unknown> = Promise.resolve();
  private closedReason: string | undefined;
  private readonly outcome: SyncReadOutcome = {
    ok: false,
    missing: 0,
    firstMissingId: -1,
    badPackets: 0,
    alertId: -1,
    errorId: -1,
    error: 0,
    closed: false,
    attempts: 0,
  };
  /** Sync read scratch: which IDs have answered over all attempts, their error bytes, the IDs to ask again. */
  private readonly syncGot = new Uint8Array(256);
  private readonly syncErrors = new Uint8Array(256);
  private readonly retryIds: number[] = [];
  private readonly retryIndex = new Uint8Array(256);
  /** Tick path scratch: one sync write / sync read packet, built in place. */
  private readonly txBody = new Uint8Array(1024);
  private readonly txPacket = new Uint8Array(2 * 1024 + PREFIX_LENGTH + 2);

  constructor(transport: Transport, options: BusOptions = {}) {
    this.transport = transport;
    this.latencyMs = options.latencyMs ?? 16;
    this.retries = options.retries ?? 3;
    this.returnDelay = options.returnDelay ?? 0.0005;
    this.reader = new PacketReader((p) => this.onPacket(p));
    transport.onData((chunk) => {
      this.reader.push(chunk);
      this.checkAccounted();
    });
    transport.onClose((reason) => {
      this.closedReason = reason;
      this.finish();
    });
  }

  /** Why the link is gone, or undefined while it is up. */
  get closed(): string | undefined {
    return this.closedReason;
  }

  get badPackets(): number {
    return this.reader.stats.crcErrors + this.reader.stats.lengthErrors;
  }

  /** Timeout (ms) of a transaction moving these many bytes and waiting for `replies` servos. */
  timeoutMs(txBytes: number, rxBytes: number, replies: number): number {
    const wireMs = ((txBytes + rxBytes) * 10 * 1000) / this.transport.baud;
    return wireMs + replies * this.returnDelay * 1000 + 2 * this.latencyMs + 2;
  }

  // ---- Setup transactions (retried) ----

  async ping(id: number): Promise<PingReply> {
    const params = await this.request(id, pingPacket(id), 3, `ping servo ${id}`, { allowAlert: true });
    return pingReply(id, params);
  }

  /**
   * Broadcast ping: every servo on the bus, in ID order. One broadcast can miss a servo (a reply
   * lost to line noise, or a late one), so it is repeated until a broadcast finds no servo the
   * earlier ones had not, at most SCAN_ATTEMPTS times; the result is the union.
   */
  async scan(): Promise<PingReply[]> {
    return this.enqueue(async () => {
      const tx = pingPacket(BROADCAST_ID);
      // Servos answer one after another (each waits for the ones below it): allow all 253.
      const timeout = this.timeoutMs(tx.length, 253 * 14, 253);
      const ids = Array.from({ length: 253 }, (_, i) => i);
      const found = new Map<number, PingReply>();
      for (let attempt = 0; attempt < SCAN_ATTEMPTS; attempt++) {
        const replies: (Uint8Array | undefined)[] = new Array(253).fill(undefined);
        await this.run(tx, ids, 3, undefined, replies, timeout);
        let added = 0;
        replies.forEach((r, id) => {
          if (r === undefined || found.has(id)) return;
          found.set(id, pingReply(id, r));
          added++;
        });
        if (found.size > 0 && added === 0) break;
      }
      return [...found.values()].sort((a, b) => a.id - b.id);
    });
  }

  async read(id: number, field: { address: number; size: number }, options: { allowAlert?: boolean } = {}) {
    const params = await this.request(
      id,
      readPacket(id, field.address, field.size),
      field.size,
      `read ${field.size} bytes at ${field.address} from servo ${id}`,
      options,
    );
    return params;
  }

  async readValue(id: number, field: { address: number; size: 1 | 2 | 4 }, signed = false): Promise<number> {
    return readLE(await this.read(id, field, { allowAlert: true }), 0, field.size, signed);
  }

  async write(
    id: number,
    field: { address: number; size: number },
    value: number,
    options: { allowAlert?: boolean } = {},
  ): Promise<void> {
    const data = new Uint8Array(field.size);
    for (let i = 0; i < field.size; i++) data[i] = (value >> (8 * i)) & 0xff;
    await this.request(
      id,
      writeInstructionPacket(id, field.address, data),
      0,
      `write ${value} to address ${field.address} of servo ${id}`,
      options,
    );
  }

  async reboot(id: number): Promise<void> {
    await this.request(id, rebootPacket(id), 0, `reboot servo ${id}`, { allowAlert: true });
  }

  // ---- Tick path (single attempt) ----

  /** SYNC_WRITE: no replies. `data` holds `length` bytes per ID, in ID order. */
  syncWrite(address: number, length: number, ids: readonly number[], data: Uint8Array): void {
    if (this.closedReason !== undefined) return;
    const body = this.txBody;
    body[0] = Instruction.SYNC_WRITE;
    body[1] = address & 0xff;
    body[2] = address >> 8;
    body[3] = length & 0xff;
    body[4] = length >> 8;
    let w = 5;
    for (let k = 0; k < ids.length; k++) {
      body[w++] = ids[k];
      for (let j = 0; j < length; j++) body[w++] = data[k * length + j];
    }
    const n = writePacket(this.txPacket, BROADCAST_ID, body, w);
    this.transport.write(this.txPacket.subarray(0, n));
  }

  /**
   * SYNC_READ of `length` bytes at `address` from each ID, into out[k·length…] for ids[k], queued
   * behind any transaction in flight. Replies missing or damaged after an attempt are asked for
   * again, up to `retries` more times, from those servos only (a retry must not make servos that
   * already answered talk over the next packet on a half-duplex bus). Returns a reused outcome object.
   */
  syncRead(
    address: number,
    length: number,
    ids: readonly number[],
    out: Uint8Array,
    retries = 0,
  ): Promise<SyncReadOutcome> {
    return this.enqueue(async () => {
      const n = ids.length;
      const got = this.syncGot;
      const errors = this.syncErrors;
      got.fill(0, 0, n);
      errors.fill(0, 0, n);
      const badAtStart = this.badPackets;
      let askIds: readonly number[] = ids;
      let askIndex: Uint8Array | undefined;
      let attempts = 0;
      for (;;) {
        attempts++;
        const exchange = await this.run(
          this.syncReadPacket(address, length, askIds),
          askIds,
          length,
          out,
          undefined,
          this.timeoutMs(this.syncReadTx, askIds.length * (PREFIX_LENGTH + 4 + length + 2), askIds.length),
          askIndex,
        );
        let statusError = false;
        for (let k = 0; k < askIds.length; k++) {
          if (exchange.received[k] === 0) continue;
          const i = askIndex === undefined ? k : askIndex[k];
          got[i] = 1;
          errors[i] = exchange.errors[k];
          if (exchange.errors[k] & 0x7f) statusError = true;
        }
        // A status error is the servo's answer, not line noise: asking again would get it again.
        if (this.closedReason !== undefined || statusError || attempts > retries) break;
        const retry = this.retryIds;
        retry.length = 0;
        for (let i = 0; i < n; i++) {
          if (got[i] !== 0) continue;
          this.retryIndex[retry.length] = i;
          retry.push(ids[i]);
        }
        if (retry.length === 0) break;
        this.stats.syncReadRetries++;
        askIds = retry;
        askIndex = this.retryIndex;
      }
      const o = this.outcome;
      o.closed = this.closedReason !== undefined;
      o.attempts = attempts;
      o.missing = 0;
      o.firstMissingId = -1;
      o.alertId = -1;
      o.errorId = -1;
      o.error = 0;
      for (let i = 0; i < n; i++) {
        if (got[i] === 0) {
          o.missing++;
          if (o.firstMissingId < 0) o.firstMissingId = ids[i];
          continue;
        }
        const e = errors[i];
        if (e & ALERT_BIT && o.alertId < 0) o.alertId = ids[i];
        if (e & 0x7f && o.errorId < 0) {
          o.errorId = ids[i];
          o.error = e;
        }
      }
      o.badPackets = this.badPackets - badAtStart;
      o.ok = !o.closed && o.missing === 0 && o.alertId < 0 && o.errorId < 0;
      if (o.missing === 0 && attempts > 1) this.stats.syncReadsRecovered++;
      return o;
    });
  }

  /** Closes the link (after queued bytes have left). */
  async close(): Promise<void> {
    await this.transport.close();
  }

  // ---- Machinery ----

  /** Length of the last packet syncReadPacket built. */
  private syncReadTx = 0;

  /** Builds a SYNC_READ in the tick scratch; returns a view of it. */
  private syncReadPacket(address: number, length: number, ids: readonly number[]): Uint8Array {
    const body = this.txBody;
    body[0] = Instruction.SYNC_READ;
    body[1] = address & 0xff;
    body[2] = address >> 8;
    body[3] = length & 0xff;
    body[4] = length >> 8;
    for (let k = 0; k < ids.length; k++) body[5 + k] = ids[k];
    this.syncReadTx = writePacket(this.txPacket, BROADCAST_ID, body, 5 + ids.length);
    return this.txPacket.subarray(0, this.syncReadTx);
  }

  private enqueue<T>(task: () => Promise<T>): Promise<T> {
    const next = this.queue.then(task, task);
    this.queue = next.catch(() => undefined);
    return next;
  }

  /**
   * One addressed request with retries. Returns the reply's params (a copy). Throws a
   * DynamixelError naming the servo and what failed.
   */
  private request(
    id: number,
    tx: Uint8Array,
    paramLength: number,
    what: string,
    options: { allowAlert?: boolean },
  ): Promise<Uint8Array> {
    return this.enqueue(async () => {
      const ids = [id];
      const replies: (Uint8Array | undefined)[] = [undefined];
      const rxBytes = PREFIX_LENGTH + 4 + paramLength + 2;
      let lastFailure = "";
      for (let attempt = 0; attempt <= this.retries; attempt++) {
        if (attempt > 0) this.stats.retried++;
        const exchange = await this.run(
          tx,
          ids,
          paramLength,
          undefined,
          replies,
          this.timeoutMs(tx.length, rxBytes, 1) * 2 ** attempt,
        );
        if (this.closedReason !== undefined)
          throw new DynamixelError("closed", `${what}: ${this.closedReason}`, id);
        if (exchange.count === 1) {
          const error = exchange.errors[0];
          if (error & 0x7f)
            throw new DynamixelError(
              "status",
              `${what}: the servo answered "${describeStatusError(error)}"`,
              id,
            );
          if (error & ALERT_BIT && options.allowAlert !== true)
            throw new DynamixelError(
              "alert",
              `${what}: servo ${id} reports a hardware alert (read its Hardware Error Status, or reboot it)`,
              id,
            );
          return replies[0]!;
        }
        const bad = this.badPackets - exchange.badPacketsAtStart;
        lastFailure = bad > 0 ? `${bad} damaged repl${bad === 1 ? "y" : "ies"} (CRC mismatch)` : "no reply";
      }
      const kind: BusErrorKind = lastFailure.startsWith("no reply") ? "timeout" : "crc";
      throw new DynamixelError(kind, `${what}: ${lastFailure} after ${this.retries + 1} attempts`, id);
    });
  }

  /** Sends tx and collects the replies of `ids` until all are in or the timeout passes. */
  private run(
    tx: Uint8Array,
    ids: readonly number[],
    paramLength: number,
    out: Uint8Array | undefined,
    replies: (Uint8Array | undefined)[] | undefined,
    timeoutMs: number,
    outIndex?: Uint8Array,
  ): Promise<Exchange> {
    return new Promise<Exchange>((resolve) => {
      this.stats.transactions++;
      // Bytes left from an overdue reply must not pair up with this transaction's replies.
      if (this.reader.pending > 0) this.reader.reset();
      // One transaction at a time (the queue): one exchange record, reused.
      const exchange = this.slot;
      exchange.ids = ids;
      exchange.paramLength = paramLength;
      exchange.received.fill(0, 0, ids.length);
      exchange.errors.fill(0, 0, ids.length);
      exchange.count = 0;
      exchange.out = out;
      exchange.replies = replies;
      exchange.outIndex = outIndex;
      exchange.badPacketsAtStart = this.badPackets;
      // Sync reads (the only users of `out`): every servo named answers once, in order.
      exchange.accountDamaged = out !== undefined;
      exchange.crcErrorsAtStart = this.reader.stats.crcErrors;
      exchange.resolve = resolve;
      if (this.closedReason !== undefined) {
        resolve(exchange);
        return;
      }
      this.exchange = exchange;
      exchange.timer = setTimeout(this.onTimeout, timeoutMs);
      this.transport.write(tx);
    });
  }

  private finish(): void {
    const exchange = this.exchange;
    if (exchange === undefined) return;
    this.exchange = undefined;
    if (exchange.timer !== undefined) clearTimeout(exchange.timer);
    exchange.timer = undefined;
    exchange.resolve(exchange);
  }

  /**
   * Ends a sync read early once every servo it asked has either answered or sent a damaged packet
   * (the bus is quiet again: no need to wait out the timeout before asking again).
   */
  private checkAccounted(): void {
    const exchange = this.exchange;
    if (exchange === undefined || !exchange.accountDamaged) return;
    const damaged = this.reader.stats.crcErrors - exchange.crcErrorsAtStart;
    if (damaged > 0 && exchange.count + damaged >= exchange.ids.length) this.finish();
  }

  private onPacket(packet: ReceivedPacket): void {
    const exchange = this.exchange;
    if (exchange === undefined || packet.instruction !== Instruction.STATUS) {
      this.stats.unexpectedPackets++;
      return;
    }
    const k = exchange.ids.indexOf(packet.id);
    // A reply of the wrong size (e.g. a late answer to an earlier request) is not this one's.
    const sizeOk =
      exchange.paramLength < 0 ||
      packet.params.length === exchange.paramLength ||
      (packet.error & 0x7f) !== 0;
    if (k < 0 || exchange.received[k] !== 0 || !sizeOk) {
      this.stats.unexpectedPackets++;
      return;
    }
    exchange.received[k] = 1;
    exchange.errors[k] = packet.error;
    exchange.count++;
    if (exchange.out !== undefined && (packet.error & 0x7f) === 0) {
      const at = exchange.outIndex === undefined ? k : exchange.outIndex[k];
      exchange.out.set(packet.params, at * exchange.paramLength);
    }
    if (exchange.replies !== undefined) exchange.replies[k] = packet.params.slice();
    if (exchange.count === exchange.ids.length) this.finish();
  }
}

function pingReply(id: number, params: Uint8Array): PingReply {
  const modelNumber = params[0] | (params[1] << 8);
  return { id, modelNumber, model: modelName(modelNumber), firmware: params[2] };
}
