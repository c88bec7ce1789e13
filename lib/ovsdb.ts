// An Open vSwitch configuration client speaking OVSDB's JSON-RPC (RFC 7047) over its unix
// socket, the way ovs-vsctl does: read, then write in one transaction guarded by `wait`
// operations on what was read (retrying when another client got there first), bump
// Open_vSwitch.next_cfg and wait until ovs-vswitchd reports the same cur_cfg.
import { RpcConnection } from './ovsdb/rpc.js';
import { OvsdbError, codeOf } from './ovsdb/errors.js';
import { map, mapOf, namedUuid, optional, set, setOf, uuid } from './ovsdb/datum.js';
import * as v from './validate.js';

export { OvsdbError } from './ovsdb/errors.js';

const DB = 'Open_vSwitch';
const MAX_RETRIES = 100;

/** Options of {@link Ovsdb.connect}. */
export interface OvsdbConnectOptions {
  /** How long a change may take to be applied by ovs-vswitchd, and connect to answer (ms, default 10000). */
  timeout?: number;
  /** Wait for ovs-vswitchd to apply each change (default true). `false` is ovs-vsctl's `--no-wait`. */
  wait?: boolean;
}

/** Options of {@link Ovsdb.addBridge}. */
export interface AddBridgeOptions {
  /** 'system' (kernel datapath) or 'netdev' (userspace datapath); OVS's default is 'system'. */
  datapathType?: string;
  /** What the bridge does with no controller: 'standalone' (a learning switch) or 'secure'. */
  failMode?: 'standalone' | 'secure';
  externalIds?: Record<string, string>;
  otherConfig?: Record<string, string>;
  /** No error when a bridge of this name exists already (ovs-vsctl --may-exist). */
  mayExist?: boolean;
}

/** Options of {@link Ovsdb.addPort}. */
export interface AddPortOptions {
  /** The interface type: '' or 'system' (an existing netdev such as a tap), 'internal', 'tap', 'patch', 'vxlan', ... */
  type?: string;
  /** Access VLAN (0–4095). */
  tag?: number;
  /** VLANs a trunk port carries. */
  trunks?: number[];
  vlanMode?: 'trunk' | 'access' | 'native-tagged' | 'native-untagged' | 'dot1q-tunnel';
  /** Interface external_ids; libvirt sets attached-mac, iface-id, iface-status and vm-id. */
  externalIds?: Record<string, string>;
  /** Port external_ids. */
  portExternalIds?: Record<string, string>;
  /** Interface options (e.g. { peer: 'patch1' } for a patch port). */
  options?: Record<string, string>;
  /** The OpenFlow port number to ask for (1–65279). */
  ofportRequest?: number;
  /** No error when this port exists already on this bridge (ovs-vsctl --may-exist). */
  mayExist?: boolean;
}

/** An Interface row. */
export interface OvsInterface {
  uuid: string;
  name: string;
  /** '' is a system device (e.g. a tap made elsewhere). */
  type: string;
  /** OpenFlow port number once ovs-vswitchd opened it; -1 when it could not. */
  ofport?: number;
  ofportRequest?: number;
  /** Why ovs-vswitchd could not open or configure the interface. */
  error?: string;
  linkState?: 'up' | 'down';
  adminState?: 'up' | 'down';
  mac?: string;
  externalIds: Record<string, string>;
  options: Record<string, string>;
}

/** A Port row with its interfaces. */
export interface OvsPort {
  uuid: string;
  name: string;
  bridge: string;
  tag?: number;
  trunks: number[];
  vlanMode?: string;
  externalIds: Record<string, string>;
  interfaces: OvsInterface[];
  /** The OpenFlow port number of its (first) interface. */
  ofport?: number;
}

/** A Bridge row with its ports. */
export interface OvsBridge {
  uuid: string;
  name: string;
  datapathType: string;
  failMode?: string;
  externalIds: Record<string, string>;
  otherConfig: Record<string, string>;
  ports: OvsPort[];
}

/** What `ovs-vsctl show` tells. */
export interface OvsShow {
  /** The Open_vSwitch row's uuid (the first line of `ovs-vsctl show`). */
  uuid: string;
  ovsVersion?: string;
  bridges: OvsBridge[];
}

/** A change to an Interface row, from {@link Ovsdb.monitor}. */
export interface InterfaceEvent {
  /** 'initial' for rows that existed when the monitor started. */
  type: 'initial' | 'insert' | 'modify' | 'delete';
  interface: OvsInterface;
}

type Row = Record<string, unknown>;

interface Snapshot {
  root: Row;
  bridges: Map<string, Row>;   // by uuid
  ports: Map<string, Row>;
  ifaces: Map<string, Row>;
}

