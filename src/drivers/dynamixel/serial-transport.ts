/** A Transport on a real serial device, through serialport. */
import { writeSync } from "node:fs";
import { SerialPort } from "serialport";
import type { Transport } from "./transport.js";

export class SerialTransport implements Transport {
  readonly path: string;
  readonly baud: number;
  private readonly port: SerialPort;
  private closeHandlers: ((reason: string) => void)[] = [];
  private closedReason: string | undefined;
  private closing = false;

  private constructor(path: string, baud: number) {
    this.path = path;
    this.baud = baud;
    this.port = new SerialPort({ path, baudRate: baud, autoOpen: false });
    this.port.on("close", (err: (Error & { disconnected?: boolean }) | null) => {
      const reason = this.closing
        ? "closed"
        : err?.disconnected
          ? "the serial port disappeared (unplugged or its device went away)"
          : `the serial port closed${err ? `: ${err.message}` : ""}`;
      this.markClosed(reason);
    });
    this.port.on("error", (err: Error) => {
      if (!this.closing) this.markClosed(`serial port error: ${err.message}`);
    });
  }

  /** Opens the port; a failure is one line naming the port and what to check. */
  static async open(path: string, baud: number): Promise<SerialTransport> {
    const t = new SerialTransport(path, baud);
    await new Promise<void>((resolve, reject) => {
      t.port.open((err) => {
        if (!err) return resolve();
        reject(new Error(`cannot open serial port ${path} at ${baud} baud: ${explainOpenError(err)}`));
      });
    });
    return t;
  }

  get isOpen(): boolean {
    return this.closedReason === undefined && this.port.isOpen;
  }

  write(bytes: Uint8Array): void {
    if (!this.isOpen) return;
    this.port.write(Buffer.from(bytes));
  }

  writeSync(bytes: Uint8Array): boolean {
    const fd = (this.port.port as { fd?: number } | undefined)?.fd;
    if (!this.isOpen || typeof fd !== "number") return false;
    try {
      writeSync(fd, bytes);
      return true;
    } catch {
      return false;
    }
  }

  onData(handler: (chunk: Uint8Array) => void): void {
    this.port.on("data", handler);
  }

  onClose(handler: (reason: string) => void): void {
    if (this.closedReason !== undefined) handler(this.closedReason);
    else this.closeHandlers.push(handler);
  }

  async close(): Promise<void> {
    if (this.closing || !this.port.isOpen) {
      this.markClosed("closed");
      return;
    }
    this.closing = true;
    // Let queued bytes (the torque-off packets) leave before the port goes.
    // A wedged device must not hang the shutdown: give each step a bounded time.
    await withinMs(500, new Promise<void>((resolve) => this.port.drain(() => resolve())));
    await withinMs(500, new Promise<void>((resolve) => this.port.close(() => resolve())));
    this.markClosed("closed");
  }

  private markClosed(reason: string): void {
    if (this.closedReason !== undefined) return;
    this.closedReason = reason;
    const handlers = this.closeHandlers;
    this.closeHandlers = [];
    for (const h of handlers) h(reason);
  }
}

function explainOpenError(err: Error): string {
  const text = err.message;
  if (/ENOENT|No such file/i.test(text))
    return "no such device (is the adapter plugged in? check ls /dev/ttyUSB*)";
  if (/EACCES|Permission denied/i.test(text))
    return "permission denied (add your user to the dialout group, then log in again)";
  if (/EBUSY|Resource busy|Cannot lock/i.test(text)) return "the port is in use by another program";
  return text.replace(/^Error: /, "");
}

function withinMs(ms: number, work: Promise<void>): Promise<void> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<void>((resolve) => {
    timer = setTimeout(resolve, ms);
  });
  return Promise.race([work, timeout]).finally(() => clearTimeout(timer));
}
