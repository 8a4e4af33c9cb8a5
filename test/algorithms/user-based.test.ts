// UserBased (Restcomm's UserBasedAlgorithm): every call of a user to the user's node. Which key a
// request gets (the user, the fallback key for excluded users such as anonymous, the Call-ID as
// the last resort), stickiness across membership changes, draining, failover (spread and group),
// bounded load around a hot user, expiry, and HTTP.

import { describe, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import type { LoadView } from '../../src/algorithms/algorithm.ts';
import { TRANSACTION_TIMEOUT_MS } from '../../src/sip/timers.ts';
import { hashKey, rendezvous } from '../../src/algorithms/hashing.ts';
import { UserBased } from '../../src/algorithms/user-based.ts';
import type { SipNode } from '../../src/cluster/node.ts';
import type { Config } from '../../src/config/types.ts';
import type { SipMessage } from '../../src/sip/message.ts';
import { algorithmFor, CLIENT, httpGet as http, pickId, snapshotOf as cluster, subnetNode, syncId, syncNode } from '../helpers/cluster.ts';
import { inviteWith } from '../helpers/sip.ts';

const node = (n: number): SipNode => subnetNode(4, n);

const N1 = node(1);
const N2 = node(2);
const N3 = node(3);
const N4 = node(4);
const FOUR = [N1, N2, N3, N4];
const SIX = [1, 2, 3, 4, 5, 6].map(node);

/** A request from `from` to `to` (each a header value; a plain word becomes <sip:word@example.com>). */
function call(callId: string, to: string, from = 'caller', extra: string[] = []): SipMessage {
  const addr = (v: string): string => (/[:<]/.test(v) ? v : `<sip:${v}@example.com>`);
  return inviteWith(callId, { from: `${addr(from)};tag=f-${callId}`, to: addr(to), extra });
}

const USER_KEYS: Partial<Config> = {
  sipHeaderAffinityKey: 'To',
  sipHeaderAffinityFallbackKey: 'From',
  sipHeaderAffinityExclusionPattern: /^(?:anonymous|unknown)$/,
};

const algorithm = (t: TestContext, cfg: Partial<Config> = {}, loads?: LoadView): UserBased =>
  algorithmFor(t, (ctx) => new UserBased(ctx), { ...USER_KEYS, ...cfg }, { loads });
const pick = pickId;

/** The first `count` users `${prefix}i` whose key ranks `first` highest among `among`. */
function usersRanking(first: SipNode, among: SipNode[], count: number, prefix: string): string[] {
  const out: string[] = [];
  for (let i = 0; out.length < count; i++) {
    if (rendezvous(hashKey(`${prefix}${i}`), among) === first) out.push(`${prefix}${i}`);
  }
  return out;
}

describe('UserBased: which key', () => {
  const cases: { name: string; cfg?: Partial<Config>; msg: SipMessage; key: string }[] = [
    { name: 'the To user', msg: call('c1', 'bob', 'alice'), key: 'bob' },
    { name: 'excluded To user -> the From user', msg: call('c2', 'anonymous', 'alice'), key: 'alice' },
    { name: 'anonymous to anonymous -> the Call-ID', msg: call('c3', 'anonymous', 'unknown'), key: 'c3' },
    { name: 'To without a user -> the From user', msg: call('c4', '<sip:example.com>', 'alice'), key: 'alice' },
    { name: 'tel: To -> the number', msg: call('c5', '<tel:+15551234;phone-context=x>', 'alice'), key: '+15551234' },
    { name: 'a To user that only contains the pattern is not excluded', msg: call('c6', 'anonymous2', 'alice'), key: 'anonymous2' },
    { name: 'no exclusion pattern -> anonymous is a user', cfg: { sipHeaderAffinityExclusionPattern: null }, msg: call('c7', 'anonymous', 'alice'), key: 'anonymous' },
    { name: 'fallback key is a header', cfg: { sipHeaderAffinityFallbackKey: 'X-Account' }, msg: call('c8', 'anonymous', 'alice', ['X-Account: 42']), key: '42' },
    { name: 'fallback header missing -> the Call-ID', cfg: { sipHeaderAffinityFallbackKey: 'X-Account' }, msg: call('c9', 'anonymous', 'alice'), key: 'c9' },
    { name: 'key spec From', cfg: { sipHeaderAffinityKey: 'From', sipHeaderAffinityFallbackKey: 'To' }, msg: call('c10', 'bob', 'alice'), key: 'alice' },
    { name: 'key spec Call-ID (the configuration default)', cfg: { sipHeaderAffinityKey: 'Call-ID' }, msg: call('c11', 'bob', 'alice'), key: 'c11' },
  ];
  for (const c of cases) {
    test(`${c.name}: ${c.key}`, (t) => {
      // Each request is placed by its key's hash; two clusters make a coincidence unlikely.
      for (const nodes of [FOUR, SIX]) {
        const a = algorithm(t, c.cfg);
        const cl = cluster(nodes);
        assert.equal(pick(a, cl, c.msg, true), rendezvous(hashKey(c.key), cl.selectable)?.id);
      }
    });
  }

  test('every call to one user shares its node; a missing To user never throws', (t) => {
    const a = algorithm(t);
    const c = cluster(FOUR);
    const home = pick(a, c, call('first', 'carol'), true);
    for (let i = 0; i < 50; i++) assert.equal(pick(a, c, call(`carol-${i}`, 'carol', `caller${i}`), true), home);
    assert.ok(pick(a, c, call('odd', '<sip:@>', '<sip:@>'), true) !== null);
  });
});

describe('UserBased: membership, draining, failover', () => {
  test('users keep their node when a node joins; new users reach it', (t) => {
    const a = algorithm(t);
    const three = cluster([N1, N2, N3]);
    const homes = new Map<string, string | null>();
    for (let i = 0; i < 2000; i++) homes.set(`u${i}`, pick(a, three, call(`a-${i}`, `u${i}`), true));
    const four = cluster(FOUR);
    for (const [user, home] of homes) assert.equal(pick(a, four, call(`b-${user}`, user), true), home);
    let onNew = 0;
    for (let i = 0; i < 2000; i++) if (pick(a, four, call(`n-${i}`, `new${i}`), true) === N4.id) onNew++;
    assert.ok(onNew > 400 && onNew < 600, `${onNew} of 2000 new users on the new node`);
  });

  test('a draining node keeps its calls; its users move on their next call; new users avoid it', (t) => {
    const a = algorithm(t);
    const users = usersRanking(N1, FOUR, 20, 'drain');
    for (const u of users) assert.equal(pick(a, cluster(FOUR), call(`old-${u}`, u), true), N1.id);
    const draining = cluster(FOUR, { [N1.id]: 'draining' });
    for (const u of users) {
      assert.equal(pick(a, draining, call(`old-${u}`, u), false), N1.id, 'an in-call request of the existing call');
      const moved = pick(a, draining, call(`new-${u}`, u), true);
      assert.ok(moved !== null && moved !== N1.id);
      assert.equal(pick(a, draining, call(`new-${u}`, u), false), moved);
      assert.equal(pick(a, draining, call(`third-${u}`, u), true), moved, 'the user moved with the call');
    }
    for (let i = 0; i < 500; i++) assert.notEqual(pick(a, draining, call(`fresh-${i}`, `fresh${i}`), true), N1.id);
  });

  test("a dead node's 6000 users spread over the 3 survivors, 1/3 each within 10 %", (t) => {
    const a = algorithm(t);
    const users = usersRanking(N1, FOUR, 6000, 'dead');
    for (const u of users) pick(a, cluster(FOUR), call(`c-${u}`, u), true);
    const down = cluster(FOUR, { [N1.id]: 'down' });
    const counts = new Map<string, number>();
    for (const u of users) {
      const msg = call(`c-${u}`, u);
      const to = syncNode(a.repick({ msg, callId: msg.callId, newCall: false, src: CLIENT }, N1.id, down));
      assert.ok(to !== null && to !== N1);
      counts.set(to.id, (counts.get(to.id) ?? 0) + 1);
      assert.equal(pick(a, cluster(FOUR), call(`later-${u}`, u), true), to.id, 'the user stays on its new node');
    }
    const worst = Math.max(...[N2, N3, N4].map((n) => Math.abs((counts.get(n.id) ?? 0) / 2000 - 1)));
    t.diagnostic(`worst survivor deviation from 1/3: ${(worst * 100).toFixed(2)} %`);
    assert.ok(worst <= 0.1, JSON.stringify([...counts]));
  });

  test('group failover: every user of a dead node moves to one survivor, the same on every balancer', (t) => {
    const a = algorithm(t, { callIdAffinityGroupFailover: true });
    const b = algorithm(t, { callIdAffinityGroupFailover: true });
    const users = usersRanking(N2, FOUR, 200, 'grp');
    for (const u of users) {
      pick(a, cluster(FOUR), call(`c-${u}`, u), true);
      pick(b, cluster(FOUR), call(`c-${u}`, u), true);
    }
    const down = cluster(FOUR, { [N2.id]: 'down' });
    const targets = new Set<string | null>();
    for (const u of users) {
      targets.add(pick(a, down, call(`c-${u}`, u), false));
      targets.add(pick(b, down, call(`c-${u}`, u), false));
    }
    assert.equal(targets.size, 1);
    assert.ok(!targets.has(N2.id) && !targets.has(null));
  });
});

describe('UserBased: load and expiry', () => {
  test('hashLoadFactor 0.1: a hot user holding 20 % of the calls gets no new users beside it', (t) => {
    const run = (factor: number): { newUsersOnHot: number; newUsers: number; max: number; mean: number; hot: string } => {
      const counts = new Map<string, number>();
      const loads: LoadView = { activeCalls: (nodeId) => counts.get(nodeId) ?? 0 };
      const a = algorithm(t, { hashLoadFactor: factor }, loads);
      const c = cluster(SIX);
      const hot = pick(a, c, call('hot-0', 'hot'), true) as string;
      counts.set(hot, 1);
      let newUsersOnHot = 0;
      let newUsers = 0;
      for (let i = 1; i < 30_000; i++) {
        const isHot = i % 5 === 0;
        const to = pick(a, c, call(`call-${i}`, isHot ? 'hot' : `user${i}`), true) as string;
        counts.set(to, (counts.get(to) ?? 0) + 1);
        if (!isHot) {
          newUsers++;
          if (to === hot) newUsersOnHot++;
        }
      }
      const others = SIX.filter((n) => n.id !== hot).map((n) => counts.get(n.id) ?? 0);
      return { newUsersOnHot, newUsers, max: Math.max(...others), mean: 30_000 / 6, hot };
    };
    const bounded = run(0.1);
    const plain = run(0);
    t.diagnostic(`new users beside the hot user: ${bounded.newUsersOnHot} of ${bounded.newUsers} bounded, ${plain.newUsersOnHot} plain`);
    assert.equal(bounded.hot, plain.hot);
    assert.ok(bounded.newUsersOnHot < bounded.newUsers * 0.01, `${bounded.newUsersOnHot} new users went to the hot node`);
    assert.ok(Math.abs(plain.newUsersOnHot / plain.newUsers - 1 / 6) < 0.02, 'without the bound it gets its hash share');
    assert.ok(bounded.max <= Math.ceil(1.1 * bounded.mean), `another node holds ${bounded.max}`);
  });

  test('callEnded does not release a user; idle expiry does', (t) => {
    t.mock.timers.enable({ apis: ['Date'], now: 1_000_000 });
    const a = algorithm(t, { callIdAffinityMaxTimeInCache: 60 });
    const [u] = usersRanking(N1, FOUR, 1, 'exp');
    pick(a, cluster(FOUR), call('e1', u), true);
    const moved = pick(a, cluster(FOUR, { [N1.id]: 'down' }), call('e1', u), false);
    assert.notEqual(moved, N1.id);
    a.callEnded('e1');
    t.mock.timers.tick(TRANSACTION_TIMEOUT_MS * 1.5);
    assert.equal(pick(a, cluster(FOUR), call('e2', u), true), moved, 'still the user\'s node after its call ended');
    t.mock.timers.tick(61_000);
    assert.equal(pick(a, cluster(FOUR), call('e3', u), true), N1.id, 'idle longer than 60 s: placed afresh');
  });

  test('a Call-ID key (no usable user) is released at call end', (t) => {
    t.mock.timers.enable({ apis: ['Date'], now: 1_000_000 });
    const a = algorithm(t);
    const callIds: string[] = [];
    for (let i = 0; callIds.length < 1; i++) if (rendezvous(hashKey(`anon-${i}`), FOUR) === N1) callIds.push(`anon-${i}`);
    const msg = call(callIds[0], 'anonymous', 'anonymous');
    pick(a, cluster(FOUR), msg, true);
    const moved = pick(a, cluster(FOUR, { [N1.id]: 'down' }), msg, false);
    a.callEnded(msg.callId);
    t.mock.timers.tick(TRANSACTION_TIMEOUT_MS + 1000);
    assert.notEqual(moved, N1.id);
    assert.equal(pick(a, cluster(FOUR), msg, true), N1.id);
  });
});

describe('UserBased: userAffinityMaxTimeInCache and userAffinityGroupFailover', () => {
  // A user's assignment is kept while used within the idle time: placed on N1, moved off it by a
  // failover, it stays on the new node until it has been idle for longer, then goes back to N1.
  const expiry: { name: string; cfg: Partial<Config>; idleS: number }[] = [
    { name: 'unset: callIdAffinityMaxTimeInCache (60 s)', cfg: { callIdAffinityMaxTimeInCache: 60, userAffinityMaxTimeInCache: null }, idleS: 60 },
    { name: 'longer than the Call-ID one (300 s over 60 s)', cfg: { callIdAffinityMaxTimeInCache: 60, userAffinityMaxTimeInCache: 300 }, idleS: 300 },
    { name: 'shorter than the Call-ID one (10 s under 500 s)', cfg: { callIdAffinityMaxTimeInCache: 500, userAffinityMaxTimeInCache: 10 }, idleS: 10 },
  ];
  for (const c of expiry) {
    test(`idle expiry, ${c.name}`, (t) => {
      t.mock.timers.enable({ apis: ['Date'], now: 1_000_000 });
      const a = algorithm(t, c.cfg);
      const [u] = usersRanking(N1, FOUR, 1, `idle${c.idleS}-`);
      assert.equal(pick(a, cluster(FOUR), call('i1', u), true), N1.id);
      const moved = pick(a, cluster(FOUR, { [N1.id]: 'down' }), call('i1', u), false);
      assert.ok(moved !== null && moved !== N1.id);
      t.mock.timers.tick(c.idleS * 1000 - 1000);
      assert.equal(pick(a, cluster(FOUR), call('i2', u), true), moved, `idle ${c.idleS - 1} s: kept`);
      t.mock.timers.tick(c.idleS * 1000 + 1000);
      assert.equal(pick(a, cluster(FOUR), call('i3', u), true), N1.id, `idle ${c.idleS + 1} s: placed afresh`);
    });
  }

  const failover: { name: string; cfg: Partial<Config>; group: boolean }[] = [
    { name: 'unset, Call-ID spread -> spread', cfg: { callIdAffinityGroupFailover: false, userAffinityGroupFailover: null }, group: false },
    { name: 'unset, Call-ID group -> group', cfg: { callIdAffinityGroupFailover: true, userAffinityGroupFailover: null }, group: true },
    { name: 'true over Call-ID spread -> group', cfg: { callIdAffinityGroupFailover: false, userAffinityGroupFailover: true }, group: true },
    { name: 'false over Call-ID group -> spread', cfg: { callIdAffinityGroupFailover: true, userAffinityGroupFailover: false }, group: false },
  ];
  for (const c of failover) {
    test(`failover, ${c.name}`, (t) => {
      const a = algorithm(t, c.cfg);
      const users = usersRanking(N2, FOUR, 200, `fo-${c.name.length}-`);
      for (const u of users) assert.equal(pick(a, cluster(FOUR), call(`c-${u}`, u), true), N2.id);
      const down = cluster(FOUR, { [N2.id]: 'down' });
      const targets = new Set(users.map((u) => pick(a, down, call(`c-${u}`, u), false)));
      assert.ok(!targets.has(N2.id) && !targets.has(null));
      // 200 users spread over 3 survivors all land on one with probability 3 * 3^-200.
      assert.equal(targets.size, c.group ? 1 : 3, JSON.stringify([...targets]));
    });
  }
});

describe('UserBased: HTTP', () => {
  test('with the parameter: placed by hash and remembered; without: round robin', (t) => {
    const a = algorithm(t);
    const three = cluster([N1, N2, N3]);
    const n = a.pickHttp(http('/app?appsession=sess-1'), three);
    assert.equal(n, rendezvous(hashKey('sess-1'), three.selectable));
    assert.equal(a.pickHttp(http('/app?appsession=sess-1'), cluster(FOUR)), n);
    assert.deepEqual(Array.from({ length: 4 }, () => syncId(a.pickHttp(http('/app'), three))), [N1, N2, N3, N1].map((x) => x.id));
  });
});
