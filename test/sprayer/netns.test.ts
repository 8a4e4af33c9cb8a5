// siplb-advisor against the real kernel, in network namespaces this test creates and deletes:
//
//   client ns  10.231.1.2 ──veth── sprayer ns 10.231.1.1 (VIP 10.231.0.10 on lo) ──veth── b1 ns 10.231.2.2
//                                             10.231.3.1                       ──veth── b2 ns 10.231.3.2
//
// - the generated scripts (IPv4 with a port rewrite, IPv6) load into a real nft;
// - refusals: no nft, no CAP_NET_ADMIN, a foreign table of its name (left untouched): exit 2;
// - real siplb balancers in b1 and b2: the map holds both; one killed is out of the map within
//   interval × fall (+ timeout), back within interval × rise after a restart; SIGTERM removes
//   the table;
// - the data path: UDP and TCP from the client to VIP:5070 reach echo servers on :5080 in b1
//   and b2 with the client's own address, the answers come back from VIP:5070, a datagram
//   larger than the MTU (fragments) goes through, and no checksum is wrong (transmit checksum
//   offload is off on the veths, so a bad rewrite would be dropped). When a balancer stops
//   answering, its flows go to the other one: no conntrack entry pins them.
//
// Needs root, nft (installed with apt-get when missing) and ethtool (the same); fails with a
// one-line reason when namespaces cannot be created. Only 10.231.x.x addresses, inside the
// namespaces.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { bucketTable } from '../../src/sprayer/maglev.ts';
import { createScript, type DataPlane } from '../../src/sprayer/nft-script.ts';
import { LineBuffer, captureOutput, spawnOwned, terminate, type OwnedChild } from '../e2e/harness/children.ts';
import { nodeBinary, REPO_ROOT, SIPLB_CLI } from '../e2e/harness/siplb.ts';
import { assertNetnsUsable, ensureCommand, execIn, Netns } from '../e2e/harness/netns.ts';
import { eventually } from '../helpers/wait.ts';

const ADVISOR_CLI = join(REPO_ROOT, 'src', 'cli', 'siplb-advisor.ts');
const NODE = nodeBinary();
const net = new Netns('sadv');
const NS = { client: net.ns('c'), sprayer: net.ns('s'), b1: net.ns('b1'), b2: net.ns('b2') };
const VIP = '10.231.0.10';
const B1 = '10.231.2.2';
const B2 = '10.231.3.2';
const INTERVAL = 300;
const TIMEOUT = 150;
const RISE = 2;
const FALL = 3;

function run(cmd: string, args: readonly string[], input?: string): SpawnSyncReturns<string> {
  return spawnSync(cmd, args, { encoding: 'utf8', input, timeout: 30_000 });
}

/** Runs a command and fails the test with its stderr when it fails. */
function must(cmd: string, args: readonly string[], input?: string): string {
  const r = run(cmd, args, input);
  if (r.status !== 0) assert.fail(`${cmd} ${args.join(' ')} failed (${r.status}): ${(r.stderr || String(r.error)).trim().split('\n')[0]}`);
  return r.stdout;
}

function inNs(ns: string, cmd: string, args: readonly string[], input?: string): SpawnSyncReturns<string> {
  return run('ip', ['netns', 'exec', ns, cmd, ...args], input);
}

/** The bucket map of a table in the sprayer namespace: balancer address → buckets (null: no table). */
function mapCounts(table: string): Map<string, number> | null {
  const r = inNs(NS.sprayer, 'nft', ['-j', 'list', 'map', 'ip', table, 'buckets']);
  if (r.status !== 0) return null;
  const doc = JSON.parse(r.stdout) as { nftables: Array<{ map?: { elem?: Array<[number, string]> } }> };
  const elems = doc.nftables.find((x) => x.map !== undefined)?.map?.elem ?? [];
  const out = new Map<string, number>();
  for (const [, addr] of elems) out.set(addr, (out.get(addr) ?? 0) + 1);
  return out;
}

function tableExists(table: string): boolean {
  return inNs(NS.sprayer, 'nft', ['list', 'table', 'ip', table]).status === 0;
}

