/**
 * Serves an EnvSession over lines of JSON: on stdin/stdout (one client, the process that started
 * the server) or on a TCP port (one client at a time; others are told the server is busy).
 *
 * One worker owns the robot and answers requests strictly in order, exactly one response line per
 * request line: a blank line too gets an error, so that a lock-step client (write one line, read
 * one line) can never wait for an answer that does not come. Between requests, a paced robot (a real arm, or the
 * twin on wall-clock time) is held (gravity compensation plus damping) at the control rate, so the
 * arm is never left without a command while the client thinks; a stepped simulator just waits.
 *
 * Ending: `close` answers {"ok":true} and ends the server; so do the end of stdin and an abort
 * (Ctrl-C). A TCP client that disconnects without `close` abandons its episode; the server keeps
 * holding the arm and waits for the next client.
 */
import { createServer, type Socket } from "node:net";
import type { Readable } from "node:stream";
import { type LineItem, LineSplitter } from "./lines.js";
import { ProtocolError, parseRequest, type Request, type RequestId } from "./protocol.js";
import type { EnvSession } from "./session.js";

/** Default bound on a request line: room for a reward batch of several thousand transitions. */
export const DEFAULT_MAX_LINE_BYTES = 16 * 1024 * 1024;

type Reply = (line: string) => void;

type WorkItem =
  | { kind: "line"; item: LineItem; reply: Reply }
  /** A TCP client went away: its episode is over. */
  | { kind: "disconnect" };

/** Answers queued requests in order, and holds a paced robot while the queue is empty. */
export class EnvWorker {
  private readonly session: EnvSession;
  /** Requests waiting, from `head` on (a client may send many lines before reading any answer). */
  private queue: WorkItem[] = [];
  private head = 0;
  private wake: (() => void) | undefined;
  private stopped = false;
  /** The input has ended: answer what is queued, then end run(). */
  private finishing = false;
  /** Requests answered, and those answered with an error. */
  requests = 0;
  errors = 0;

  constructor(session: EnvSession) {
    this.session = session;
  }

  push(item: WorkItem): void {
    this.queue.push(item);
    this.notify();
  }

  /** Ends run() after the request in progress (if any). */
  stop(): void {
    this.stopped = true;
    this.notify();
  }

  /** Ends run() once every request already queued has been answered (the input has ended). */
  finish(): void {
    this.finishing = true;
    this.notify();
  }

  /** Serves until stop(), a `close` request, or finish() and an empty queue. */
  async run(): Promise<void> {
    while (!this.stopped) {
      const work = this.take();
      if (work !== undefined) {
        if (work.kind === "disconnect") this.session.abandonEpisode();
        else if (await this.answer(work.item, work.reply)) this.stopped = true;
        continue;
      }
      if (this.finishing) break;
      if (this.session.paced) {
        await this.session.hold();
      } else {
        await new Promise<void>((resolve) => {
          this.wake = resolve;
        });
      }
    }
  }

  /** Answers one line; returns true when it was `close`. */
  private async answer(item: LineItem, reply: Reply): Promise<boolean> {
    if ("tooLongBytes" in item) {
      this.respondError(
        reply,
        `line too long: ${item.tooLongBytes} bytes, the limit is set by --max-line-bytes`,
      );
      return false;
    }
    if (item.line.trim() === "") {
      this.respondError(reply, 'empty line: expected one JSON request per line, such as {"cmd":"spec"}');
      return false;
    }
    let request: Request;
    try {
      request = parseRequest(item.line, this.session.sizes, this.session.actionBuffer);
    } catch (err) {
      this.respondError(reply, (err as Error).message, (err as ProtocolError).id);
      return false;
    }
    try {
      const body = await this.execute(request);
      this.requests++;
      reply(encode(request.id === undefined ? body : { ...body, id: request.id }));
      return request.cmd === "close";
    } catch (err) {
      // A request the robot could not serve (no episode, a fault, a driver error): the client is
      // told, the server goes on.
      const message =
        err instanceof ProtocolError ? err.message : `${request.cmd}: ${(err as Error).message}`;
      this.respondError(reply, message, request.id);
      return false;
    }
  }

  private async execute(request: Request): Promise<Record<string, unknown>> {
    switch (request.cmd) {
      case "spec":
        return this.session.spec();
      case "reset": {
        const { cmd: _cmd, id: _id, ...reset } = request;
        return this.session.reset(reset);
      }
      case "step":
        return this.session.step();
      case "reward":
        return this.session.reward(request.batch, request.encoding);
      case "close":
        return { ok: true };
    }
  }

  private respondError(reply: Reply, message: string, id?: RequestId): void {
    this.requests++;
    this.errors++;
    reply(encode(id === undefined ? { error: message } : { error: message, id }));
  }

