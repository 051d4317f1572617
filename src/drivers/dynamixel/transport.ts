/**
 * The byte pipe under the bus: a serial port (serial-transport.ts, loaded only when a port is
 * opened, so that commands that never touch a bus do not load serialport's native binding), or
 * anything else that moves bytes.
 */
import { readFileSync, realpathSync } from "node:fs";
import { basename } from "node:path";

export interface Transport {
  /** Where the bytes go, for messages (e.g. "/dev/ttyUSB0"). */
  readonly path: string;
  readonly baud: number;
  readonly isOpen: boolean;
  /** Queues bytes for sending. The array is copied: the caller may reuse it at once. */
  write(bytes: Uint8Array): void;
  /** Sends bytes synchronously where the platform allows (process exit); false when it cannot. */
  writeSync(bytes: Uint8Array): boolean;
  onData(handler: (chunk: Uint8Array) => void): void;
  /** Called once when the link goes away (closed by us, unplugged, or failed), with the reason. */
  onClose(handler: (reason: string) => void): void;
  close(): Promise<void>;
}

/**
 * The USB-serial latency timer (ms) of an FTDI adapter such as the U2D2, from sysfs, or undefined
 * when the path is not such a device. The driver of these adapters holds received bytes up to this
 * long (16 ms by default), which bounds every round trip from below.
 */
export function usbLatencyTimerMs(path: string): number | undefined {
  try {
    const device = basename(realpathSync(path));
    const text = readFileSync(`/sys/bus/usb-serial/devices/${device}/latency_timer`, "utf8");
    const value = Number(text.trim());
    return Number.isFinite(value) ? value : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Latency (ms) assumed for a pseudo-terminal: no USB adapter holds bytes back, but the program on the
 * other end (an emulator, socat) is another process, and on a busy machine the scheduler can delay it
 * (here: 0.6 ms median, 5 ms p99, 12 ms max at a load of 2 on 2 cores; 70 ms seen with a dozen busy
 * processes). 15 ms makes a state-read timeout of 35 ms for four servos: a lost reply is asked for
 * again 35 ms into the tick, and a reply held back for longer is taken by the retry. A tick gives up
 * after 3 attempts (105 ms) and the driver after 3 such ticks, so the other end may stall for about
 * 0.3 s before the driver calls it gone; setup transactions wait 15 timeouts (0.5 s) in all.
 */
export const PTY_LATENCY_MS = 15;

/** Whether the path is a pseudo-terminal (an emulator or a software bridge: no USB latency). */
export function isPseudoTerminal(path: string): boolean {
  try {
    return realpathSync(path).startsWith("/dev/pts/");
  } catch {
    return false;
  }
}
