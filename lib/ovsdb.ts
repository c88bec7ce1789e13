// An Open vSwitch configuration client speaking OVSDB's JSON-RPC (RFC 7047) over its unix
// socket, the way ovs-vsctl does: read, then write in one transaction guarded by `wait`
// operations on what was read (retrying when another client got there first), bump
// Open_vSwitch.next_cfg and wait until ovs-vswitchd reports the same cur_cfg.
import { RpcConnection, type RequestOptions } from './ovsdb/rpc.js';
import { OvsdbError, abortError, codeOf, preview } from './ovsdb/errors.js';
import { map, mapOf, namedUuid, optional, set, setOf, uuid } from './ovsdb/datum.js';
import * as v from './validate.js';
import { interfaceOptions, TUNNEL_TYPES } from './ovsdb/options.js';
import { bandwidth as bandwidthArg, ovsQos, type Bandwidth } from './bandwidth.js';

export { OvsdbError } from './ovsdb/errors.js';

const DB = 'Open_vSwitch';
const MAX_RETRIES = 100;
/** Most events a monitor holds for a consumer that does not keep up (a server can send without end). */
export const MAX_MONITOR_QUEUE = 65_536;

/** Options of {@link Ovsdb.connect}. */
export interface OvsdbConnectOptions {
  /**
   * How long connect may take, and the default deadline of every later call on this
   * connection, the wait for ovs-vswitchd included (ms, default 10000).
   */
  timeout?: number;
  /** Wait for ovs-vswitchd to apply each change (default true). `false` is ovs-vsctl's `--no-wait`. */
  wait?: boolean;
  /** Aborts connecting (it rejects with an AbortError). */
  signal?: AbortSignal;
}

/**
 * Limits every OVSDB call takes. A call past its deadline rejects with an OvsdbError of code
 * 'ETIMEDOUT'; an aborted one with Node's AbortError (`name` 'AbortError', `code` 'ABORT_ERR').
 * A change already sent when the limit hits may still be committed by the server.
 */
export interface OvsdbCallOptions {
  /** Deadline of the whole call, retries and the wait for ovs-vswitchd included (ms; default: connect's `timeout`). */
  timeout?: number;
  signal?: AbortSignal;
}

/** An OVS datapath: 'system' (the kernel's openvswitch module) or 'netdev' (userspace). */
export type DatapathType = 'system' | 'netdev';

/** Options of {@link Ovsdb.addBridge}. */
export interface AddBridgeOptions extends OvsdbCallOptions {
  /** 'system' (kernel datapath) or 'netdev' (userspace datapath); OVS's default is 'system'. */
  datapathType?: DatapathType;
  /** What the bridge does with no controller: 'standalone' (a learning switch) or 'secure'. */
  failMode?: 'standalone' | 'secure';
  externalIds?: Record<string, string>;
  otherConfig?: Record<string, string>;
  /** No error when a bridge of this name exists already (ovs-vsctl --may-exist). */
  mayExist?: boolean;
}

/** Options of {@link Ovsdb.addPort}. */
export interface AddPortOptions extends OvsdbCallOptions {
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
  /**
   * Interface options (e.g. { peer: 'patch1' } for a patch port). For a tunnel type ('vxlan',
   * 'geneve', 'gre', ...) `remote_ip` is required (an address or 'flow'), and `local_ip`, `key`
   * (`in_key`, `out_key`; the VNI for vxlan: 0–16777215, or 'flow'), `dst_port`, `ttl`, `tos`,
   * `csum` and `df_default` are checked before anything is sent.
   */
  options?: Record<string, string>;
  /**
   * A protected port forwards nothing to another protected port (Port `protected`): make every
   * tunnel of a full mesh protected, so a flood that came in over one tunnel is not sent out
   * over the others (split horizon; without it a mesh of three or more hosts loops).
   */
  protected?: boolean;
  /** The OpenFlow port number to ask for (1–65279). */
  ofportRequest?: number;
  /**
   * No error when this port exists already on this bridge (ovs-vsctl --may-exist). The
   * existing port's options are left as they are, but `bandwidth`, when given, is applied.
   */
  mayExist?: boolean;
  /**
   * libvirt's `<bandwidth>` for the guest on this port (see {@link Bandwidth}), as OVS's own
   * QoS, in the same transaction: see {@link Ovsdb.setBandwidth}. With `mayExist` and a port
   * that exists, it replaces the port's bandwidth as `setBandwidth` would (the same
   * transaction checks the port is still as read), as `ovs-vsctl --may-exist add-port BR P --
   * set interface P ingress_policing_rate=...` still runs its `set`.
   */
  bandwidth?: Bandwidth;
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
  /** '' when the row leaves it to OVS's default ('system'). */
  datapathType: DatapathType | '';
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
  /** QoS rows (read only by calls that may remove them). */
  qos?: Map<string, Row>;
}

/** A transaction plan: operations to run, or a result when there is nothing to do. */
type Plan<T> = { ops: Row[]; after?: (snap: Snapshot) => Promise<T> | T } | { result: T };