/** A transaction plan: operations to run, or a result when there is nothing to do. */
type Plan<T> = { ops: Row[]; after?: (snap: Snapshot) => Promise<T> | T } | { result: T };

const ROOT_COLS = ['_uuid', 'bridges', 'next_cfg', 'cur_cfg', 'ovs_version'];
const BRIDGE_COLS = ['_uuid', 'name', 'ports', 'datapath_type', 'fail_mode', 'external_ids', 'other_config'];
const PORT_COLS = ['_uuid', 'name', 'interfaces', 'tag', 'trunks', 'vlan_mode', 'external_ids'];
const IFACE_COLS = ['_uuid', 'name', 'type', 'ofport', 'ofport_request', 'error', 'link_state', 'admin_state', 'mac_in_use', 'external_ids', 'options'];

const byUuid = (u: string) => [['_uuid', '==', uuid(u)]];
const uuidOf = (r: Row) => String(optional(r._uuid));

/**
 * A connection to ovsdb-server holding Open vSwitch's configuration. Every change is one
 * transaction guarded like ovs-vsctl's, and resolves once ovs-vswitchd has applied it.
 *
 * Equivalent to: `ovs-vsctl add-br`, `add-port`, `del-port`, `del-br`, `list-br`, `list-ports`, `show`.
 *
 * @example
 * await using ovs = await Ovsdb.connect('/var/run/openvswitch/db.sock');
 * await ovs.addBridge('ovsbr0', { datapathType: 'netdev', mayExist: true });
 * const port = await ovs.addPort('ovsbr0', 'vnet0', { externalIds: { 'vm-id': 'x' } });
 * console.log(port.ofport);
 */
export class Ovsdb {
  private curCfg = -1;
  private cfgMonitor?: Promise<void>;
  private cfgWaiters: { target: number; resolve: () => void; reject: (e: Error) => void; timer: NodeJS.Timeout }[] = [];
  private readonly monitors = new Map<string, (updates: any) => void>();
  private monitorSeq = 0;
  private writeQueue: Promise<void> = Promise.resolve();
  private readonly timeout: number;
  private readonly waitApply: boolean;
  #retries = 0;

  /** How many transactions were re-planned because another writer changed what they had read. */
  get retries(): number {
    return this.#retries;
  }

  private constructor(private readonly rpc: RpcConnection, opts: { timeout: number; wait: boolean }) {
    this.timeout = opts.timeout;
    this.waitApply = opts.wait;
    rpc.onNotify('update', (params) => {
      if (!Array.isArray(params) || params.length < 2) return;
      this.monitors.get(String(params[0]))?.(params[1]);
    });
    rpc.onClose((e) => {
      for (const w of this.cfgWaiters.splice(0)) { clearTimeout(w.timer); w.reject(e); }
    });
  }

  /**
   * Connects to ovsdb-server's unix socket and checks it serves the Open_vSwitch database.
   * A path with no socket (ENOENT) or no server behind it (ECONNREFUSED) rejects with an
   * {@link OvsdbError} carrying that code.
   *
   * @example
   * const ovs = await Ovsdb.connect();   // /var/run/openvswitch/db.sock
   */
  static async connect(path = '/var/run/openvswitch/db.sock', opts: OvsdbConnectOptions = {}): Promise<Ovsdb> {
    const op = 'ovsdb.connect';
    v.str(op, 'path', path);
    if (path.length === 0) throw v.rangeError(op, 'path', 'must not be empty');
    v.object(op, 'options', opts);
    v.knownKeys(op, '', opts as Record<string, unknown>, ['timeout', 'wait']);
    const timeout = opts.timeout === undefined ? 10_000 : v.uint(op, 'timeout', opts.timeout, 1, 3_600_000);
    const wait = opts.wait === undefined ? true : v.bool(op, 'wait', opts.wait);
    const rpc = await RpcConnection.connect(path, timeout);
    try {
      const dbs = await withTimeout(rpc.request('list_dbs', []), timeout, op, `no answer from ${path}`);
      if (!Array.isArray(dbs) || !dbs.includes(DB)) {
        throw new OvsdbError(op, 'unknown-database', `${path} does not serve the ${DB} database (it has: ${JSON.stringify(dbs)})`);
      }
    } catch (e) {
      rpc.close();
      throw e;
    }
    return new Ovsdb(rpc, { timeout, wait });
  }

