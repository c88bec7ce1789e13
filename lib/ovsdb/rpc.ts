// JSON-RPC 1.0 over a stream socket as OVSDB speaks it (RFC 7047 §4): requests carry an id and
// get exactly one reply; notifications (id null) get none; the server's "echo" keepalive must be
// answered or it drops us. The server is not trusted: whatever it sends, the worst outcome is
// an OvsdbError('protocol') on the calls and monitors of this connection, which is then closed.
import net from 'node:net';
import { JsonSplitter } from './json-stream.js';
import { OvsdbError, abortError, codeOf, preview } from './errors.js';

/** Default deadline of one request when the caller gives none (ms). */
export const DEFAULT_REQUEST_TIMEOUT = 10_000;
/**
 * Most bytes we let wait in the socket's write queue. A server that keeps sending echo
 * requests but never reads our replies would otherwise grow the heap without bound; past
 * this the connection is closed as a protocol error.
 */
export const MAX_QUEUED_WRITE = 16 << 20;
/** Longest error text kept from a server's reply. */
const MAX_ERROR_TEXT = 1024;

/** Per-request limits: a deadline (ms), an AbortSignal, and the operation named in errors. */
export interface RequestOptions {
  timeout?: number;
  signal?: AbortSignal;
  op?: string;
}

type Pending = { method: string; op: string; resolve: (v: unknown) => void; reject: (e: Error) => void; cleanup: () => void };

export class RpcConnection {
  private readonly pending = new Map<number, Pending>();
  private readonly splitter = new JsonSplitter();
  private nextId = 1;
  private closedError?: OvsdbError;
  private readonly notifyHandlers = new Map<string, (params: unknown) => void>();
  private readonly closeHandlers: ((e: OvsdbError, byClient: boolean) => void)[] = [];
  private byClient = false;

  private constructor(private readonly sock: net.Socket, readonly path: string) {
    sock.on('data', (chunk: Buffer) => this.onData(chunk));
    sock.on('error', (e: NodeJS.ErrnoException) => this.fail(new OvsdbError('ovsdb', 'closed', `connection to ${path} failed: ${e.message}`, { cause: e })));
    sock.on('close', () => this.fail(new OvsdbError('ovsdb', 'closed', `connection to ${path} closed`)));
  }

  /** Connects to a unix socket; a missing socket or a dead server is an OvsdbError with Node's code. */
  static connect(path: string, timeoutMs: number, signal?: AbortSignal): Promise<RpcConnection> {
    return new Promise((resolve, reject) => {
      if (signal?.aborted) { reject(abortError(signal)); return; }
      const sock = net.createConnection({ path });
      const done = () => { clearTimeout(timer); signal?.removeEventListener('abort', onAbort); };
      const onAbort = () => { done(); sock.destroy(); reject(abortError(signal!)); };
      signal?.addEventListener('abort', onAbort, { once: true });
      const timer = setTimeout(() => {
        done();
        sock.destroy();
        reject(new OvsdbError('ovsdb.connect', 'ETIMEDOUT', `no answer from an OVSDB server at ${path} within ${timeoutMs} ms`));
      }, timeoutMs);
      sock.once('error', (e: NodeJS.ErrnoException) => {
        done();
        const why = e.code === 'ENOENT' ? 'no such socket (is ovsdb-server running?)'
          : e.code === 'ECONNREFUSED' ? 'connection refused: the socket exists but no ovsdb-server listens on it'
          : e.code === 'EACCES' ? 'permission denied' : e.message;
        reject(new OvsdbError('ovsdb.connect', e.code ?? 'closed', `cannot connect to ${path}: ${why}`, { cause: e }));
      });
      sock.once('connect', () => {
        done();
        sock.removeAllListeners('error');
        resolve(new RpcConnection(sock, path));
      });
    });
  }

  get closed(): boolean {
    return this.closedError !== undefined;
  }

  /** True when close() ended the connection (not the server or an error). */
  get closedByClient(): boolean {
    return this.byClient;
  }