const ROOT_COLS = ['_uuid', 'bridges', 'next_cfg', 'cur_cfg', 'ovs_version'];
const BRIDGE_COLS = ['_uuid', 'name', 'ports', 'datapath_type', 'fail_mode', 'external_ids', 'other_config'];
const PORT_COLS = ['_uuid', 'name', 'interfaces', 'tag', 'trunks', 'vlan_mode', 'external_ids', 'qos'];
const QOS_COLS = ['_uuid', 'queues', 'external_ids'];
/** The external_ids key marking the QoS and Queue rows vnetlink made for a port (its name). */
const QOS_MARK = 'vnetlink-port';
/**
 * The Interface external_ids key saying vnetlink set its ingress policing, and to what
 * ("RATE/BURST"): policing that differs from it (or has no mark) is someone else's.
 */
const POLICING_MARK = 'vnetlink-policing';
const IFACE_COLS = ['_uuid', 'name', 'type', 'ofport', 'ofport_request', 'error', 'link_state', 'admin_state', 'mac_in_use', 'external_ids', 'options',
  'ingress_policing_rate', 'ingress_policing_burst'];

const byUuid = (u: string) => [['_uuid', '==', uuid(u)]];
/** A row's own uuid; rows come from the server, so a missing or malformed one is its fault. */
const uuidOf = (r: Row) => {
  const u = r._uuid;
  if (!Array.isArray(u) || u.length !== 2 || u[0] !== 'uuid' || typeof u[1] !== 'string') {
    throw new OvsdbError('ovsdb', 'protocol', `a row has no valid _uuid: ${preview(u)}`);
  }
  return u[1];
};

const CALL_KEYS = ['timeout', 'signal'];

/** One public call's deadline and AbortSignal, shared by every request and wait it makes. */
class Call {
  readonly end: number;
  constructor(readonly op: string, readonly timeout: number, readonly signal?: AbortSignal) {
    this.end = Date.now() + timeout;
  }

  remaining(): number {
    return Math.max(0, this.end - Date.now());
  }

  /** Throws when the call was aborted or is past its deadline. */
  check(): void {
    if (this.signal?.aborted) throw abortError(this.signal);
    if (Date.now() >= this.end) throw this.timedOut('the call did not finish');
  }

  timedOut(what: string): OvsdbError {
    return new OvsdbError(this.op, 'ETIMEDOUT', `${what} within ${this.timeout} ms`);
  }

  /** What each server request of this call gets. */
  req(): RequestOptions {
    return { timeout: this.remaining(), signal: this.signal, op: this.op };
  }

  /** Waits for `p`, but no longer than the deadline and not past an abort. */
  race<T>(p: Promise<T>, what: string, onTimeout?: () => OvsdbError): Promise<T> {
    const { signal } = this;
    if (signal?.aborted) return Promise.reject(abortError(signal));
    return new Promise<T>((resolve, reject) => {
      const done = () => { clearTimeout(timer); signal?.removeEventListener('abort', onAbort); };
      const onAbort = () => { done(); reject(abortError(signal!)); };
      const timer = setTimeout(() => { done(); reject(onTimeout ? onTimeout() : this.timedOut(what)); }, this.remaining());
      signal?.addEventListener('abort', onAbort, { once: true });
      p.then((x) => { done(); resolve(x); }, (e) => { done(); reject(e); });
    });
  }
}

function signalOpt(op: string, x: unknown): AbortSignal | undefined {
  if (x === undefined) return undefined;
  if (!(x instanceof AbortSignal)) throw v.typeError(op, 'signal', 'must be an AbortSignal');
  return x;
}