  /** Closes the connection: pending calls reject with code 'closed' and monitors end. */
  async close(): Promise<void> {
    this.rpc.close();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  /**
   * Runs raw RFC 7047 operations as one transaction and returns their results; any
   * operation's error (or a commit error) rejects with an {@link OvsdbError}.
   */
  async transact(operations: Row[]): Promise<Row[]> {
    return this.txn('ovsdb.transact', operations);
  }

  /**
   * Creates a bridge with its local internal port.
   *
   * Equivalent to: `ovs-vsctl add-br NAME -- set bridge NAME datapath_type=netdev`
   *
   * @example
   * await ovs.addBridge('ovsbr0', { datapathType: 'netdev', failMode: 'standalone' });
   */
  async addBridge(name: string, opts: AddBridgeOptions = {}): Promise<OvsBridge> {
    const op = 'ovsdb.addBridge';
    v.ifname(op, 'name', name);
    v.object(op, 'options', opts);
    v.knownKeys(op, '', opts as Record<string, unknown>, ['datapathType', 'failMode', 'externalIds', 'otherConfig', 'mayExist']);
    const row: Row = { name };
    if (opts.datapathType !== undefined) row.datapath_type = token(op, 'datapathType', opts.datapathType);
    if (opts.failMode !== undefined) row.fail_mode = v.oneOf(op, 'failMode', opts.failMode, ['standalone', 'secure'] as const);
    if (opts.externalIds !== undefined) row.external_ids = map(strMap(op, 'externalIds', opts.externalIds));
    if (opts.otherConfig !== undefined) row.other_config = map(strMap(op, 'otherConfig', opts.otherConfig));
    const mayExist = opts.mayExist === undefined ? false : v.bool(op, 'mayExist', opts.mayExist);

    return this.run<OvsBridge>(op, (s) => {
      const existing = findByName(s.bridges, name);
      if (existing) {
        if (mayExist) return { result: bridgeView(s, existing) };
        throw new OvsdbError(op, 'exists', `bridge ${name} already exists`);
      }
      const owner = portOwner(s, name);
      if (owner) throw new OvsdbError(op, 'exists', `a port named ${name} already exists on bridge ${owner}`);
      const rootUuid = uuidOf(s.root);
      const oldBridges = setOf(s.root.bridges).map(String);
      return {
        ops: [
          waitEq('Open_vSwitch', rootUuid, 'bridges', set(oldBridges.map(uuid))),
          { op: 'insert', table: 'Interface', 'uuid-name': 'iface', row: { name, type: 'internal' } },
          { op: 'insert', table: 'Port', 'uuid-name': 'port', row: { name, interfaces: namedUuid('iface') } },
          { op: 'insert', table: 'Bridge', 'uuid-name': 'bridge', row: { ...row, ports: namedUuid('port') } },
          { op: 'update', table: 'Open_vSwitch', where: byUuid(rootUuid), row: { bridges: set([...oldBridges.map(uuid), namedUuid('bridge')]) } },
        ],
        after: async () => {
          const s2 = await this.snapshot();
          const b = findByName(s2.bridges, name);
          if (!b) throw new OvsdbError(op, 'not-found', `bridge ${name} vanished right after it was created`);
          return bridgeView(s2, b);
        },
      };
    });
  }

  /**
   * Deletes a bridge with all its ports (the database drops the unreferenced rows).
   *
   * Equivalent to: `ovs-vsctl [--if-exists] del-br NAME`
   *
   * @example
   * await ovs.delBridge('ovsbr0');
   */
  async delBridge(name: string, opts: { ifExists?: boolean } = {}): Promise<void> {
    const op = 'ovsdb.delBridge';
    v.ifname(op, 'name', name);
    v.object(op, 'options', opts);
    v.knownKeys(op, '', opts as Record<string, unknown>, ['ifExists']);
    const ifExists = opts.ifExists === undefined ? false : v.bool(op, 'ifExists', opts.ifExists);
    await this.run(op, (s) => {
      const b = findByName(s.bridges, name);
      if (!b) {
        if (ifExists) return { result: undefined };
        throw new OvsdbError(op, 'not-found', `no bridge named ${name}`);
      }
      const rootUuid = uuidOf(s.root);
      const oldBridges = setOf(s.root.bridges).map(String);
      const ops: Row[] = [
        waitEq('Open_vSwitch', rootUuid, 'bridges', set(oldBridges.map(uuid))),
        { op: 'update', table: 'Open_vSwitch', where: byUuid(rootUuid), row: { bridges: set(oldBridges.filter((u) => u !== uuidOf(b)).map(uuid)) } },
      ];
      // Explicit deletes too, so nothing lingers even if a row is referenced from elsewhere.
      for (const p of setOf(b.ports).map(String)) {
        const pr = s.ports.get(p);
        for (const i of setOf(pr?.interfaces).map(String)) ops.push({ op: 'delete', table: 'Interface', where: byUuid(i) });
        ops.push({ op: 'delete', table: 'Port', where: byUuid(p) });
      }
      ops.push({ op: 'delete', table: 'Bridge', where: byUuid(uuidOf(b)) });
      return { ops };
    });
  }

  /**
   * Adds a port with one interface of the same name to a bridge, and waits until
   * ovs-vswitchd has opened it: an interface it could not open rejects with code
   * 'interface-error' (and the port is removed again) instead of succeeding silently.
   * (With `wait: false` on connect nothing waits for ovs-vswitchd, so this check is skipped.)
   *
   * Equivalent to: `ovs-vsctl add-port BRIDGE IFACE -- set interface IFACE external_ids:iface-id=...`
   *
   * @example
   * const p = await ovs.addPort('ovsbr0', 'vnet0', {
   *   externalIds: { 'attached-mac': '52:54:00:12:34:56', 'iface-id': id, 'iface-status': 'active', 'vm-id': vmId },
   * });
   * p.ofport; // 1
   */
  async addPort(bridge: string, iface: string, opts: AddPortOptions = {}): Promise<OvsPort> {
    const op = 'ovsdb.addPort';
    v.ifname(op, 'bridge', bridge);
    v.ifname(op, 'iface', iface);
    v.object(op, 'options', opts);
    v.knownKeys(op, '', opts as Record<string, unknown>,
      ['type', 'tag', 'trunks', 'vlanMode', 'externalIds', 'portExternalIds', 'options', 'ofportRequest', 'mayExist']);
    const ifRow: Row = { name: iface };
    const portRow: Row = { name: iface };
    if (opts.type !== undefined) ifRow.type = opts.type === '' ? '' : token(op, 'type', opts.type);
    if (opts.externalIds !== undefined) ifRow.external_ids = map(strMap(op, 'externalIds', opts.externalIds));
    if (opts.options !== undefined) ifRow.options = map(strMap(op, 'options', opts.options));
    if (opts.ofportRequest !== undefined) ifRow.ofport_request = v.uint(op, 'ofportRequest', opts.ofportRequest, 1, 65279);
    if (opts.tag !== undefined) portRow.tag = v.uint(op, 'tag', opts.tag, 0, 4095);
    if (opts.trunks !== undefined) {
      if (!Array.isArray(opts.trunks)) throw v.typeError(op, 'trunks', 'must be an array of VLAN ids');
      portRow.trunks = set([...new Set(opts.trunks.map((t, i) => v.uint(op, `trunks[${i}]`, t, 0, 4095)))].sort((a, b) => a - b));
    }
    if (opts.vlanMode !== undefined) {
      portRow.vlan_mode = v.oneOf(op, 'vlanMode', opts.vlanMode, ['trunk', 'access', 'native-tagged', 'native-untagged', 'dot1q-tunnel'] as const);
    }
    if (opts.portExternalIds !== undefined) portRow.external_ids = map(strMap(op, 'portExternalIds', opts.portExternalIds));
    const mayExist = opts.mayExist === undefined ? false : v.bool(op, 'mayExist', opts.mayExist);

    const port = await this.run<OvsPort>(op, (s) => {
      const b = findByName(s.bridges, bridge);
      if (!b) throw new OvsdbError(op, 'not-found', `no bridge named ${bridge}`);
      const owner = portOwner(s, iface);
      if (owner !== undefined) {
        if (mayExist && owner === bridge) return { result: portView(s, bridge, findByName(s.ports, iface)!) };
        throw new OvsdbError(op, 'exists', `a port named ${iface} already exists on bridge ${owner}`);
      }
      if (findByName(s.ifaces, iface)) throw new OvsdbError(op, 'exists', `an interface named ${iface} already exists`);
      const oldPorts = setOf(b.ports).map(String);
      return {
        ops: [
          waitEq('Bridge', uuidOf(b), 'ports', set(oldPorts.map(uuid))),
          { op: 'insert', table: 'Interface', 'uuid-name': 'iface', row: ifRow },
          { op: 'insert', table: 'Port', 'uuid-name': 'port', row: { ...portRow, interfaces: namedUuid('iface') } },
          { op: 'update', table: 'Bridge', where: byUuid(uuidOf(b)), row: { ports: set([...oldPorts.map(uuid), namedUuid('port')]) } },
        ],
        after: async () => {
          const s2 = await this.snapshot();
          const p = findByName(s2.ports, iface);
          if (!p) throw new OvsdbError(op, 'not-found', `port ${iface} vanished right after it was added`);
          return portView(s2, bridge, p);
        },
      };
    });
    if (this.waitApply) {
      const bad = port.interfaces.find((i) => i.error !== undefined || i.ofport === -1);
      if (bad) {
        // Do not leave a port OVS could not open behind: the caller sees a failure, not half a port.
        await this.delPort(bridge, iface, { ifExists: true }).catch(() => undefined);
        throw new OvsdbError(op, 'interface-error',
          `ovs-vswitchd could not open interface ${bad.name}: ${bad.error ?? 'ofport -1'}`, { details: bad.error });
      }
    }
    return port;
  }

  /**
   * Removes a port (and its interfaces) from a bridge. `bridge` may be null to find it on any bridge.
   *
   * Equivalent to: `ovs-vsctl [--if-exists] del-port [BRIDGE] PORT`
   *
   * @example
   * await ovs.delPort('ovsbr0', 'vnet0');
   */
  async delPort(bridge: string | null, port: string, opts: { ifExists?: boolean } = {}): Promise<void> {
    const op = 'ovsdb.delPort';
    if (bridge !== null) v.ifname(op, 'bridge', bridge);
    v.ifname(op, 'port', port);
    v.object(op, 'options', opts);
    v.knownKeys(op, '', opts as Record<string, unknown>, ['ifExists']);
    const ifExists = opts.ifExists === undefined ? false : v.bool(op, 'ifExists', opts.ifExists);
    await this.run(op, (s) => {
      if (bridge !== null && !findByName(s.bridges, bridge)) throw new OvsdbError(op, 'not-found', `no bridge named ${bridge}`);
      const p = findByName(s.ports, port);
      const owner = p ? portOwner(s, port) : undefined;
      if (!p || owner === undefined || (bridge !== null && owner !== bridge)) {
        if (ifExists && (!p || owner === undefined)) return { result: undefined };
        if (p && owner !== undefined) throw new OvsdbError(op, 'not-found', `port ${port} is on bridge ${owner}, not ${bridge}`);
        throw new OvsdbError(op, 'not-found', `no port named ${port}${bridge !== null ? ` on bridge ${bridge}` : ''}`);
      }
      if (owner === port) {
        throw new OvsdbError(op, 'local-port', `port ${port} is the local port of bridge ${owner}: delete the bridge instead`);
      }
      const b = findByName(s.bridges, owner)!;
      const oldPorts = setOf(b.ports).map(String);
      const ops: Row[] = [
        waitEq('Bridge', uuidOf(b), 'ports', set(oldPorts.map(uuid))),
        { op: 'update', table: 'Bridge', where: byUuid(uuidOf(b)), row: { ports: set(oldPorts.filter((u) => u !== uuidOf(p)).map(uuid)) } },
      ];
      for (const i of setOf(p.interfaces).map(String)) ops.push({ op: 'delete', table: 'Interface', where: byUuid(i) });
      ops.push({ op: 'delete', table: 'Port', where: byUuid(uuidOf(p)) });
      return { ops };
    });
  }

  /**
   * Names of all bridges, sorted.
   *
   * Equivalent to: `ovs-vsctl list-br`
   */
  async listBridges(): Promise<string[]> {
    const s = await this.snapshot();
    return [...s.bridges.values()].map((b) => String(b.name)).sort();
  }

  /**
   * Names of a bridge's ports except its local port, sorted.
   *
   * Equivalent to: `ovs-vsctl list-ports BRIDGE`
   */
  async listPorts(bridge: string): Promise<string[]> {
    const op = 'ovsdb.listPorts';
    v.ifname(op, 'bridge', bridge);
    const s = await this.snapshot();
    const b = findByName(s.bridges, bridge);
    if (!b) throw new OvsdbError(op, 'not-found', `no bridge named ${bridge}`);
    return setOf(b.ports).map((u) => String(s.ports.get(String(u))?.name)).filter((n) => n !== bridge).sort();
  }

  /**
   * The switch as `ovs-vsctl show` prints it: bridges, their ports (the local port
   * included), and each interface's type, ofport, options and error. Sorted by name.
   *
   * Equivalent to: `ovs-vsctl show`
   */
  async show(): Promise<OvsShow> {
    const s = await this.snapshot();
    const out: OvsShow = {
      uuid: uuidOf(s.root),
      bridges: [...s.bridges.values()].map((b) => bridgeView(s, b)).sort((a, b) => cmp(a.name, b.name)),
    };
    const ver = optional(s.root.ovs_version);
    if (ver !== undefined) out.ovsVersion = String(ver);
    return out;
  }

  /**
   * Follows Interface rows: first one 'initial' event per existing interface, then 'insert',
   * 'modify' (ofport assigned, link up/down, error) and 'delete'. Leaving the loop cancels
   * the monitor; closing the connection ends it.
   *
   * Equivalent to: `ovsdb-client monitor Open_vSwitch Interface`
   *
   * @example
   * for await (const ev of ovs.monitor()) {
   *   if (ev.interface.name === 'vnet0' && ev.interface.linkState === 'up') break;
   * }
   */
  monitor(): AsyncIterableIterator<InterfaceEvent> {
    const id = `iface-${++this.monitorSeq}`;
    const queue: InterfaceEvent[] = [];
    let wake: (() => void) | undefined;
    let failure: Error | undefined;
    let done = false;
    const push = (updates: any, initial: boolean) => {
      const rows = updates?.Interface ?? {};
      for (const [u, ru] of Object.entries<any>(rows)) {
        if (ru.new) queue.push({ type: initial ? 'initial' : ru.old ? 'modify' : 'insert', interface: ifaceView({ _uuid: uuid(u), ...ru.new }) });
        else if (ru.old) queue.push({ type: 'delete', interface: ifaceView({ _uuid: uuid(u), ...ru.old }) });
      }
      wake?.();
    };
    // The reply (initial rows) settles in a microtask, after any update that followed it in the
    // same read: hold updates until the initial rows are queued so the order stays right.
    let early: unknown[] | undefined = [];
    this.monitors.set(id, (u) => (early ? early.push(u) : push(u, false)));
    const started = this.rpc.request('monitor', [DB, id, { Interface: { columns: IFACE_COLS.filter((c) => c !== '_uuid') } }])
      .then((initial) => {
        push(initial, true);
        for (const u of early!) push(u, false);
        early = undefined;
      }, (e) => { if (this.rpc.closedByClient) done = true; else failure = e; wake?.(); });
    const unsubscribe = this.rpc.onClose((e, byClient) => { if (byClient) done = true; else failure ??= e; wake?.(); });
    const finish = async () => {
      if (done) return;
      done = true;
      this.monitors.delete(id);
      unsubscribe();
      if (!this.rpc.closed) await started.then(() => this.rpc.request('monitor_cancel', [id])).catch(() => undefined);
    };
    const it: AsyncIterableIterator<InterfaceEvent> = {
      next: async (): Promise<IteratorResult<InterfaceEvent>> => {
        for (;;) {
          if (queue.length) return { value: queue.shift()!, done: false };
          if (failure) { const f = failure; await finish(); throw f; }
          if (done) return { value: undefined, done: true };
          await new Promise<void>((r) => { wake = r; });
          wake = undefined;
        }
      },
      return: async (): Promise<IteratorResult<InterfaceEvent>> => {
        await finish();
        return { value: undefined, done: true };
      },
      [Symbol.asyncIterator]() { return it; },
    };
    return it;
  }

  // ---- internals -------------------------------------------------------------------------

  /** Reads the four tables this client works with, in one transaction (so one consistent view). */
  private async snapshot(): Promise<Snapshot> {
    let res = await this.txn('ovsdb.select', [
      { op: 'select', table: 'Open_vSwitch', where: [], columns: ROOT_COLS },
      { op: 'select', table: 'Bridge', where: [], columns: BRIDGE_COLS },
      { op: 'select', table: 'Port', where: [], columns: PORT_COLS },
      { op: 'select', table: 'Interface', where: [], columns: IFACE_COLS },
    ]);
    let roots = (res[0].rows as Row[]) ?? [];
    if (roots.length === 0) {
      // A database nobody initialised yet (`ovs-vsctl init` does this insert); a concurrent
      // insert by someone else breaks maxRows 1, which is fine: the row exists then.
      await this.txn('ovsdb.init', [{ op: 'insert', table: 'Open_vSwitch', row: {} }]).catch((e) => {
        if (!(e instanceof OvsdbError && e.code === 'constraint-violation')) throw e;
      });
      res = await this.txn('ovsdb.select', [{ op: 'select', table: 'Open_vSwitch', where: [], columns: ROOT_COLS }]);
      roots = res[0].rows as Row[];
    }
    const index = (rows: Row[]) => new Map(rows.map((r) => [uuidOf(r), r] as [string, Row]));
    return { root: roots[0], bridges: index(res[1]?.rows as Row[] ?? []), ports: index(res[2]?.rows as Row[] ?? []), ifaces: index(res[3]?.rows as Row[] ?? []) };
  }

  /**
   * Read, plan, write: retries the whole thing when a `wait` guard times out (someone else
   * changed what we read), then bumps next_cfg and waits for ovs-vswitchd to apply it.
   */
  private async run<T>(op: string, plan: (s: Snapshot) => Plan<T>): Promise<T> {
    // Writes from one client go one at a time: concurrent calls on the same connection would only
    // trip each other's wait guards. The wait for ovs-vswitchd happens outside the queue.
    const turn = this.writeQueue.then(() => this.commit(op, plan));
    this.writeQueue = turn.then(() => undefined, () => undefined);
    const done = await turn;
    if ('result' in done) return done.result;
    if (done.cfg !== undefined) await this.waitCfg(op, done.cfg);
    return done.after ? done.after(done.snap) : (undefined as T);
  }

  private async commit<T>(op: string, plan: (s: Snapshot) => Plan<T>):
    Promise<{ result: T } | { cfg?: number; snap: Snapshot; after?: (s: Snapshot) => Promise<T> | T }> {
    for (let attempt = 0; ; attempt++) {
      const s = await this.snapshot();
      const p = plan(s);
      if ('result' in p) return p;
      const ops = [...p.ops];
      const rootUuid = uuidOf(s.root);
      let cfgAt = -1;
      if (this.waitApply) {
        ops.push({ op: 'mutate', table: 'Open_vSwitch', where: byUuid(rootUuid), mutations: [['next_cfg', '+=', 1]] });
        cfgAt = ops.length;
        ops.push({ op: 'select', table: 'Open_vSwitch', where: byUuid(rootUuid), columns: ['next_cfg'] });
      }
      ops.push({ op: 'comment', comment: `vnetlink: ${op}` });
      let res: Row[];
      try {
        res = await this.txn(op, ops);
      } catch (e) {
        if (e instanceof OvsdbError && e.code === 'timed-out' && attempt < MAX_RETRIES) {
          // Another client changed what we read: read again and re-plan, after a short jittered
          // pause so two writers do not keep colliding.
          this.#retries++;
          await sleep(Math.random() * Math.min(20, 1 + attempt * 2));
          continue;
        }
        throw e;
      }
      const out: { cfg?: number; snap: Snapshot; after?: (s: Snapshot) => Promise<T> | T } = { snap: s, after: p.after };
      if (this.waitApply) out.cfg = Number((res[cfgAt].rows as Row[])[0].next_cfg);
      return out;
    }
  }

  /** One `transact`; rejects with the first operation's (or the commit's) error. */
  private async txn(op: string, ops: Row[]): Promise<Row[]> {
    const res = await this.rpc.request('transact', [DB, ...ops]).catch((e) => {
      if (e instanceof OvsdbError) throw new OvsdbError(op, e.code, e.message.replace(/^[^:]*: /, ''), { ovsdbError: e.ovsdbError, details: e.details, cause: e });
      throw e;
    });
    if (!Array.isArray(res)) throw new OvsdbError(op, 'protocol', `transact answered ${JSON.stringify(res)}`);
    for (let i = 0; i < res.length; i++) {
      const r = res[i];
      if (r && typeof r === 'object' && typeof r.error === 'string') {
        const what = i < ops.length ? `${ops[i].op}${ops[i].table ? ` on ${ops[i].table}` : ''}` : 'commit';
        const details = typeof r.details === 'string' ? r.details : undefined;
        throw new OvsdbError(op, codeOf(r.error), `${r.error} (${what})${details ? `: ${details}` : ''}`, { ovsdbError: r.error, details });
      }
    }
    return res as Row[];
  }

  /** Resolves once Open_vSwitch.cur_cfg >= target, watched through a monitor. */
  private async waitCfg(op: string, target: number): Promise<void> {
    if (!this.cfgMonitor) {
      this.monitors.set('cfg', (u) => this.onCfg(u));
      this.cfgMonitor = this.rpc.request('monitor', [DB, 'cfg', { Open_vSwitch: { columns: ['cur_cfg'] } }]).then((initial) => this.onCfg(initial));
      this.cfgMonitor.catch(() => { this.cfgMonitor = undefined; });
    }
    await this.cfgMonitor;
    if (this.curCfg >= target) return;
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.cfgWaiters = this.cfgWaiters.filter((w) => w.timer !== timer);
        reject(new OvsdbError(op, 'ETIMEDOUT', `the change was committed but ovs-vswitchd did not apply it within ${this.timeout} ms ` +
          `(cur_cfg ${this.curCfg}, waiting for ${target}): is ovs-vswitchd running and connected to this database?`));
      }, this.timeout);
      this.cfgWaiters.push({ target, resolve, reject, timer });
    });
  }

  private onCfg(updates: any): void {
    for (const ru of Object.values<any>(updates?.Open_vSwitch ?? {})) {
      // max(): cur_cfg only grows, and the monitor's initial reply may be handled after a later update.
      if (ru?.new && typeof ru.new.cur_cfg === 'number') this.curCfg = Math.max(this.curCfg, ru.new.cur_cfg);
    }
    const ready = this.cfgWaiters.filter((w) => w.target <= this.curCfg);
    this.cfgWaiters = this.cfgWaiters.filter((w) => w.target > this.curCfg);
    for (const w of ready) { clearTimeout(w.timer); w.resolve(); }
  }
}