  /** The oldest waiting item, in O(1) (Array.shift is O(n) on a long queue). */
  private take(): WorkItem | undefined {
    if (this.head >= this.queue.length) {
      if (this.head > 0) {
        this.queue = [];
        this.head = 0;
      }
      return undefined;
    }
    const item = this.queue[this.head];
    this.queue[this.head++] = undefined as unknown as WorkItem;
    return item;
  }

  private notify(): void {
    const wake = this.wake;
    this.wake = undefined;
    wake?.();
  }
}

/** One response line. JSON.stringify writes NaN and ±Infinity as null (see protocol.ts). */
function encode(body: Record<string, unknown>): string {
  return `${JSON.stringify(body)}\n`;
}

export interface ServeOptions {
  maxLineBytes?: number;
  /** Stops the server (Ctrl-C): the request in progress finishes, then the robot is stopped. */
  signal?: AbortSignal;
}

/**
 * Serves one client on a pair of streams (stdin and stdout) until `close`, the end of the input
 * or the signal. Stops the robot before returning.
 */
export async function serveStreams(
  session: EnvSession,
  input: Readable,
  write: (line: string) => void,
  options: ServeOptions = {},
): Promise<void> {
  const worker = new EnvWorker(session);
  const splitter = new LineSplitter(options.maxLineBytes ?? DEFAULT_MAX_LINE_BYTES, (item) =>
    worker.push({ kind: "line", item, reply: write }),
  );
  const onData = (chunk: Buffer) => splitter.push(chunk);
  // A client may write all its requests and close its end at once: answer them all first.
  const onEnd = () => {
    splitter.end();
    worker.finish();
  };
  input.on("data", onData);
  input.on("end", onEnd);
  const onAbort = () => worker.stop();
  options.signal?.addEventListener("abort", onAbort);
  try {
    await session.start();
    if (options.signal?.aborted !== true) await worker.run();
  } finally {
    input.off("data", onData);
    input.off("end", onEnd);
    options.signal?.removeEventListener("abort", onAbort);
    input.pause();
    await session.close();
  }
}

export interface TcpOptions extends ServeOptions {
  /** Address to listen on; default 127.0.0.1 (this machine only). */
  host?: string;
  /** 0 picks a free port. */
  port: number;
  /** Called once listening, with the port actually bound. */
  onListening?: (address: { host: string; port: number }) => void;
  /** Client connections and departures, for the log. */
  onClient?: (event: "connected" | "disconnected" | "refused", peer: string) => void;
}

/** Serves clients one at a time on a TCP port until `close` or the signal. Stops the robot before returning. */
export async function serveTcp(session: EnvSession, options: TcpOptions): Promise<void> {
  const worker = new EnvWorker(session);
  const maxLineBytes = options.maxLineBytes ?? DEFAULT_MAX_LINE_BYTES;
  let current: Socket | undefined;
  let finished = false;
  const server = createServer((socket) => {
    const peer = `${socket.remoteAddress}:${socket.remotePort}`;
    socket.setNoDelay(true);
    socket.on("error", () => {}); // a reset connection ends like a closed one ("close" follows)
    if (current !== undefined) {
      options.onClient?.("refused", peer);
      socket.end(encode({ error: "busy: another client is connected to this robot" }));
      return;
    }
    current = socket;
    options.onClient?.("connected", peer);
    const reply: Reply = (line) => {
      if (!socket.destroyed) socket.write(line);
    };
    const splitter = new LineSplitter(maxLineBytes, (item) => worker.push({ kind: "line", item, reply }));
    socket.on("data", (chunk: Buffer) => splitter.push(chunk));
    socket.on("end", () => splitter.end());
    socket.on("close", () => {
      if (current === socket) current = undefined;
      // After the server has finished, the last client's departure is no news (the log is closed).
      if (finished) return;
      worker.push({ kind: "disconnect" });
      options.onClient?.("disconnected", peer);
    });
  });
  const onAbort = () => worker.stop();
  options.signal?.addEventListener("abort", onAbort);
  try {
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(options.port, options.host ?? "127.0.0.1", () => {
        server.off("error", reject);
        resolve();
      });
    });
    const address = server.address();
    if (address !== null && typeof address === "object") {
      options.onListening?.({ host: address.address, port: address.port });
    }
    await session.start();
    if (options.signal?.aborted !== true) await worker.run();
  } finally {
    options.signal?.removeEventListener("abort", onAbort);
    await session.close();
    // The last response (to `close`) is flushed before the socket is closed.
    const last = current;
    last?.end(() => last.destroy());
    finished = true;
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}
