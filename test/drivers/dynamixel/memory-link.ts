/**
 * An in-memory serial link for the bus and driver tests: bytes arrive on the next turn of the event
 * loop, like real I/O, and can be split into chunks or sent behind line noise. Unlike a pty, no
 * other process (socat) relays them: on a busy machine a reply can miss its timeout only if this
 * process stalls for the whole timeout within the turn between request and reply.
 */
import type { Transport } from "../../../src/drivers/dynamixel/transport.js";

/** One end of an in-memory link; bytes arrive on the next turn of the event loop, like real I/O. */
export class MemoryLink implements Transport {
  readonly path = "memory";
  readonly baud = 1_000_000;
  peer!: MemoryLink;
  /** Deliver in chunks of this many bytes (0: whole writes). */
  chunk = 0;
  /** Line noise sent before each write. */
  noise: number[] = [];
  private open = true;
  private dataHandlers: ((c: Uint8Array) => void)[] = [];
  private closeHandlers: ((r: string) => void)[] = [];

  static pair(): [MemoryLink, MemoryLink] {
    const a = new MemoryLink();
    const b = new MemoryLink();
    a.peer = b;
    b.peer = a;
    return [a, b];
  }

  get isOpen(): boolean {
    return this.open;
  }

  write(bytes: Uint8Array): void {
    if (!this.open) return;
    const all = Uint8Array.from([...this.noise, ...bytes]);
    const size = this.chunk > 0 ? this.chunk : all.length;
    for (let at = 0; at < all.length; at += size) {
      const piece = all.slice(at, at + size);
      setImmediate(() => this.peer.deliver(piece));
    }
  }

  writeSync(): boolean {
    return false;
  }

  onData(handler: (c: Uint8Array) => void): void {
    this.dataHandlers.push(handler);
  }

  onClose(handler: (r: string) => void): void {
    this.closeHandlers.push(handler);
  }

  async close(): Promise<void> {
    this.cut("closed");
  }

  /** The cable is pulled: both ends see it. */
  cut(reason: string): void {
    for (const end of [this, this.peer]) {
      if (!end.open) continue;
      end.open = false;
      for (const h of end.closeHandlers) h(reason);
    }
  }

  private deliver(bytes: Uint8Array): void {
    if (this.open) for (const h of this.dataHandlers) h(bytes);
  }
}
