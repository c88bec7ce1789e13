// qemuNetdev without a VM: the arguments and stdio layout QEMU gets, and bad input refused.
// The scenarios in test/vm/ boot real guests on what it returns.
import { describe, expect, it } from 'vitest';
import { qemuNetdev } from '../lib/index.js';

const mac = '52:54:00:12:34:56';

describe('qemuNetdev', () => {
  it('puts a single-queue tap fd at 3 and names it in -netdev', () => {
    const r = qemuNetdev({ fds: [27] }, { id: 'n0', mac });
    expect(r.args).toEqual(['-netdev', 'tap,id=n0,fd=3,vhost=off', '-device', `virtio-net-pci,netdev=n0,mac=${mac}`]);
    expect(r.stdio).toEqual(['inherit', 'inherit', 'inherit', 27]);
    expect(r.childFds).toEqual([3]);
  });

  it('lays out multi-queue fds in order, with mq=on and 2N+2 vectors', () => {
    const r = qemuNetdev({ fds: [40, 41] }, { id: 'hostnet0', mac });
    expect(r.args).toEqual(['-netdev', 'tap,id=hostnet0,fds=3:4,vhost=off', '-device', `virtio-net-pci,netdev=hostnet0,mac=${mac},mq=on,vectors=6`]);
    expect(r.stdio.slice(3)).toEqual([40, 41]);
    const four = qemuNetdev({ fds: [1, 2, 5, 9] }, { id: 'n', mac, vhost: true });
    expect(four.args[1]).toBe('tap,id=n,fds=3:4:5:6,vhost=on');
    expect(four.args[3]).toMatch(/mq=on,vectors=10$/);
  });

  it('numbers a second NIC after the first when given its stdio', () => {
    const a = qemuNetdev({ fds: [30] }, { id: 'n0', mac });
    const b = qemuNetdev({ fds: [31, 32] }, { id: 'n1', mac: '52:54:00:12:34:57', stdio: a.stdio });
    expect(b.args[1]).toBe('tap,id=n1,fds=4:5,vhost=off');
    expect(b.stdio).toEqual(['inherit', 'inherit', 'inherit', 30, 31, 32]);
    const piped = qemuNetdev({ fds: [30] }, { id: 'n0', mac, stdio: ['pipe', 'pipe', 'inherit'] });
    expect(piped.stdio).toEqual(['pipe', 'pipe', 'inherit', 30]);
  });

  it("takes a macvtap's own MAC by default and refuses another one", () => {
    const q = { fds: [50], name: 'macvtap0', mac: '52:54:00:aa:bb:cc', device: '246:1' };
    expect(qemuNetdev(q, { id: 'n0' }).args[3]).toBe('virtio-net-pci,netdev=n0,mac=52:54:00:aa:bb:cc');
    expect(qemuNetdev(q, { id: 'n0', mac: '52:54:00:AA:BB:CC' }).args[3]).toContain('mac=52:54:00:aa:bb:cc');
    expect(() => qemuNetdev(q, { id: 'n0', mac })).toThrow(/qemuNetdev: mac: must equal the macvtap's MAC 52:54:00:aa:bb:cc/);
  });

  it('refuses bad input naming the field', () => {
    expect(() => qemuNetdev({ fds: [3] }, { id: 'n0' })).toThrow(/qemuNetdev: mac: is required for a tap/);
    expect(() => qemuNetdev({ fds: [3] }, { id: 'n0,script=/evil', mac })).toThrow(TypeError);
    expect(() => qemuNetdev({ fds: [3] }, { id: 'n0,script=/evil', mac })).toThrow(/qemuNetdev: id:/);
    expect(() => qemuNetdev({ fds: [3] }, { id: 'n0', mac, model: 'e1000,romfile=x' })).toThrow(/qemuNetdev: model:/);
    expect(() => qemuNetdev({ fds: [3, 4] }, { id: 'n0', mac, model: 'e1000' })).toThrow(/qemuNetdev: model: e1000 has one queue/);
    expect(() => qemuNetdev({ fds: [] }, { id: 'n0', mac })).toThrow(/qemuNetdev: queues.fds:/);
    expect(() => qemuNetdev({ fds: [-1] }, { id: 'n0', mac })).toThrow(/qemuNetdev: queues.fds\[0\]/);
    expect(() => qemuNetdev({ fds: [3], closed: true, name: 'vnet0' }, { id: 'n0', mac })).toThrow(/queues: vnet0 is closed/);
    expect(() => qemuNetdev({ fds: [3] }, { id: 'n0', mac: '52:54:00:zz:00:01' })).toThrow(/qemuNetdev: mac:/);
    expect(() => qemuNetdev({ fds: [3] }, { id: 'n0', mac, stdio: ['pipe'] })).toThrow(/qemuNetdev: stdio:/);
    expect(() => qemuNetdev({ fds: [3] }, { id: 'n0', mac, queues: 2 } as never)).toThrow(/qemuNetdev: options.queues: unknown option/);
  });
});
