// JSON-RPC 1.0 over a stream socket as OVSDB speaks it (RFC 7047 §4): requests carry an id and
// get exactly one reply; notifications (id null) get none; the server's "echo" keepalive must be
// answered or it drops us.
import net from 'node:net';
import { JsonSplitter } from './json-stream.js';
import { OvsdbError, codeOf } from './errors.js';

type Pending = { method: string; resolve: (v: unknown) => void; reject: (e: Error) => void };

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
  static connect(path: string, timeoutMs: number): Promise<RpcConnection> {
    return new Promise((resolve, reject) => {
      const sock = net.createConnection({ path });
      const timer = setTimeout(() => {
        sock.destroy();
        reject(new OvsdbError('ovsdb.connect', 'ETIMEDOUT', `no answer from an OVSDB server at ${path} within ${timeoutMs} ms`));
      }, timeoutMs);
      sock.once('error', (e: NodeJS.ErrnoException) => {
        clearTimeout(timer);
        const why = e.code === 'ENOENT' ? 'no such socket (is ovsdb-server running?)'
          : e.code === 'ECONNREFUSED' ? 'connection refused: the socket exists but no ovsdb-server listens on it'
          : e.code === 'EACCES' ? 'permission denied' : e.message;
        reject(new OvsdbError('ovsdb.connect', e.code ?? 'closed', `cannot connect to ${path}: ${why}`, { cause: e }));
      });
      sock.once('connect', () => {
        clearTimeout(timer);
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

  /** Sends a request and resolves with its `result`; a non-null `error` rejects. */
  request(method: string, params: unknown[]): Promise<unknown> {
    if (this.closedError) return Promise.reject(this.closedError);
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { method, resolve, reject });
      this.send({ method, params, id });
    });
  }

  /** Called for every notification with this method (e.g. "update"). */
  onNotify(method: string, fn: (params: unknown) => void): void {
    this.notifyHandlers.set(method, fn);
  }

  /** Called once when the connection ends; returns a function that unsubscribes. */
  onClose(fn: (e: OvsdbError, byClient: boolean) => void): () => void {
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

  private send(msg: unknown): void {
    this.sock.write(JSON.stringify(msg));
  }

  private onData(chunk: Buffer): void {
    let msgs: unknown[];
    try {
      msgs = this.splitter.push(chunk);
    } catch (e) {
      this.fail(new OvsdbError('ovsdb', 'protocol', `bad data from ${this.path}: ${(e as Error).message}`));
      return;
    }
    for (const m of msgs) this.dispatch(m as Record<string, unknown>);
  }

  private dispatch(m: Record<string, unknown>): void {
    if (m === null || typeof m !== 'object' || Array.isArray(m)) return;
    if (typeof m.method === 'string') {
      if (m.id !== null && m.id !== undefined) {
        // A request from the server: echo is the only one OVSDB sends.
        if (m.method === 'echo') this.send({ result: m.params ?? [], error: null, id: m.id });
        else this.send({ result: null, error: `unsupported method ${m.method}`, id: m.id });
        return;
      }
      this.notifyHandlers.get(m.method)?.(m.params);
      return;
    }
    const id = m.id;
    if (typeof id !== 'number') return;
    const p = this.pending.get(id);
    if (!p) return;
    this.pending.delete(id);
    if (m.error !== null && m.error !== undefined) {
      const err = m.error as any;
      const text = typeof err === 'string' ? err : typeof err?.error === 'string' ? err.error : JSON.stringify(err);
      const details = typeof err?.details === 'string' ? err.details : undefined;
      p.reject(new OvsdbError(`ovsdb.${p.method}`, codeOf(text),
        details ? `${text}: ${details}` : text, { ovsdbError: text, details }));
    } else {
      p.resolve(m.result);
    }
  }

  private fail(e: OvsdbError): void {
    if (this.closedError) return;
    this.closedError = e;
    this.sock.destroy();
    for (const p of this.pending.values()) p.reject(e);
    this.pending.clear();
    for (const fn of this.closeHandlers.splice(0)) fn(e, this.byClient);
  }
}
