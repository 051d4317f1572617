/**
 * Logs: human-readable lines on the console (stderr, so that --json output on stdout stays
 * machine-readable) and JSON lines to a file for later analysis.
 */
import { mkdirSync } from "node:fs";
import { homedir } from "node:os";
import { dirname, join } from "node:path";
import winston from "winston";

export type Logger = winston.Logger;

export interface LoggerOptions {
  /** Console level: "info" normally, "warn" with --json or --quiet, "debug" with --verbose. */
  consoleLevel?: string;
  /** JSON-lines log file; undefined for the default under ~/.mbpo-arm/log, null for none. */
  file?: string | null;
  /** Name of the command, used in the default file name. */
  command?: string;
}

export function defaultLogFile(command: string): string {
  const dir = process.env["MBPO_ARM_LOG_DIR"] ?? join(homedir(), ".mbpo-arm", "log");
  const stamp = new Date().toISOString().replace(/[:.]/g, "-");
  return join(dir, `${command}-${stamp}-${process.pid}.jsonl`);
}

/**
 * Whether console lines are coloured: FORCE_COLOR (anything but "0" or "false") forces it, a
 * non-empty NO_COLOR turns it off, and otherwise only a terminal gets colour (a pipe or a file
 * must not receive ANSI codes).
 */
export function consoleColour(
  env: NodeJS.ProcessEnv = process.env,
  isTTY = process.stderr.isTTY === true,
): boolean {
  const force = env["FORCE_COLOR"];
  if (force !== undefined && force !== "0" && force !== "false") return true;
  if ((env["NO_COLOR"] ?? "") !== "") return false;
  return isTTY;
}

export function createLogger(options: LoggerOptions = {}): { logger: Logger; file: string | null } {
  const transports: winston.transport[] = [
    new winston.transports.Console({
      level: options.consoleLevel ?? "info",
      stderrLevels: ["error", "warn", "info", "verbose", "debug", "silly"],
      // colorize() is left out, not switched off: with { level: false } logform still colours
      // the level whenever the message option is unset.
      format: consoleColour()
        ? winston.format.combine(
            winston.format.colorize({ level: true }),
            winston.format.printf(({ level, message }) => `[${level}] ${message}`),
          )
        : winston.format.printf(({ level, message }) => `[${level}] ${message}`),
    }),
  ];
  let file: string | null = null;
  if (options.file !== null) {
    file = options.file ?? defaultLogFile(options.command ?? "mbpo-arm");
    try {
      mkdirSync(dirname(file), { recursive: true });
      transports.push(
        new winston.transports.File({
          filename: file,
          level: "debug",
          format: winston.format.combine(winston.format.timestamp(), winston.format.json()),
        }),
      );
    } catch (err) {
      // A read-only home must not stop the robot: log to the console only, and say so.
      file = null;
      process.stderr.write(`[warn] cannot write log file (${(err as Error).message}); console only\n`);
    }
  }
  return { logger: winston.createLogger({ level: "debug", transports }), file };
}

const closedLoggers = new WeakSet<Logger>();

/** Whether closeLogger has been called on it (it must not be written to any more). */
export function isLoggerClosed(logger: Logger): boolean {
  return closedLoggers.has(logger);
}

/** Flushes file transports before exit. */
export async function closeLogger(logger: Logger): Promise<void> {
  closedLoggers.add(logger);
  await new Promise<void>((resolve) => {
    logger.on("finish", () => resolve());
    logger.end();
    setTimeout(resolve, 1000).unref();
  });
}
