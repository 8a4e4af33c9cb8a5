// The nftables text siplb-advisor loads, as golden text: one table of its own with the bucket
// map, stateless NAT both ways (ports too when balancers listen elsewhere than the VIP), and the
// map update that is its only change at run time. The netns test loads these into a kernel.

import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createScript, deleteScript, endpointName, mapUpdateScript, ownerComment, type DataPlane } from '../../src/sprayer/nft-script.ts';

const V4: DataPlane = {
  table: 'siplb_advisor', family: 'ip', vip: '10.231.0.10', port: 5060, buckets: 4, seed: 0,
  balancers: [{ host: '10.231.2.2', port: 5060 }, { host: '10.231.3.2', port: 5060 }],
};
const B1 = '10.231.2.2:5060';
const B2 = '10.231.3.2:5060';

describe('nft script', () => {
  test('IPv4, balancers on the VIP\'s port: the whole table, no port rewrite', () => {
    assert.equal(createScript(V4, [B1, B2, B2, B1], false), `# siplb-advisor: 10.231.0.10:5060 sprayed over 2 balancer(s) by stateless NAT (docs/sprayer.md)
create table ip siplb_advisor { comment "siplb-advisor vip 10.231.0.10:5060"; }
table ip siplb_advisor {
\tmap buckets { type mark : ipv4_addr; }
\tset backends { type ipv4_addr . inet_service; elements = { 10.231.2.2 . 5060, 10.231.3.2 . 5060 }; }
\tchain pre {
\t\ttype filter hook prerouting priority raw; policy accept;
\t\tip daddr 10.231.0.10 udp dport 5060 notrack meta mark set jhash ip saddr . udp sport mod 4 seed 0x0 ip daddr set meta mark map @buckets
\t\tip daddr 10.231.0.10 tcp dport 5060 notrack meta mark set jhash ip saddr . tcp sport mod 4 seed 0x0 ip daddr set meta mark map @buckets
\t\tip saddr . udp sport @backends fib daddr type != local notrack
\t\tip saddr . tcp sport @backends fib daddr type != local notrack
\t}
\tchain post {
\t\ttype filter hook postrouting priority srcnat; policy accept;
\t\tip saddr . udp sport @backends ip saddr set 10.231.0.10
\t\tip saddr . tcp sport @backends ip saddr set 10.231.0.10
\t}
\tchain defrag {
\t\tct state untracked counter comment "never jumped to: loads conntrack, so fragments are reassembled before chain pre"
\t}
}
add element ip siplb_advisor buckets {
\t0 : 10.231.2.2, 1 : 10.231.3.2, 2 : 10.231.3.2, 3 : 10.231.2.2
}
`);
  });

  test('a table of ours left behind is deleted in the same transaction', () => {
    const script = createScript(V4, [B1, B2, B2, B1], true).split('\n');
    assert.equal(script[1], 'delete table ip siplb_advisor');
    assert.equal(script[2], 'create table ip siplb_advisor { comment "siplb-advisor vip 10.231.0.10:5060"; }');
  });

  test('the map update: flush and the new elements, eight buckets to a line', () => {
    const dp: DataPlane = { ...V4, buckets: 10 };
    assert.equal(mapUpdateScript(dp, [B1, B1, B1, B1, B1, B1, B1, B1, B2, B2]), `flush map ip siplb_advisor buckets
add element ip siplb_advisor buckets {
\t0 : 10.231.2.2, 1 : 10.231.2.2, 2 : 10.231.2.2, 3 : 10.231.2.2, 4 : 10.231.2.2, 5 : 10.231.2.2, 6 : 10.231.2.2, 7 : 10.231.2.2,
\t8 : 10.231.3.2, 9 : 10.231.3.2
}
`);
  });

  test('balancers on other ports than the VIP: a ports map, rewritten both ways, updated with the buckets', () => {
    const dp: DataPlane = { ...V4, balancers: [{ host: '10.231.2.2', port: 5070 }, { host: '10.231.3.2', port: 5080 }], buckets: 2, seed: 0xbeef };
    const owners = ['10.231.2.2:5070', '10.231.3.2:5080'];
    const lines = createScript(dp, owners, false).split('\n');
    assert.ok(lines.includes('\tmap ports { type mark : inet_service; }'));
    assert.ok(lines.includes('\tset backends { type ipv4_addr . inet_service; elements = { 10.231.2.2 . 5070, 10.231.3.2 . 5080 }; }'));
    assert.ok(lines.includes('\t\tip daddr 10.231.0.10 udp dport 5060 notrack meta mark set jhash ip saddr . udp sport mod 2 seed 0xbeef ip daddr set meta mark map @buckets udp dport set meta mark map @ports'));
    assert.ok(lines.includes('\t\tip saddr . tcp sport @backends ip saddr set 10.231.0.10 tcp sport set 5060'));
    assert.equal(mapUpdateScript(dp, owners), `flush map ip siplb_advisor buckets
flush map ip siplb_advisor ports
add element ip siplb_advisor buckets {
\t0 : 10.231.2.2, 1 : 10.231.3.2
}
add element ip siplb_advisor ports {
\t0 : 5070, 1 : 5080
}
`);
  });

  test('IPv6: table family ip6, ip6 matches, addresses in brackets only in names', () => {
    const dp: DataPlane = {
      table: 't6', family: 'ip6', vip: 'fd00:231::10', port: 5060, buckets: 2, seed: 1,
      balancers: [{ host: 'fd00:231:2::2', port: 5060 }, { host: 'fd00:231:3::2', port: 5060 }],
    };
    assert.equal(endpointName(dp.balancers[0]), '[fd00:231:2::2]:5060');
    assert.equal(ownerComment(dp), 'siplb-advisor vip [fd00:231::10]:5060');
    const lines = createScript(dp, ['[fd00:231:2::2]:5060', '[fd00:231:3::2]:5060'], false).split('\n');
    assert.ok(lines.includes('\tmap buckets { type mark : ipv6_addr; }'));
    assert.ok(lines.includes('\t\tip6 daddr fd00:231::10 tcp dport 5060 notrack meta mark set jhash ip6 saddr . tcp sport mod 2 seed 0x1 ip6 daddr set meta mark map @buckets'));
    assert.ok(lines.includes('\t\tip6 saddr . udp sport @backends ip6 saddr set fd00:231::10'));
    assert.ok(lines.includes('\t0 : fd00:231:2::2, 1 : fd00:231:3::2'));
    assert.equal(deleteScript(dp), 'delete table ip6 t6\n');
  });

  test('owners must fill every bucket with configured balancers', () => {
    assert.throws(() => mapUpdateScript(V4, [B1, B2]), RangeError);
    assert.throws(() => mapUpdateScript(V4, [B1, B2, B1, '10.9.9.9:5060']), RangeError);
  });
});