interface Proc {
  owned: OwnedChild;
  lines: LineBuffer;
  json(): Array<Record<string, unknown>>;
}

const procs: Proc[] = [];

function spawnIn(ns: string, args: readonly string[]): Proc {
  const owned = spawnOwned('ip', ['netns', 'exec', ns, NODE, ...args], { stdio: ['ignore', 'pipe', 'pipe'], cwd: REPO_ROOT });
  const lines = captureOutput(owned, new LineBuffer(20_000));
  const p: Proc = {
    owned, lines,
    json: () => lines.snapshot().flatMap((l) => {
      if (!l.startsWith('{')) return [];
      try {
        return [JSON.parse(l) as Record<string, unknown>];
      } catch {
        return [];
      }
    }),
  };
  procs.push(p);
  return p;
}

async function waitForLine(p: Proc, msg: string, ms: number): Promise<Record<string, unknown>> {
  let found: Record<string, unknown> | undefined;
  await eventually(`"${msg}" (output so far:\n${p.lines.snapshot().slice(-20).join('\n')})`, ms, () => {
    found = p.json().find((l) => l.msg === msg);
    if (found === undefined && p.owned.hasExited()) assert.fail(`exited before "${msg}":\n${p.lines.snapshot().slice(-20).join('\n')}`);
    return found !== undefined;
  });
  return found as Record<string, unknown>;
}

/** Runs the advisor to its end (a refusal) and returns its exit code and stderr. */
function advisorOnce(args: readonly string[], prefix: readonly string[] = []): { code: number | null; stderr: string } {
  const r = spawnSync('ip', ['netns', 'exec', NS.sprayer, ...prefix, NODE, ADVISOR_CLI, ...args], { encoding: 'utf8', cwd: REPO_ROOT, timeout: 20_000 });
  return { code: r.status, stderr: r.stderr };
}

const tmp = mkdtempSync(join(tmpdir(), 'siplb-advisor-netns-'));

async function startSiplbIn(ns: string, ip: string): Promise<Proc> {
  const props = join(tmp, `${ns}.properties`);
  // A static node, never probed: the balancer always has somewhere to send calls, so it answers
  // an OPTIONS for itself with 200 as long as it runs.
  writeFileSync(props, `host=${ip}\nexternalPort=5060\nnodes=${ip}:5099\nhealthCheckInterval=0\n`);
  const p = spawnIn(ns, [SIPLB_CLI, props, '--log-level', 'warn']);
  await waitForLine(p, 'siplb ready', 15_000);
  return p;
}

async function stop(p: Proc | undefined, signal: NodeJS.Signals = 'SIGTERM'): Promise<number | null> {
  if (p === undefined) return null;
  const { status } = await terminate(p.owned, signal, 5_000);
  return status.code;
}

