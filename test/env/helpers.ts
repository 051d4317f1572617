/** Drives `mbpo-arm env serve` as a client would: a real child process, over its pipes or TCP. */
import { type ChildProcessWithoutNullStreams, spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { connect, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { packageRoot } from "../../src/util/paths.js";

export const MAIN = join(packageRoot(), "dist", "src", "cli", "main.js");

export type Response = Record<string, unknown> & { error?: string };

/** Reads lines from a stream and hands them out in order. */
class LineQueue {
  private buffer = "";
  private readonly lines: string[] = [];
  private readonly waiting: ((line: string | undefined) => void)[] = [];
  private ended = false;

  feed(chunk: Buffer | string): void {
    this.buffer += chunk.toString();
    let nl = this.buffer.indexOf("\n");
    while (nl !== -1) {
      const line = this.buffer.slice(0, nl);
      this.buffer = this.buffer.slice(nl + 1);
      const waiter = this.waiting.shift();
      if (waiter !== undefined) waiter(line);
      else this.lines.push(line);
      nl = this.buffer.indexOf("\n");
    }
  }

  end(): void {
    this.ended = true;
    for (const waiter of this.waiting.splice(0)) waiter(undefined);
  }

  next(timeoutMs = 60_000): Promise<string | undefined> {
    const line = this.lines.shift();
    if (line !== undefined) return Promise.resolve(line);
    if (this.ended) return Promise.resolve(undefined);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error("no response line within the timeout")), timeoutMs);
      this.waiting.push((l) => {
        clearTimeout(timer);
        resolve(l);
      });
    });
  }
}

/** A connection to a server: send a request (object or raw text), get the response object. */
export class EnvClient {
  private readonly queue = new LineQueue();
  constructor(
    private readonly writeRaw: (text: string) => void,
    input: NodeJS.ReadableStream,
  ) {
    input.on("data", (chunk) => this.queue.feed(chunk));
    input.on("end", () => this.queue.end());
    input.on("close", () => this.queue.end());
  }

  /** Sends a raw line (a newline is added) and waits for one response line. */
  async raw(text: string): Promise<Response> {
    this.writeRaw(`${text}\n`);
    return this.read();
  }

  request(message: Record<string, unknown>): Promise<Response> {
    return this.raw(JSON.stringify(message));
  }

  /** Sends without waiting (for lines split over several writes). */
  write(text: string): void {
    this.writeRaw(text);
  }

  async read(): Promise<Response> {
    const line = await this.queue.next();
    if (line === undefined) throw new Error("the server closed the connection");
    return JSON.parse(line) as Response;
  }

  /** Resolves to undefined once the server has closed the stream. */
  nextLine(): Promise<string | undefined> {
    return this.queue.next();
  }
}

export interface ServerProcess {
  child: ChildProcessWithoutNullStreams;
  stderr: () => string;
  exited: Promise<number | null>;
}

/** Every server started, so that a failed test cannot leave one running (and the test runner waiting). */
const running = new Set<ChildProcessWithoutNullStreams>();

/** Kills the servers still running and removes their log directory; call from an `after` hook. */
export function killServers(): void {
  for (const child of running)
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
  running.clear();
  if (serverLogDir !== undefined) rmSync(serverLogDir, { recursive: true, force: true });
  serverLogDir = undefined;
}

/** Where the servers' log files go (--no-log-file aside, a server may still make the directory). */
let serverLogDir: string | undefined;
function logDir(): string {
  serverLogDir ??= mkdtempSync(join(tmpdir(), "mbpo-env-log-"));
  return serverLogDir;
}

export function startServer(args: string[]): ServerProcess {
  const child = spawn(process.execPath, [MAIN, "env", "serve", "--no-log-file", ...args], {
    env: { ...process.env, MBPO_ARM_LOG_DIR: logDir() },
  });
  let stderr = "";
  child.stderr.on("data", (c) => {
    stderr += c.toString();
  });
  running.add(child);
  const exited = new Promise<number | null>((resolve) =>
    child.on("exit", (code) => {
      running.delete(child);
      resolve(code);
    }),
  );
  return { child, stderr: () => stderr, exited };
}

/** A server on stdin/stdout, and a client on its pipes. */
export function startStdioServer(args: string[] = []): ServerProcess & { client: EnvClient } {
  const server = startServer(args);
  const client = new EnvClient((text) => server.child.stdin.write(text), server.child.stdout);
  return { ...server, client };
}

/** A server on a free TCP port; resolves once it is listening. */
export async function startTcpServer(args: string[] = []): Promise<ServerProcess & { port: number }> {
  const server = startServer(["--port", "0", ...args]);
  const stdout = new LineQueue();
  server.child.stdout.on("data", (c) => stdout.feed(c));
  const line = await stdout.next(30_000);
  if (line === undefined) throw new Error(`server did not start: ${server.stderr()}`);
  const { listening } = JSON.parse(line) as { listening: { port: number } };
  return { ...server, port: listening.port };
}

export async function connectTcp(port: number): Promise<{ client: EnvClient; socket: Socket }> {
  const socket = connect(port, "127.0.0.1");
  await new Promise<void>((resolve, reject) => {
    socket.once("connect", () => resolve());
    socket.once("error", reject);
  });
  socket.setNoDelay(true);
  return { client: new EnvClient((text) => socket.write(text), socket), socket };
}

/** Float32 values as the server sends them (doubles): exact for values that are float32 already. */
export function numbers(value: unknown): number[] {
  return value as number[];
}