function isRow(x: unknown): x is Row {
  return typeof x === 'object' && x !== null && !Array.isArray(x);
}

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
  private cfgWaiters: { target: number; resolve: () => void; reject: (e: Error) => void }[] = [];
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
      // Throwing here is safe: the connection turns it into a protocol error and closes.
      if (!Array.isArray(params) || params.length !== 2) throw new OvsdbError('ovsdb.monitor', 'protocol', `an update notification has params ${preview(params)}`);
      this.monitors.get(String(params[0]))?.(params[1]);
    });
    rpc.onClose((e) => {
      for (const w of this.cfgWaiters.splice(0)) w.reject(e);
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
    v.knownKeys(op, '', opts as Record<string, unknown>, ['timeout', 'wait', 'signal']);
    const timeout = opts.timeout === undefined ? 10_000 : v.uint(op, 'timeout', opts.timeout, 1, 3_600_000);
    const wait = opts.wait === undefined ? true : v.bool(op, 'wait', opts.wait);
    const signal = signalOpt(op, opts.signal);
    const call = new Call(op, timeout, signal);
    const rpc = await RpcConnection.connect(path, timeout, signal);
    try {
      const dbs = await rpc.request('list_dbs', [], call.req()).catch((e) => {
        throw e instanceof OvsdbError && e.code === 'ETIMEDOUT' ? call.timedOut(`no answer to list_dbs from ${path}`) : e;
      });
      if (!Array.isArray(dbs)) throw rpc.protocolError(op, `list_dbs answered ${preview(dbs)}`);
      if (!dbs.includes(DB)) {
        throw new OvsdbError(op, 'unknown-database', `${path} does not serve the ${DB} database (it has: ${preview(dbs)})`);
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
  async transact(operations: Row[], opts: OvsdbCallOptions = {}): Promise<Row[]> {
    const op = 'ovsdb.transact';
    if (!Array.isArray(operations) || !operations.every(isRow)) throw v.typeError(op, 'operations', 'must be an array of operation objects');
    const call = this.#call(op, opts, CALL_KEYS);
    return this.#guard(call, () => this.txn(call, operations));
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
    v.knownKeys(op, '', opts as Record<string, unknown>, ['datapathType', 'failMode', 'externalIds', 'otherConfig', 'mayExist', ...CALL_KEYS]);
    const call = this.#call(op, opts);
    const row: Row = { name };
    if (opts.datapathType !== undefined) row.datapath_type = v.oneOf(op, 'datapathType', opts.datapathType, ['system', 'netdev'] as const);
    if (opts.failMode !== undefined) row.fail_mode = v.oneOf(op, 'failMode', opts.failMode, ['standalone', 'secure'] as const);
    if (opts.externalIds !== undefined) row.external_ids = map(strMap(op, 'externalIds', opts.externalIds));
    if (opts.otherConfig !== undefined) row.other_config = map(strMap(op, 'otherConfig', opts.otherConfig));
    const mayExist = opts.mayExist === undefined ? false : v.bool(op, 'mayExist', opts.mayExist);

    return this.run<OvsBridge>(call, (s) => {
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
          const s2 = await this.snapshot(call);
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
  async delBridge(name: string, opts: { ifExists?: boolean } & OvsdbCallOptions = {}): Promise<void> {
    const op = 'ovsdb.delBridge';
    v.ifname(op, 'name', name);
    v.object(op, 'options', opts);
    v.knownKeys(op, '', opts as Record<string, unknown>, ['ifExists', ...CALL_KEYS]);
    const ifExists = opts.ifExists === undefined ? false : v.bool(op, 'ifExists', opts.ifExists);
    const call = this.#call(op, opts);
    await this.run(call, (s) => {
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
        if (pr) ops.push(...dropOwnQos(s, pr).ops);
      }
      ops.push({ op: 'delete', table: 'Bridge', where: byUuid(uuidOf(b)) });
      return { ops };
    }, true);
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
      ['type', 'tag', 'trunks', 'vlanMode', 'externalIds', 'portExternalIds', 'options', 'protected', 'ofportRequest', 'mayExist', 'bandwidth', ...CALL_KEYS]);
    const ifRow: Row = { name: iface };
    const portRow: Row = { name: iface };
    if (opts.type !== undefined) ifRow.type = opts.type === '' ? '' : token(op, 'type', opts.type);
    if (opts.externalIds !== undefined) ifRow.external_ids = map(strMap(op, 'externalIds', opts.externalIds));
    if (opts.options !== undefined) ifRow.options = map(interfaceOptions(op, 'options', ifRow.type as string | undefined, strMap(op, 'options', opts.options)));
    else if (typeof ifRow.type === 'string' && TUNNEL_TYPES.includes(ifRow.type)) interfaceOptions(op, 'options', ifRow.type, {});
    if (opts.ofportRequest !== undefined) ifRow.ofport_request = v.uint(op, 'ofportRequest', opts.ofportRequest, 1, 65279);
    if (opts.tag !== undefined) portRow.tag = v.uint(op, 'tag', opts.tag, 0, 4095);
    if (opts.trunks !== undefined) {
      if (!Array.isArray(opts.trunks)) throw v.typeError(op, 'trunks', 'must be an array of VLAN ids');
      portRow.trunks = set([...new Set(opts.trunks.map((t, i) => v.uint(op, `trunks[${i}]`, t, 0, 4095)))].sort((a, b) => a - b));
    }
    if (opts.vlanMode !== undefined) {
      portRow.vlan_mode = v.oneOf(op, 'vlanMode', opts.vlanMode, ['trunk', 'access', 'native-tagged', 'native-untagged', 'dot1q-tunnel'] as const);
    }
    if (opts.protected !== undefined) portRow.protected = v.bool(op, 'protected', opts.protected);
    if (opts.portExternalIds !== undefined) portRow.external_ids = map(strMap(op, 'portExternalIds', opts.portExternalIds));
    const mayExist = opts.mayExist === undefined ? false : v.bool(op, 'mayExist', opts.mayExist);
    const bw = bandwidthArg(op, 'bandwidth', opts.bandwidth);
    const qosOps = bw ? bandwidthRows(iface, bw, ifRow, portRow) : [];
    const call = this.#call(op, opts);
    const view = async () => {
      const s2 = await this.snapshot(call);
      const p = findByName(s2.ports, iface);
      if (!p) throw new OvsdbError(op, 'not-found', `port ${iface} vanished right after it was added`);
      return portView(s2, bridge, p);
    };

    const port = await this.run<OvsPort>(call, (s) => {
      const b = findByName(s.bridges, bridge);
      if (!b) throw new OvsdbError(op, 'not-found', `no bridge named ${bridge}`);
      const owner = portOwner(s, iface);
      if (owner !== undefined) {
        if (mayExist && owner === bridge) {
          const p = findByName(s.ports, iface)!;
          // As `ovs-vsctl --may-exist add-port ... -- set interface ...`: the port's own options
          // are left as they are, but the bandwidth asked for is applied (as setBandwidth does),
          // so a caller that re-attaches a guest never runs it unshaped.
          if (!bw) return { result: portView(s, bridge, p) };
          return { ops: bandwidthPlan(op, s, p, bw), after: view };
        }
        throw new OvsdbError(op, 'exists', `a port named ${iface} already exists on bridge ${owner}`);
      }
      if (findByName(s.ifaces, iface)) throw new OvsdbError(op, 'exists', `an interface named ${iface} already exists`);
      const oldPorts = setOf(b.ports).map(String);
      return {
        ops: [
          waitEq('Bridge', uuidOf(b), 'ports', set(oldPorts.map(uuid))),
          ...qosOps,
          { op: 'insert', table: 'Interface', 'uuid-name': 'iface', row: ifRow },
          { op: 'insert', table: 'Port', 'uuid-name': 'port', row: { ...portRow, interfaces: namedUuid('iface') } },
          { op: 'update', table: 'Bridge', where: byUuid(uuidOf(b)), row: { ports: set([...oldPorts.map(uuid), namedUuid('port')]) } },
        ],
        after: view,
      };
    }, bw !== undefined);
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
  async delPort(bridge: string | null, port: string, opts: { ifExists?: boolean } & OvsdbCallOptions = {}): Promise<void> {
    const op = 'ovsdb.delPort';
    if (bridge !== null) v.ifname(op, 'bridge', bridge);
    v.ifname(op, 'port', port);
    v.object(op, 'options', opts);
    v.knownKeys(op, '', opts as Record<string, unknown>, ['ifExists', ...CALL_KEYS]);
    const ifExists = opts.ifExists === undefined ? false : v.bool(op, 'ifExists', opts.ifExists);
    const call = this.#call(op, opts);
    await this.run(call, (s) => {
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
      // QoS and Queue are root tables: rows of ours the port held would outlive it.
      ops.push(...dropOwnQos(s, p).ops);
      return { ops };
    }, true);
  }

  /**
   * Caps a guest's bandwidth on its OVS port the way libvirt does (libvirt's `<bandwidth>`
   * and units, see {@link Bandwidth}): `outbound` (from the guest) as the Interface's
   * `ingress_policing_rate`/`ingress_policing_burst`; `inbound` (to the guest) as a linux-htb
   * QoS on the Port with one Queue (`other_config` min-rate, max-rate, burst). The QoS and
   * Queue rows carry external_ids `vnetlink-port` (and libvirt's `ifname`), the Interface
   * `vnetlink-policing` (the rate and burst set); they are replaced here, and removed with
   * `null`, by `delPort` and `delBridge`. A QoS or policing that vnetlink did not set is never
   * replaced: a call that would have to is refused (code 'busy'), and `null` leaves it.
   *
   * Equivalent to: `ovs-vsctl set interface vnet0 ingress_policing_rate=R -- set port vnet0 qos=@q -- --id=@q create qos type=linux-htb ...`
   *
   * @example
   * await ovs.setBandwidth('vnet0', { inbound: { average: 6250 }, outbound: { average: 3750 } });
   * await ovs.setBandwidth('vnet0', null);
   */
  async setBandwidth(port: string, bandwidth: Bandwidth | null, opts: OvsdbCallOptions = {}): Promise<void> {
    const op = 'ovsdb.setBandwidth';
    v.ifname(op, 'port', port);
    const bw = bandwidth === null ? undefined : bandwidthArg(op, 'bandwidth', bandwidth);
    if (bandwidth !== null && bandwidth === undefined) throw v.typeError(op, 'bandwidth', 'is required (null removes it)');
    const call = this.#call(op, opts, CALL_KEYS);
    await this.run(call, (s) => {
      const p = findByName(s.ports, port);
      if (!p) throw new OvsdbError(op, 'not-found', `no port named ${port}`);
      return { ops: bandwidthPlan(op, s, p, bw ?? null) };
    }, true);
  }

  /**
   * Names of all bridges, sorted.
   *
   * Equivalent to: `ovs-vsctl list-br`
   */
  async listBridges(opts: OvsdbCallOptions = {}): Promise<string[]> {
    const call = this.#call('ovsdb.listBridges', opts, CALL_KEYS);
    const s = await this.#guard(call, () => this.snapshot(call));
    return [...s.bridges.values()].map((b) => String(b.name)).sort();
  }

  /**
   * Names of a bridge's ports except its local port, sorted.
   *
   * Equivalent to: `ovs-vsctl list-ports BRIDGE`
   */
  async listPorts(bridge: string, opts: OvsdbCallOptions = {}): Promise<string[]> {
    const op = 'ovsdb.listPorts';
    v.ifname(op, 'bridge', bridge);
    const call = this.#call(op, opts, CALL_KEYS);
    return this.#guard(call, async () => {
      const s = await this.snapshot(call);
      const b = findByName(s.bridges, bridge);
      if (!b) throw new OvsdbError(op, 'not-found', `no bridge named ${bridge}`);
      return setOf(b.ports).map((u) => String(s.ports.get(String(u))?.name)).filter((n) => n !== bridge).sort();
    });
  }

  /**
   * The switch as `ovs-vsctl show` prints it: bridges, their ports (the local port
   * included), and each interface's type, ofport, options and error. Sorted by name.
   *
   * Equivalent to: `ovs-vsctl show`
   */
  async show(opts: OvsdbCallOptions = {}): Promise<OvsShow> {
    const call = this.#call('ovsdb.show', opts, CALL_KEYS);
    return this.#guard(call, async () => {
      const s = await this.snapshot(call);
      const out: OvsShow = {
        uuid: uuidOf(s.root),
        bridges: [...s.bridges.values()].map((b) => bridgeView(s, b)).sort((a, b) => cmp(a.name, b.name)),
      };
      const ver = optional(s.root.ovs_version);
      if (ver !== undefined) out.ovsVersion = String(ver);
      return out;
    });
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
  monitor(opts: OvsdbCallOptions = {}): AsyncIterableIterator<InterfaceEvent> {
    const op = 'ovsdb.monitor';
    // `timeout` bounds the wait for the initial rows; `signal` ends the iteration with an AbortError.
    const call = this.#call(op, opts, CALL_KEYS);
    const id = `iface-${++this.monitorSeq}`;
    const queue: InterfaceEvent[] = [];
    // Every next() that waits (calls made by hand may overlap): a wake-up wakes them all, so none is lost.
    const waiters: (() => void)[] = [];
    const wake = () => { for (const r of waiters.splice(0)) r(); };
    let failure: Error | undefined;
    let done = false;
    const push = (updates: unknown, initial: boolean) => {
      if (failure) return;
      for (const [u, ru] of rowUpdates(op, updates, 'Interface')) {
        if (ru.new) queue.push({ type: initial ? 'initial' : ru.old ? 'modify' : 'insert', interface: ifaceView({ ...ru.new, _uuid: uuid(u) }) });
        else if (ru.old) queue.push({ type: 'delete', interface: ifaceView({ ...ru.old, _uuid: uuid(u) }) });
      }
      if (queue.length > MAX_MONITOR_QUEUE) {
        // Bounded memory whatever the server sends: the events so far are still delivered, then this error.
        failure = new OvsdbError(op, 'overflow', `more than ${MAX_MONITOR_QUEUE} events are waiting to be read; the monitor stopped`);
        this.monitors.delete(id);
      }
      wake();
    };
    // The reply (initial rows) settles in a microtask, after any update that followed it in the
    // same read: hold updates until the initial rows are queued so the order stays right.
    let early: unknown[] | undefined = [];
    let established = false;
    // A malformed update throws inside the connection's dispatch, which closes it as a protocol
    // error; the close handler below then fails this monitor.
    this.monitors.set(id, (u) => (early ? early.push(u) : push(u, false)));
    const started = this.rpc.request('monitor', [DB, id, { Interface: { columns: IFACE_COLS.filter((c) => c !== '_uuid') } }], call.req())
      .then((initial) => {
        try {
          push(initial, true);
          for (const u of early!) push(u, false);
          early = undefined;
          established = true;
        } catch (e) {
          // The initial reply is not an update we can read: the connection is not usable.
          failure ??= e instanceof OvsdbError && e.code === 'protocol' && !this.rpc.closed
            ? this.rpc.protocolError(op, e.message, e) : e as Error;
          wake();
        }
      }, (e) => { if (this.rpc.closedByClient) done = true; else failure ??= e; wake(); });
    const unsubscribe = this.rpc.onClose((e, byClient) => { if (byClient) done = true; else failure ??= e; wake(); });
    const onAbort = () => { failure ??= abortError(call.signal!); wake(); };
    call.signal?.addEventListener('abort', onAbort, { once: true });
    const finish = async () => {
      if (done) return;
      done = true;
      this.monitors.delete(id);
      unsubscribe();
      call.signal?.removeEventListener('abort', onAbort);
      // Nothing more reaches this iterator once its id is gone; the cancel only tells the server,
      // and is not awaited (a silent server must not hold up the loop's exit).
      if (established && !this.rpc.closed) this.rpc.request('monitor_cancel', [id], { op }).catch(() => undefined);
    };
    const it: AsyncIterableIterator<InterfaceEvent> = {
      next: async (): Promise<IteratorResult<InterfaceEvent>> => {
        for (;;) {
          if (queue.length) return { value: queue.shift()!, done: false };
          if (failure) { const f = failure; await finish(); throw f; }
          if (done) return { value: undefined, done: true };
          await new Promise<void>((r) => { waiters.push(r); });
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

  /** Validates a call's `timeout` and `signal` (and, with `keys`, that nothing else was given). */
  #call(op: string, opts: unknown, keys?: readonly string[]): Call {
    const o = v.object(op, 'options', opts);
    if (keys) v.knownKeys(op, '', o, keys);
    const timeout = o.timeout === undefined ? this.timeout : v.uint(op, 'timeout', o.timeout, 1, 3_600_000);
    return new Call(op, timeout, signalOpt(op, o.signal));
  }

  /**
   * Runs the server-facing part of a call. Whatever malformed data the server sent, the call
   * fails with an OvsdbError('protocol') naming it, and the connection is closed (its later
   * replies cannot be trusted either); decoding bugs never escape as a TypeError.
   */
  async #guard<T>(call: Call, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (e) {
      if (e instanceof OvsdbError) {
        if (e.code !== 'protocol') throw e;
        const text = e.message.startsWith(`${e.op}: `) ? e.message.slice(e.op.length + 2) : e.message;
        if (!this.rpc.closed) throw this.rpc.protocolError(call.op, text, e);
        throw e.op === call.op ? e : new OvsdbError(call.op, 'protocol', text, { cause: e });
      }
      if (e instanceof Error && e.name === 'AbortError') throw e;
      throw this.rpc.closed ? new OvsdbError(call.op, 'protocol', `cannot read the server's reply: ${(e as Error)?.message}`, { cause: e })
        : this.rpc.protocolError(call.op, `cannot read the server's reply: ${(e as Error)?.message}`, e);
    }
  }

  /** Reads the four tables this client works with, in one transaction (so one consistent view). */
  private async snapshot(call: Call, withQos = false): Promise<Snapshot> {
    const tables = ['Open_vSwitch', 'Bridge', 'Port', 'Interface'];
    let res = await this.txn(call, [
      { op: 'select', table: 'Open_vSwitch', where: [], columns: ROOT_COLS },
      { op: 'select', table: 'Bridge', where: [], columns: BRIDGE_COLS },
      { op: 'select', table: 'Port', where: [], columns: PORT_COLS },
      { op: 'select', table: 'Interface', where: [], columns: IFACE_COLS },
      ...(withQos ? [{ op: 'select', table: 'QoS', where: [], columns: QOS_COLS }] : []),
    ]);
    let roots = selectedRows(call.op, res, 0, tables[0]);
    if (roots.length === 0) {
      // A database nobody initialised yet (`ovs-vsctl init` does this insert); a concurrent
      // insert by someone else breaks maxRows 1, which is fine: the row exists then.
      await this.txn(call, [{ op: 'insert', table: 'Open_vSwitch', row: {} }]).catch((e) => {
        if (!(e instanceof OvsdbError && e.code === 'constraint-violation')) throw e;
      });
      const again = await this.txn(call, [{ op: 'select', table: 'Open_vSwitch', where: [], columns: ROOT_COLS }]);
      roots = selectedRows(call.op, again, 0, tables[0]);
      if (roots.length === 0) throw new OvsdbError(call.op, 'protocol', 'the Open_vSwitch table is still empty after inserting its row');
    }
    // Every row this client reads has a uuid and (but the root) a string name.
    const index = (i: number) => {
      const m = new Map<string, Row>();
      for (const r of selectedRows(call.op, res, i, tables[i])) {
        if (typeof r.name !== 'string') throw new OvsdbError(call.op, 'protocol', `a ${tables[i]} row has no name: ${preview(r)}`);
        m.set(uuidOf(r), r);
      }
      return m;
    };
    uuidOf(roots[0]);
    const snap: Snapshot = { root: roots[0], bridges: index(1), ports: index(2), ifaces: index(3) };
    if (withQos) {
      snap.qos = new Map();
      for (const r of selectedRows(call.op, res, 4, 'QoS')) snap.qos.set(uuidOf(r), r);
    }
    return snap;
  }

  /**
   * Read, plan, write: retries the whole thing when a `wait` guard times out (someone else
   * changed what we read), then bumps next_cfg and waits for ovs-vswitchd to apply it.
   */
  private async run<T>(call: Call, plan: (s: Snapshot) => Plan<T>, withQos = false): Promise<T> {
    return this.#guard(call, async () => {
      // Writes from one client go one at a time: concurrent calls on the same connection would only
      // trip each other's wait guards. The wait for ovs-vswitchd happens outside the queue. A call
      // whose deadline passes (or that is aborted) while it waits its turn never starts.
      const prev = this.writeQueue;
      const turn = prev.then(() => { call.check(); return this.commit(call, plan, withQos); });
      this.writeQueue = turn.then(() => undefined, () => undefined);
      await call.race(prev, 'waiting for earlier changes on this connection did not finish');
      const done = await turn;
      if ('result' in done) return done.result;
      if (done.cfg !== undefined) await this.waitCfg(call, done.cfg);
      return done.after ? done.after(done.snap) : (undefined as T);
    });
  }

  private async commit<T>(call: Call, plan: (s: Snapshot) => Plan<T>, withQos = false):
    Promise<{ result: T } | { cfg?: number; snap: Snapshot; after?: (s: Snapshot) => Promise<T> | T }> {
    for (let attempt = 0; ; attempt++) {
      const s = await this.snapshot(call, withQos);
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
      ops.push({ op: 'comment', comment: `vnetlink: ${call.op}` });
      let res: Row[];
      try {
        res = await this.txn(call, ops);
      } catch (e) {
        if (e instanceof OvsdbError && e.code === 'timed-out' && attempt < MAX_RETRIES) {
          // Another client changed what we read: read again and re-plan, after a short jittered
          // pause so two writers do not keep colliding.
          this.#retries++;
          await sleep(Math.random() * Math.min(20, 1 + attempt * 2));
          call.check();
          continue;
        }
        throw e;
      }
      const out: { cfg?: number; snap: Snapshot; after?: (s: Snapshot) => Promise<T> | T } = { snap: s, after: p.after };
      if (this.waitApply) {
        const cfg = selectedRows(call.op, res, cfgAt, 'Open_vSwitch')[0]?.next_cfg;
        if (typeof cfg !== 'number' || !Number.isSafeInteger(cfg)) throw new OvsdbError(call.op, 'protocol', `next_cfg read back as ${preview(cfg)}`);
        out.cfg = cfg;
      }
      return out;
    }
  }

  /** One `transact`; rejects with the first operation's (or the commit's) error. */
  private async txn(call: Call, ops: Row[]): Promise<Row[]> {
    call.check();
    const op = call.op;
    const res = await this.rpc.request('transact', [DB, ...ops], call.req()).catch((e) => {
      // The request's own timer is the call's deadline: say so in the call's terms.
      throw e instanceof OvsdbError && e.code === 'ETIMEDOUT' ? call.timedOut('no answer to transact from the server') : e;
    });
    if (!Array.isArray(res)) throw new OvsdbError(op, 'protocol', `transact answered ${preview(res)}`);
    for (let i = 0; i < res.length; i++) {
      const r = res[i];
      if (r !== null && !isRow(r)) throw new OvsdbError(op, 'protocol', `transact result ${i} is ${preview(r)}`);
      if (r && r.error !== undefined && r.error !== null) {
        if (typeof r.error !== 'string') throw new OvsdbError(op, 'protocol', `transact result ${i} has a malformed error: ${preview(r.error)}`);
        const text = r.error.slice(0, 1024);
        const what = i < ops.length ? `${String(ops[i].op)}${ops[i].table ? ` on ${String(ops[i].table)}` : ''}` : 'commit';
        const details = typeof r.details === 'string' ? r.details.slice(0, 1024) : undefined;
        throw new OvsdbError(op, codeOf(text.slice(0, 64)), `${text} (${what})${details ? `: ${details}` : ''}`, { ovsdbError: text, details });
      }
    }
    return res as Row[];
  }

  /** Resolves once Open_vSwitch.cur_cfg >= target, watched through a monitor. */
  private async waitCfg(call: Call, target: number): Promise<void> {
    if (!this.cfgMonitor) {
      // A fresh id each time: a monitor request that timed out may still be set up by the server.
      const id = `cfg-${++this.monitorSeq}`;
      this.monitors.set(id, (u) => this.onCfg(u));
      // Not tied to this call's signal: the monitor serves every later call too.
      this.cfgMonitor = this.rpc.request('monitor', [DB, id, { Open_vSwitch: { columns: ['cur_cfg'] } }], { op: call.op, timeout: Math.max(call.remaining(), 1) })
        .then((initial) => this.onCfg(initial));
      this.cfgMonitor.catch(() => { this.cfgMonitor = undefined; this.monitors.delete(id); });
    }
    await call.race(this.cfgMonitor, 'no answer to the cur_cfg monitor');
    if (this.curCfg >= target) return;
    let waiter: (typeof this.cfgWaiters)[number] | undefined;
    const applied = new Promise<void>((resolve, reject) => {
      waiter = { target, resolve, reject };
      this.cfgWaiters.push(waiter);
    });
    try {
      await call.race(applied, '', () => new OvsdbError(call.op, 'ETIMEDOUT',
        `the change was committed but ovs-vswitchd did not apply it within ${call.timeout} ms ` +
        `(cur_cfg ${this.curCfg}, waiting for ${target}): is ovs-vswitchd running and connected to this database?`));
    } finally {
      this.cfgWaiters = this.cfgWaiters.filter((w) => w !== waiter);
    }
  }

  private onCfg(updates: unknown): void {
    for (const [, ru] of rowUpdates('ovsdb', updates, 'Open_vSwitch')) {
      // max(): cur_cfg only grows, and the monitor's initial reply may be handled after a later update.
      const cur = ru.new?.cur_cfg;
      if (typeof cur === 'number') this.curCfg = Math.max(this.curCfg, cur);
    }
    const ready = this.cfgWaiters.filter((w) => w.target <= this.curCfg);
    this.cfgWaiters = this.cfgWaiters.filter((w) => w.target > this.curCfg);
    for (const w of ready) w.resolve();
  }
}

/** The rows of the `i`th select's result; anything else there is the server's fault. */
function selectedRows(op: string, res: Row[], i: number, table: string): Row[] {
  const r = res[i];
  if (!isRow(r) || !Array.isArray(r.rows) || !r.rows.every(isRow)) {
    throw new OvsdbError(op, 'protocol', `the select on ${table} answered ${preview(r)}`);
  }
  return r.rows;
}

/** The row updates of one table in a monitor's <table-updates> (RFC 7047 §4.1.6), checked. */
function rowUpdates(op: string, updates: unknown, table: string): [string, { old?: Row; new?: Row }][] {
  if (!isRow(updates)) throw new OvsdbError(op, 'protocol', `a monitor update is ${preview(updates)}, not an object`);
  const rows = updates[table];
  if (rows === undefined) return [];
  if (!isRow(rows)) throw new OvsdbError(op, 'protocol', `a monitor update's ${table} is ${preview(rows)}`);
  const out: [string, { old?: Row; new?: Row }][] = [];
  for (const [u, ru] of Object.entries(rows)) {
    if (!isRow(ru) || (ru.old !== undefined && !isRow(ru.old)) || (ru.new !== undefined && !isRow(ru.new))) {
      throw new OvsdbError(op, 'protocol', `a monitor update for ${table} row ${preview(u)} is ${preview(ru)}`);
    }
    out.push([u, ru as { old?: Row; new?: Row }]);
  }
  return out;
}

// ---- views and helpers ---------------------------------------------------------------------

function waitEq(table: string, rowUuid: string, column: string, value: unknown): Row {
  // timeout 0: fail at once ("timed out") if the column changed since we read it.
  return { op: 'wait', table, timeout: 0, where: byUuid(rowUuid), columns: [column], until: '==', rows: [{ [column]: value }] };
}

/**
 * The rows OVS's QoS for `bw` needs on a port named `name`: policing into `ifRow`, and when
 * inbound is capped, a Queue and a linux-htb QoS inserted (named 'bwqueue', 'bwqos') with the
 * port's `qos` pointing at it. Both carry our mark and libvirt's `ifname`.
 */
function bandwidthRows(name: string, bw: Bandwidth, ifRow: Row, portRow: Row): Row[] {
  const q = ovsQos(bw);
  if (q.policing) {
    ifRow.ingress_policing_rate = q.policing.rate;
    ifRow.ingress_policing_burst = q.policing.burst;
    // A new Interface: the mark joins the caller's external_ids.
    const ids = ifRow.external_ids === undefined ? {} : mapOf(ifRow.external_ids);
    ifRow.external_ids = map({ ...ids, [POLICING_MARK]: policingMark(q.policing) });
  }
  if (!q.htb) return [];
  const ids = map({ [QOS_MARK]: name, ifname: name });
  const cfg = map({ 'min-rate': String(q.htb.minRate), 'max-rate': String(q.htb.maxRate), ...(q.htb.burst !== undefined ? { burst: String(q.htb.burst) } : {}) });
  portRow.qos = namedUuid('bwqos');
  return [
    { op: 'insert', table: 'Queue', 'uuid-name': 'bwqueue', row: { other_config: cfg, external_ids: ids } },
    { op: 'insert', table: 'QoS', 'uuid-name': 'bwqos', row: { type: 'linux-htb', other_config: cfg, queues: ['map', [[0, namedUuid('bwqueue')]]], external_ids: ids } },
  ];
}

const policingMark = (p: { rate: number; burst: number }) => `${p.rate}/${p.burst}`;

/**
 * The operations that make an existing port's bandwidth `bw` (null: none of vnetlink's): our
 * QoS, Queue and policing replaced, someone else's left alone, and refused (code 'busy') when
 * `bw` needs the column it holds. Guarded by `wait`s on what was read.
 */
function bandwidthPlan(op: string, s: Snapshot, p: Row, bw: Bandwidth | null): Row[] {
  const name = String(p.name);
  const q = bw ? ovsQos(bw) : {};
  const old = dropOwnQos(s, p);
  const ops: Row[] = [waitEq('Port', uuidOf(p), 'qos', p.qos ?? set([]))];
  if (old.foreign) {
    if (q.htb) throw new OvsdbError(op, 'busy', `port ${name} has a QoS row vnetlink did not add (${old.foreign}); remove it first (ovs-vsctl clear port ${name} qos)`);
  } else {
    const portRow: Row = { qos: set([]) };
    const ifRow: Row = {};
    const ins = bw ? bandwidthRows(name, { ...bw, outbound: undefined }, ifRow, portRow) : [];
    ops.push(...ins, { op: 'update', table: 'Port', where: byUuid(uuidOf(p)), row: portRow }, ...old.ops);
  }
  for (const i of setOf(p.interfaces).map(String)) {
    const r = s.ifaces.get(i);
    if (!r) continue;
    const rate = numberOr0(r.ingress_policing_rate), burst = numberOr0(r.ingress_policing_burst);
    const mark = mapOf(r.external_ids)[POLICING_MARK];
    const ours = mark !== undefined && mark === policingMark({ rate, burst });
    if (!ours && (rate !== 0 || burst !== 0)) {
      if (q.policing) {
        throw new OvsdbError(op, 'busy', `interface ${String(r.name)} has ingress policing vnetlink did not set ` +
          `(ingress_policing_rate=${rate}, ingress_policing_burst=${burst}); remove it first (ovs-vsctl set interface ${String(r.name)} ingress_policing_rate=0 ingress_policing_burst=0)`);
      }
      continue;
    }
    const next = q.policing ?? { rate: 0, burst: 0 };
    ops.push(
      { op: 'wait', table: 'Interface', timeout: 0, where: byUuid(i), columns: ['ingress_policing_rate', 'ingress_policing_burst'], until: '==',
        rows: [{ ingress_policing_rate: rate, ingress_policing_burst: burst }] },
      { op: 'update', table: 'Interface', where: byUuid(i), row: { ingress_policing_rate: next.rate, ingress_policing_burst: next.burst } },
      { op: 'mutate', table: 'Interface', where: byUuid(i), mutations: [
        ['external_ids', 'delete', set([POLICING_MARK])],
        ...(q.policing ? [['external_ids', 'insert', map({ [POLICING_MARK]: policingMark(q.policing) })]] : []),
      ] },
    );
  }
  return ops;
}

function numberOr0(x: unknown): number {
  const n = optional(x);
  return typeof n === 'number' ? n : 0;
}

/**
 * Deletes of the QoS row vnetlink made for port `p` and its queues; `foreign` names a QoS on
 * the port that someone else made (left alone). The caller also clears or deletes the port.
 */
function dropOwnQos(s: Snapshot, p: Row): { ops: Row[]; foreign?: string } {
  const q = optional(p.qos);
  if (q === undefined) return { ops: [] };
  const row = s.qos?.get(String(q));
  if (!row) return { ops: [] };
  if (mapOf(row.external_ids)[QOS_MARK] !== String(p.name)) return { ops: [], foreign: String(q) };
  const ops: Row[] = [{ op: 'delete', table: 'QoS', where: byUuid(String(q)) }];
  for (const qu of new Set(Object.values(mapOf(row.queues)))) ops.push({ op: 'delete', table: 'Queue', where: byUuid(qu) });
  return { ops };
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
  if (typeof r.name !== 'string') throw new OvsdbError('ovsdb', 'protocol', `an Interface row has no name: ${preview(r)}`);
  if (r.type !== undefined && typeof r.type !== 'string') throw new OvsdbError('ovsdb', 'protocol', `an Interface row has type ${preview(r.type)}`);
  const out: OvsInterface = {
    uuid: uuidOf(r),
    name: r.name,
    type: r.type ?? '',
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
    datapathType: b.datapath_type === 'system' || b.datapath_type === 'netdev' ? b.datapath_type : '',
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
  // Null prototype: a key such as "__proto__" or "constructor" is a key like any other
  // (an assignment to a plain object's "__proto__" would drop it or change the prototype).
  const out: Record<string, string> = Object.create(null);
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