describe('siplb-advisor in network namespaces', { timeout: 120_000 }, () => {
  before(() => {
    assertNetnsUsable();
    ensureCommand('ethtool', 'ethtool');
    for (const role of ['s', 'c', 'b1', 'b2']) net.add(role);
    const link = (role: string, addr: string, gw: string): void => {
      const { aIf } = net.link(role, `${addr}/24`, 's', `${gw}/24`);
      execIn(net.ns(role), 'ip', ['route', 'add', 'default', 'via', gw]);
      // Checksums computed in software at the sender: a wrong rewrite shows as a drop.
      execIn(net.ns(role), 'ethtool', ['-K', aIf, 'tx', 'off']);
    };
    link('c', '10.231.1.2', '10.231.1.1');
    link('b1', B1, '10.231.2.1');
    link('b2', B2, '10.231.3.1');
    execIn(NS.sprayer, 'ip', ['addr', 'add', `${VIP}/32`, 'dev', 'lo']);
    net.sysctl('s', 'net.ipv4.ip_forward', '1');
  });

  after(async () => {
    await Promise.allSettled(procs.map((p) => terminate(p.owned, 'SIGKILL', 2_000)));
    // Deleting a namespace deletes the veth ends in it, and the tables in it.
    net.destroy();
    rmSync(tmp, { recursive: true, force: true });
  });

  test('the generated scripts load into the real nft: IPv4 with a port rewrite, IPv6, and --dry-run\'s output', () => {
    const v4: DataPlane = {
      table: 'adv_check4', family: 'ip', vip: VIP, port: 5060, buckets: 256, seed: 0xfeed,
      balancers: [{ host: B1, port: 5070 }, { host: B2, port: 5080 }],
    };
    const v6: DataPlane = {
      table: 'adv_check6', family: 'ip6', vip: 'fd00:231::10', port: 5060, buckets: 64, seed: 1,
      balancers: [{ host: 'fd00:231:2::2', port: 5060 }, { host: 'fd00:231:3::2', port: 5060 }],
    };
    for (const dp of [v4, v6]) {
      const names = dp.balancers.map((b) => (dp.family === 'ip' ? `${b.host}:${b.port}` : `[${b.host}]:${b.port}`));
      const script = createScript(dp, bucketTable(names, names, dp.buckets).owners, false);
      const r = inNs(NS.sprayer, 'nft', ['-c', '-f', '-'], script);
      assert.equal(r.status, 0, `nft -c refused the ${dp.family} script: ${r.stderr}`);
    }
    const dry = spawnSync(NODE, [ADVISOR_CLI, '--vip', VIP, '--balancer', `${B1},${B2}`, '--dry-run'], { encoding: 'utf8', cwd: REPO_ROOT });
    assert.equal(dry.status, 0, dry.stderr);
    assert.match(dry.stdout, /^# siplb-advisor: 10\.231\.0\.10:5060 sprayed over 2 balancer\(s\)/);
    assert.equal(inNs(NS.sprayer, 'nft', ['-c', '-f', '-'], dry.stdout).status, 0);
    assert.equal(tableExists('siplb_advisor'), false, 'a check (-c) and a dry run create nothing');
  });

  test('refusals, exit 2 with one line: no nft, no CAP_NET_ADMIN, a foreign table of its name (left untouched)', () => {
    const args = ['--vip', VIP, '--balancer', `${B1},${B2}`, '--http', 'off'];
    const noNft = advisorOnce(args, ['env', 'PATH=/nonexistent']);
    assert.deepEqual([noNft.code, noNft.stderr], [2, 'siplb-advisor: nft not found: install nftables (Debian: apt-get install nftables)\n']);

    // Root without CAP_NET_ADMIN (dropped from the bounding set): what nft refuses is the capability.
    const notRoot = advisorOnce(args, ['setpriv', '--bounding-set=-net_admin', '--inh-caps=-net_admin']);
    assert.deepEqual([notRoot.code, notRoot.stderr], [2, 'siplb-advisor: siplb-advisor needs root (CAP_NET_ADMIN) to program nftables\n']);

    must('ip', ['netns', 'exec', NS.sprayer, 'nft', '-f', '-'], 'table ip siplb_advisor {\n\tchain mine {\n\t\tcounter\n\t}\n}\n');
    const before = must('ip', ['netns', 'exec', NS.sprayer, 'nft', 'list', 'table', 'ip', 'siplb_advisor']);
    const foreign = advisorOnce(args);
    assert.equal(foreign.code, 2);
    assert.match(foreign.stderr, /^siplb-advisor: nftables table ip siplb_advisor exists and is not siplb-advisor's .*choose another --table\n$/);
    assert.equal(foreign.stderr.split('\n').length, 2, 'one line');
    assert.equal(must('ip', ['netns', 'exec', NS.sprayer, 'nft', 'list', 'table', 'ip', 'siplb_advisor']), before, 'the foreign table untouched');
    must('ip', ['netns', 'exec', NS.sprayer, 'nft', 'delete', 'table', 'ip', 'siplb_advisor']);
  });

  test(`real siplb balancers: a dead one leaves the map within interval × fall + timeout (${INTERVAL} × ${FALL} + ${TIMEOUT} ms), comes back after rise; SIGTERM deletes the table`, async () => {
    let lb1: Proc | undefined = await startSiplbIn(NS.b1, B1);
    const lb2 = await startSiplbIn(NS.b2, B2);
    // A table of ours left behind by an advisor that crashed: replaced, not refused.
    const leftover = createScript({ table: 'siplb_advisor', family: 'ip', vip: VIP, port: 5060, buckets: 4, seed: 0, balancers: [{ host: B1, port: 5060 }] },
      new Array(4).fill(`${B1}:5060`), false);
    must('ip', ['netns', 'exec', NS.sprayer, 'nft', '-f', '-'], leftover);

    const advisor = spawnIn(NS.sprayer, [ADVISOR_CLI, '--vip', VIP, '--balancer', `${B1},${B2}`, '--interval', String(INTERVAL), '--timeout', String(TIMEOUT),
      '--rise', String(RISE), '--fall', String(FALL), '--http', '127.0.0.1:2016', '--log-level', 'info']);
    const ready = await waitForLine(advisor, 'siplb-advisor ready', 10_000);
    assert.ok(advisor.json().some((l) => l.msg === 'replacing the table a previous siplb-advisor left behind (it did not stop cleanly)'));
    assert.deepEqual((ready.balancers as Array<{ state: string }>).map((b) => b.state), ['up', 'up']);
    const full = mapCounts('siplb_advisor');
    assert.deepEqual([...(full?.keys() ?? [])].sort(), [B1, B2]);
    assert.deepEqual([...(full?.values() ?? [])], [128, 128]);

    // The state endpoint, from inside the sprayer's namespace.
    const state = inNs(NS.sprayer, NODE, ['-e', 'fetch("http://127.0.0.1:2016/state").then(r => r.text()).then(t => process.stdout.write(t))']);
    const view = JSON.parse(state.stdout) as { balancers: Array<{ address: string; state: string; buckets: number }> };
    assert.deepEqual(view.balancers.map((b) => [b.address, b.state, b.buckets]), [[`${B1}:5060`, 'up', 128], [`${B2}:5060`, 'up', 128]]);

    const killedAt = Date.now();
    await stop(lb1, 'SIGKILL');
    lb1 = undefined;
    await eventually('b1 out of the map', 5_000, () => mapCounts('siplb_advisor')?.has(B1) === false, 10);
    const outMs = Date.now() - killedAt;
    console.log(`balancer killed -> out of the map in ${outMs} ms (interval ${INTERVAL}, fall ${FALL}, timeout ${TIMEOUT})`);
    assert.ok(outMs <= INTERVAL * FALL + TIMEOUT + 1_000, `took ${outMs} ms`);
    assert.deepEqual([...(mapCounts('siplb_advisor')?.entries() ?? [])], [[B2, 256]]);
    // The line is logged before the map is written, but the pipe may deliver it after the test saw the map change.
    const isDown = (l: Record<string, unknown>): boolean => l.msg === 'balancer state' && l.balancer === `${B1}:5060` && l.to === 'down';
    await eventually('the advisor\'s "balancer state ... down" line', 2_000, () => advisor.json().some(isDown));
    const down = advisor.json().find(isDown);
    assert.match(String(down?.reason), /UDP port unreachable \(nothing listening\)|TCP connection refused/);

    const restartedAt = Date.now();
    lb1 = await startSiplbIn(NS.b1, B1);
    await eventually('b1 back in the map', 8_000, () => mapCounts('siplb_advisor')?.get(B1) === 128, 10);
    const backMs = Date.now() - restartedAt;
    console.log(`balancer restarted -> back in the map in ${backMs} ms (siplb start-up included; interval ${INTERVAL}, rise ${RISE})`);

    assert.equal(await stop(advisor), 0, 'SIGTERM: exit 0');
    assert.equal(tableExists('siplb_advisor'), false, 'SIGTERM: the table deleted');
    await Promise.all([stop(lb1), stop(lb2)]);
  });

  test('the data path: UDP and TCP both ways through the stateless rewrite, fragments, correct checksums, failover without conntrack pinning', async () => {
    const echo = join(tmp, 'echo.mjs');
    writeFileSync(echo, ECHO_SERVER);
    const client = join(tmp, 'client.mjs');
    writeFileSync(client, CLIENT);
    const e1 = spawnIn(NS.b1, [echo, 'b1', '5080']);
    const e2 = spawnIn(NS.b2, [echo, 'b2', '5080']);
    await Promise.all([waitForLine(e1, 'echo ready', 5_000), waitForLine(e2, 'echo ready', 5_000)]);
    const advisor = spawnIn(NS.sprayer, [ADVISOR_CLI, '--vip', VIP, '--port', '5070', '--balancer', `${B1}:5080,${B2}:5080`, '--table', 'siplb_adv_dp',
      '--interval', String(INTERVAL), '--timeout', String(TIMEOUT), '--rise', '1', '--fall', '1', '--http', 'off', '--log-level', 'info']);
    await waitForLine(advisor, 'siplb-advisor ready', 10_000);
    const csumErrors = (ns: string): number => {
      const snmp = must('ip', ['netns', 'exec', ns, 'cat', '/proc/net/snmp']).split('\n').filter((l) => l.startsWith('Udp:'));
      const [names, values] = snmp.map((l) => l.trim().split(/\s+/));
      return Number(values[names.indexOf('InCsumErrors')]) + Number(values[names.indexOf('InErrors')]);
    };

    const sendAll = (): ClientReport => {
      const r = inNs(NS.client, NODE, [client, VIP, '5070']);
      assert.equal(r.status, 0, r.stderr);
      return JSON.parse(r.stdout) as ClientReport;
    };
    const first = sendAll();
    for (const u of first.udp) {
      assert.equal(u.from, `${VIP}:5070`, `UDP answer to source port ${u.sport} came from ${u.from}`);
      assert.match(u.text, /^b[12] 10\.231\.1\.2:\d+ \d+$/, 'the balancer saw the client\'s own address');
      assert.equal(u.text.split(' ')[1], `10.231.1.2:${u.sport}`);
    }
    const big = first.udp.find((u) => u.size > 3000);
    assert.ok(big !== undefined && big.text.endsWith(` ${big.size}`), `a ${big?.size}-byte datagram (fragmented) arrived whole: ${big?.text}`);
    for (const c of first.tcp) {
      assert.equal(c.from, `${VIP}:5070`);
      assert.match(c.text, /^b[12] 10\.231\.1\.2:\d+ 5$/);
    }
    const burstKeys = Object.keys(first.tcpBurst).sort();
    assert.deepEqual(burstKeys, [`${VIP}:5070 b1`, `${VIP}:5070 b2`], `300 concurrent TCP connections: ${JSON.stringify(first.tcpBurst)}`);
    console.log(`300 concurrent TCP connections through the VIP: ${JSON.stringify(first.tcpBurst)}`);
    const served = new Set([...first.udp, ...first.tcp].map((x) => x.text.slice(0, 2)));
    assert.deepEqual([...served].sort(), ['b1', 'b2'], 'both balancers served flows');
    const again = sendAll();
    assert.deepEqual(again.udp.map((u) => u.text.slice(0, 2)), first.udp.map((u) => u.text.slice(0, 2)), 'the same source goes to the same balancer');
    assert.deepEqual([csumErrors(NS.b1), csumErrors(NS.b2), csumErrors(NS.client)], [0, 0, 0], 'no UDP checksum errors');

    // b1 stops answering (and listening): its flows move to b2 at the next map update, even
    // those that were flowing to b1 a moment ago.
    await stop(e1, 'SIGKILL');
    await eventually('b1 out of the dp map', 5_000, () => mapCounts('siplb_adv_dp')?.has(B1) === false, 10);
    const failed = sendAll();
    for (const x of [...failed.udp, ...failed.tcp]) assert.match(x.text, /^b2 /, `after b1 died: ${x.text}`);
    assert.deepEqual(failed.tcpBurst, { [`${VIP}:5070 b2`]: 300 });
    assert.equal(await stop(advisor), 0);
    assert.equal(tableExists('siplb_adv_dp'), false);
    await stop(e2);
  });
});

interface ClientReport {
  udp: Array<{ sport: number; size: number; from: string; text: string }>;
  tcp: Array<{ sport: number; from: string; text: string }>;
  /** "VIP:port b1" → connections answered so (anything else is a failure). */
  tcpBurst: Record<string, number>;
}

// Answers an OPTIONS (the advisor's probe) with 200 on UDP and TCP; anything else with
// "<name> <source ip:port> <length>" (UDP) or "<name> <source ip:port> <length>" and close (TCP).
const ECHO_SERVER = `
import dgram from 'node:dgram';
import net from 'node:net';
const [name, port] = process.argv.slice(2);
const ok = (req) => {
  const keep = req.split('\\r\\n').filter((l) => /^(via|from|to|call-id|cseq):/i.test(l));
  return ['SIP/2.0 200 OK', ...keep, 'Content-Length: 0', '', ''].join('\\r\\n');
};
const udp = dgram.createSocket('udp4');
udp.on('message', (m, r) => {
  const text = m.toString('latin1');
  udp.send(text.startsWith('OPTIONS ') ? ok(text) : name + ' ' + r.address + ':' + r.port + ' ' + m.length, r.port, r.address);
});
udp.bind(Number(port), () => {
  net.createServer((s) => {
    s.on('error', () => {});
    s.once('data', (d) => {
      const text = d.toString('latin1');
      if (text.startsWith('OPTIONS ')) s.end(ok(text));
      else s.end(name + ' ' + s.remoteAddress.replace('::ffff:', '') + ':' + s.remotePort + ' ' + d.length);
    });
  }).listen(Number(port), () => console.log(JSON.stringify({ msg: 'echo ready' })));
});
`;

// From 24 UDP source ports (one datagram of 4000 bytes, fragmented on the 1500-byte veth) and 8
// TCP connections to the VIP; prints who answered, from where.
const CLIENT = `
import dgram from 'node:dgram';
import net from 'node:net';
const [vip, port] = process.argv.slice(2);
const udp = [];
for (let sport = 40000; sport < 40024; sport++) {
  const size = sport === 40023 ? 4000 : 100;
  udp.push(await new Promise((resolve) => {
    const s = dgram.createSocket('udp4');
    const t = setTimeout(() => { s.close(); resolve({ sport, size, from: 'none', text: 'timeout' }); }, 1000);
    s.on('message', (m, r) => { clearTimeout(t); s.close(); resolve({ sport, size, from: r.address + ':' + r.port, text: m.toString() }); });
    s.bind(sport, () => s.send(Buffer.alloc(size, 'x'), Number(port), vip));
  }));
}
const tcp = [];
for (let sport = 41000; sport < 41008; sport++) {
  tcp.push(await new Promise((resolve) => {
    const s = net.connect({ host: vip, port: Number(port), localPort: sport });
    let text = '';
    const t = setTimeout(() => { s.destroy(); resolve({ sport, from: 'none', text: 'timeout ' + text }); }, 2000);
    s.on('connect', () => s.write('hello'));
    s.on('data', (c) => { text += c; });
    s.on('end', () => { clearTimeout(t); resolve({ sport, from: s.remoteAddress + ':' + s.remotePort, text }); s.destroy(); });
    s.on('error', (e) => { clearTimeout(t); resolve({ sport, from: 'none', text: 'error ' + e.message }); });
  }));
}
// 300 more TCP connections at once, from ephemeral ports: what a busy client looks like.
const burst = await Promise.all(Array.from({ length: 300 }, () => new Promise((resolve) => {
  const s = net.connect({ host: vip, port: Number(port) });
  let text = '';
  const t = setTimeout(() => { s.destroy(); resolve('timeout'); }, 5000);
  s.on('connect', () => s.write('hello'));
  s.on('data', (c) => { text += c; });
  s.on('end', () => { clearTimeout(t); resolve(s.remoteAddress + ':' + s.remotePort + ' ' + text.slice(0, 2)); s.destroy(); });
  s.on('error', (e) => { clearTimeout(t); resolve('error ' + e.message); });
})));
const tcpBurst = {};
for (const b of burst) tcpBurst[b] = (tcpBurst[b] ?? 0) + 1;
console.log(JSON.stringify({ udp, tcp, tcpBurst }));
`;