// ---- views and helpers ---------------------------------------------------------------------

function waitEq(table: string, rowUuid: string, column: string, value: unknown): Row {
  // timeout 0: fail at once ("timed out") if the column changed since we read it.
  return { op: 'wait', table, timeout: 0, where: byUuid(rowUuid), columns: [column], until: '==', rows: [{ [column]: value }] };
}

function findByName(rows: Map<string, Row>, name: string): Row | undefined {
  for (const r of rows.values()) if (r.name === name) return r;
  return undefined;
}

/** The bridge whose ports include a port of this name. */
function portOwner(s: Snapshot, name: string): string | undefined {
  const p = findByName(s.ports, name);
  if (!p) return undefined;
  const pu = uuidOf(p);
  for (const b of s.bridges.values()) if (setOf(b.ports).map(String).includes(pu)) return String(b.name);
  return undefined;
}

function ifaceView(r: Row): OvsInterface {
  const out: OvsInterface = {
    uuid: uuidOf(r),
    name: String(r.name),
    type: typeof r.type === 'string' ? r.type : '',
    externalIds: mapOf(r.external_ids),
    options: mapOf(r.options),
  };
  const ofport = optional(r.ofport);
  if (typeof ofport === 'number') out.ofport = ofport;
  const req = optional(r.ofport_request);
  if (typeof req === 'number') out.ofportRequest = req;
  const err = optional(r.error);
  if (typeof err === 'string') out.error = err;
  const ls = optional(r.link_state);
  if (ls === 'up' || ls === 'down') out.linkState = ls;
  const as = optional(r.admin_state);
  if (as === 'up' || as === 'down') out.adminState = as;
  const mac = optional(r.mac_in_use);
  if (typeof mac === 'string') out.mac = mac;
  return out;
}

