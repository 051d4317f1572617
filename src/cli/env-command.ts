/**
 * `mbpo-arm env serve`: the robot as a step/reset environment for any learner, over stdin/stdout
 * or a local TCP port (see src/env/server.ts for the protocol's rules and src/env/session.ts for
 * what each request does to the robot).
 */
import type { Config } from "../config/config.js";
import { createControlStack } from "../control/stack.js";
import { serveStreams, serveTcp } from "../env/server.js";
import { EnvSession } from "../env/session.js";
import type { Logger } from "./logger.js";

export interface EnvServeOptions {
  config: Config;
  /** Listen on this TCP port instead of stdin/stdout (0: any free port). */
  port?: number;
  host?: string;
  maxLineBytes?: number;
  logger: Logger;
  signal: AbortSignal;
}

export async function runEnvServe(options: EnvServeOptions): Promise<void> {
  const { config, logger, signal } = options;
  const session = new EnvSession({
    createStack: () => createControlStack(config),
    seed: config.seed,
    log: (level, message) => logger.log(level, `env: ${message}`),
  });
  const { observationSize, actionSize } = session.sizes;
  const where =
    options.port === undefined ? "stdin/stdout" : `${options.host ?? "127.0.0.1"}:${options.port}`;
  logger.info(
    `env serve: driver ${config.driver}, task ${config.task.name}, observation ${observationSize}, ` +
      `action ${actionSize}, ${session.paced ? `paced at ${config.control_rate_hz} Hz` : "unpaced (as fast as the client asks)"}, on ${where}`,
  );
  if (options.port === undefined) {
    await serveStreams(session, process.stdin, (line) => process.stdout.write(line), {
      maxLineBytes: options.maxLineBytes,
      signal,
    });
    // Nothing more will be read: let the process end even if the client keeps the pipe open.
    process.stdin.destroy();
  } else {
    await serveTcp(session, {
      port: options.port,
      host: options.host,
      maxLineBytes: options.maxLineBytes,
      signal,
      // stdout carries no protocol in TCP mode: one line tells a launcher which port was bound.
      onListening: (address) => {
        process.stdout.write(`${JSON.stringify({ listening: address })}\n`);
        logger.info(`env serve: listening on ${address.host}:${address.port}`);
      },
      onClient: (event, peer) => logger.info(`env serve: client ${peer} ${event}`),
    });
  }
  logger.info("env serve: closed; robot stopped");
}
