/**
 * `mbpo-arm dynamixel scan --port P [--baud B] [--json]`: lists the servos that answer a broadcast
 * PING on a bus. `mbpo-arm dynamixel reboot --port P --id N`: reboots one servo (clears a latched
 * hardware error once its cause is gone).
 */
import { type Command, InvalidArgumentError } from "commander";
import { DynamixelBus, type PingReply } from "../drivers/dynamixel/bus.js";
import { currentModeRefusal, DYNAMIXEL_BAUDS } from "../drivers/dynamixel/control-table.js";
import { DEFAULT_BAUD } from "../drivers/dynamixel/driver.js";
import { isPseudoTerminal, PTY_LATENCY_MS, usbLatencyTimerMs } from "../drivers/dynamixel/transport.js";

export interface ScanResult {
  port: string;
  baud: number;
  servos: (PingReply & { currentMode: boolean })[];
}

function positiveInteger(name: string) {
  return (value: string): number => {
    const n = Number(value);
    if (!Number.isInteger(n) || n < 0) throw new InvalidArgumentError(`${name} must be a whole number ≥ 0`);
    return n;
  };
}

/** Parses --baud: one of the rates the servos offer, or a usage error listing them. */
export function baudRate(value: string): number {
  const n = Number(value);
  if (!DYNAMIXEL_BAUDS.includes(n)) {
    throw new InvalidArgumentError(`--baud must be one of ${DYNAMIXEL_BAUDS.join(", ")}, got ${value}`);
  }
  return n;
}

/** Opens the port and its bus with a latency that suits the device. */
export async function openBus(port: string, baud: number): Promise<DynamixelBus> {
  // Loaded here, not at the top: other commands never load serialport's native binding.
  const { SerialTransport } = await import("../drivers/dynamixel/serial-transport.js");
  const transport = await SerialTransport.open(port, baud);
  const latencyMs = usbLatencyTimerMs(port) ?? (isPseudoTerminal(port) ? PTY_LATENCY_MS : 16);
  return new DynamixelBus(transport, { latencyMs: Math.max(1, latencyMs) });
}

export async function scanBus(port: string, baud: number): Promise<ScanResult> {
  const bus = await openBus(port, baud);
  try {
    const found = await bus.scan();
    return {
      port,
      baud,
      servos: found.map((s) => ({ ...s, currentMode: currentModeRefusal(s.modelNumber) === undefined })),
    };
  } finally {
    await bus.close();
  }
}

export function formatScan(r: ScanResult): string {
  if (r.servos.length === 0)
    return (
      `no servo answered on ${r.port} at ${r.baud} baud ` +
      "(check power and wiring; servos ship at 57600 baud: try --baud 57600)\n"
    );
  const lines = [
    `${r.servos.length} servo${r.servos.length === 1 ? "" : "s"} on ${r.port} at ${r.baud} baud:`,
  ];
  for (const s of r.servos) {
    const usable = s.currentMode
      ? "current mode: yes"
      : `current mode: NO (${currentModeRefusal(s.modelNumber)})`;
    lines.push(
      `  ID ${String(s.id).padStart(3)}  ${s.model.padEnd(12)} model ${s.modelNumber}, firmware ${s.firmware}  ${usable}`,
    );
  }
  return `${lines.join("\n")}\n`;
}

export function registerDynamixelCommand(program: Command): void {
  const dxl = program.command("dynamixel").description("the Dynamixel servo bus (Protocol 2.0)");
  dxl
    .command("scan")
    .description("list the servos that answer on a bus (broadcast PING)")
    .requiredOption("--port <device>", "serial device, e.g. /dev/ttyUSB0")
    .option("--baud <n>", "baud rate", baudRate, DEFAULT_BAUD)
    .option("--json", "print one JSON object")
    .action(async (flags: { port: string; baud: number; json?: boolean }) => {
      const result = await scanBus(flags.port, flags.baud);
      process.stdout.write(flags.json ? `${JSON.stringify(result)}\n` : formatScan(result));
    });
  dxl
    .command("reboot")
    .description("reboot one servo (clears a hardware error once its cause is gone; torque comes back off)")
    .requiredOption("--port <device>", "serial device, e.g. /dev/ttyUSB0")
    .requiredOption("--id <n>", "servo ID", positiveInteger("--id"))
    .option("--baud <n>", "baud rate", baudRate, DEFAULT_BAUD)
    .action(async (flags: { port: string; id: number; baud: number }) => {
      const bus = await openBus(flags.port, flags.baud);
      try {
        await bus.reboot(flags.id);
        process.stdout.write(`servo ${flags.id} on ${flags.port} rebooted\n`);
      } finally {
        await bus.close();
      }
    });
}