function portView(s: Snapshot, bridge: string, p: Row): OvsPort {
  const interfaces = setOf(p.interfaces).map((u) => s.ifaces.get(String(u))).filter((r): r is Row => !!r).map(ifaceView)
    .sort((a, b) => cmp(a.name, b.name));
  const out: OvsPort = {
    uuid: uuidOf(p),
    name: String(p.name),
    bridge,
    trunks: setOf(p.trunks).map(Number).sort((a, b) => a - b),
    externalIds: mapOf(p.external_ids),
    interfaces,
  };
  const tag = optional(p.tag);
  if (typeof tag === 'number') out.tag = tag;
  const mode = optional(p.vlan_mode);
  if (typeof mode === 'string') out.vlanMode = mode;
  if (interfaces[0]?.ofport !== undefined) out.ofport = interfaces[0].ofport;
  return out;
}

function bridgeView(s: Snapshot, b: Row): OvsBridge {
  const name = String(b.name);
  const out: OvsBridge = {
    uuid: uuidOf(b),
    name,
    datapathType: typeof b.datapath_type === 'string' ? b.datapath_type : '',
    externalIds: mapOf(b.external_ids),
    otherConfig: mapOf(b.other_config),
    ports: setOf(b.ports).map((u) => s.ports.get(String(u))).filter((r): r is Row => !!r).map((p) => portView(s, name, p))
      .sort((a, c) => cmp(a.name, c.name)),
  };
  const fm = optional(b.fail_mode);
  if (typeof fm === 'string') out.failMode = fm;
  return out;
}

/** A short identifier-like word (OVS types and datapath types). */
function token(op: string, field: string, x: unknown): string {
  const s = v.str(op, field, x, 64);
  if (!/^[a-z0-9_-]+$/i.test(s)) throw v.rangeError(op, field, `must be a word of letters, digits, "_" or "-" (got ${JSON.stringify(s)})`);
  return s;
}

function strMap(op: string, field: string, x: unknown): Record<string, string> {
  const o = v.object(op, field, x);
  const out: Record<string, string> = {};
  for (const [k, val] of Object.entries(o)) {
    if (val === undefined) continue;
    v.str(op, `${field}.${k}`, k, 4096);
    if (k.length === 0) throw v.rangeError(op, field, 'keys must not be empty');
    out[k] = v.str(op, `${field}.${k}`, val);
  }
  return out;
}

const cmp = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function withTimeout<T>(p: Promise<T>, ms: number, op: string, what: string): Promise<T> {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new OvsdbError(op, 'ETIMEDOUT', `${what} within ${ms} ms`)), ms);
    p.then((x) => { clearTimeout(t); resolve(x); }, (e) => { clearTimeout(t); reject(e); });
  });
}