  /**
   * Sends a request and resolves with its `result`; a non-null `error` rejects. The request
   * rejects with code 'ETIMEDOUT' after `timeout` ms (a reply arriving later is dropped) and
   * with an AbortError when `signal` aborts.
   */
  request(method: string, params: unknown[], opts: RequestOptions = {}): Promise<unknown> {
    const op = opts.op ?? `ovsdb.${method}`;
    if (this.closedError) return Promise.reject(this.closedError);
    const { signal } = opts;
    if (signal?.aborted) return Promise.reject(abortError(signal));
    const timeout = opts.timeout ?? DEFAULT_REQUEST_TIMEOUT;
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      const drop = () => this.pending.delete(id);
      const timer = setTimeout(() => {
        drop();
        cleanup();
        reject(new OvsdbError(op, 'ETIMEDOUT', `no answer to ${method} from ${this.path} within ${timeout} ms`));
      }, Math.max(0, timeout));
      const onAbort = () => { drop(); cleanup(); reject(abortError(signal!)); };
      const cleanup = () => { clearTimeout(timer); signal?.removeEventListener('abort', onAbort); };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.pending.set(id, { method, op, resolve, reject, cleanup });
      this.send({ method, params, id });
    });
  }

  /** Called for every notification with this method (e.g. "update"). A handler that throws closes the connection as a protocol error. */
  onNotify(method: string, fn: (params: unknown) => void): void {
    this.notifyHandlers.set(method, fn);
  }

  /** Called once when the connection ends; returns a function that unsubscribes. */
  onClose(fn: (e: OvsdbError, byClient: boolean) => void): () => void {
    if (this.closedError) {
      // Already over: tell the newcomer now (asynchronously, like any other close).
      const e = this.closedError, by = this.byClient;
      queueMicrotask(() => fn(e, by));
      return () => undefined;
    }
    this.closeHandlers.push(fn);
    return () => {
      const i = this.closeHandlers.indexOf(fn);
      if (i >= 0) this.closeHandlers.splice(i, 1);
    };
  }

  close(): void {
    if (this.closedError) return;
    this.byClient = true;
    this.fail(new OvsdbError('ovsdb', 'closed', 'connection closed by the client'));
  }

  /**
   * The server sent something this client cannot accept: fails every pending call and monitor
   * with an OvsdbError('protocol') and closes the connection. Returns the error (to throw).
   */
  protocolError(op: string, msg: string, cause?: unknown): OvsdbError {
    const e = new OvsdbError(op, 'protocol', `${msg} (from ${this.path}; connection closed)`, cause === undefined ? {} : { cause });
    this.fail(e);
    return this.closedError!.code === 'protocol' ? e : this.closedError!;
  }

  private send(msg: unknown): void {
    if (this.closedError) return;
    this.sock.write(JSON.stringify(msg));
    if (this.sock.writableLength > MAX_QUEUED_WRITE) {
      this.protocolError('ovsdb', `the server is not reading: more than ${MAX_QUEUED_WRITE} bytes wait to be sent to it (overload)`);
    }
  }

  private onData(chunk: Buffer): void {
    if (this.closedError) return;
    let msgs: unknown[];
    try {
      msgs = this.splitter.push(chunk);
    } catch (e) {
      this.protocolError('ovsdb', `bad data: ${(e as Error).message}`, e);
      return;
    }
    for (const m of msgs) {
      if (this.closedError) return;
      try {
        this.dispatch(m);
      } catch (e) {
        // Nothing the server sends may escape into the socket's 'data' event (that would crash the process).
        this.protocolError(e instanceof OvsdbError ? e.op : 'ovsdb', `cannot handle a message: ${(e as Error)?.message ?? String(e)}`, e);
        return;
      }
    }
  }

  private dispatch(raw: unknown): void {
    if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) {
      throw new OvsdbError('ovsdb', 'protocol', `a JSON-RPC message must be an object, got ${preview(raw)}`);
    }
    const m = raw as Record<string, unknown>;
    if (m.method !== undefined) {
      if (typeof m.method !== 'string') throw new OvsdbError('ovsdb', 'protocol', `a JSON-RPC method must be a string, got ${preview(m.method)}`);
      if (m.id !== null && m.id !== undefined) {
        // A request from the server: echo is the only one OVSDB sends.
        if (m.method === 'echo') this.send({ result: m.params ?? [], error: null, id: m.id });
        else this.send({ result: null, error: `unsupported method ${m.method.slice(0, 64)}`, id: m.id });
        return;
      }
      this.notifyHandlers.get(m.method)?.(m.params);
      return;
    }
    const id = m.id;
    if (typeof id !== 'number') return;   // a reply to nothing we sent (e.g. a stray echo reply)
    const p = this.pending.get(id);
    if (!p) return;   // timed out or aborted already
    if (m.error !== null && m.error !== undefined) {
      const err = m.error as Record<string, unknown> | string;
      const text = typeof err === 'string' ? err : typeof err === 'object' && !Array.isArray(err) && typeof err.error === 'string' ? err.error : undefined;
      if (text === undefined) {
        // RFC 7047: an error is a string or an object with an "error" string.
        throw new OvsdbError(p.op, 'protocol', `the reply to ${p.method} has a malformed error: ${preview(err)}`);
      }
      const details = typeof err === 'object' && typeof err.details === 'string' ? err.details.slice(0, MAX_ERROR_TEXT) : undefined;
      const short = text.slice(0, MAX_ERROR_TEXT);
      this.settle(id);
      p.reject(new OvsdbError(p.op, codeOf(short.slice(0, 64)), details ? `${short}: ${details}` : short, { ovsdbError: short, details }));
    } else {
      this.settle(id);
      p.resolve(m.result);
    }
  }

  private settle(id: number): void {
    const p = this.pending.get(id);
    this.pending.delete(id);
    p?.cleanup();
  }

  private fail(e: OvsdbError): void {
    if (this.closedError) return;
    this.closedError = e;
    this.sock.destroy();
    const pending = [...this.pending.values()];
    this.pending.clear();
    for (const p of pending) {
      p.cleanup();
      // Each call's rejection names its own operation.
      p.reject(p.op === e.op ? e : new OvsdbError(p.op, e.code, e.message.slice(e.op.length + 2), { cause: e }));
    }
    for (const fn of this.closeHandlers.splice(0)) {
      try { fn(e, this.byClient); } catch { /* a close handler's failure must not stop the others */ }
    }
  }
}
