// The nftables text of the sprayer's data plane, generated and nothing else (nftables.ts runs
// it). One table of the advisor's own, marked as its own by the table's comment:
//
//   - prerouting, at raw priority (before conntrack): a packet for VIP:PORT is taken out of
//     connection tracking (notrack), its source address and port hashed into a bucket (jhash,
//     kept in the packet mark for the two lookups), and its destination rewritten to the
//     bucket's balancer (and port, when a balancer listens on another port than the VIP's).
//     Stateless: with conntrack's DNAT a UDP flow would stay pinned to a dead balancer until its
//     entry expired (120 s), whatever the map says.
//   - the way back, balancer to client, is taken out of conntrack too (conntrack would see half
//     a flow: TCP answers it never saw opened are invalid), and in postrouting its source is
//     rewritten to VIP:PORT. This covers requests a balancer sends to a client as well.
//     Packets for the sprayer itself (the advisor's probe answers) keep their tracking.
//   - a chain nothing jumps to holds one conntrack expression: it makes the kernel load
//     connection tracking, and with it IP reassembly, in front of the raw hook. Without it a
//     SIP message over UDP larger than the path MTU arrives in fragments, and every fragment
//     after the first carries no UDP header to match and rewrite.
//
// The bucket map is the only thing that changes while the advisor runs: `flush map` and the new
// elements in one `nft -f` script, which the kernel applies as one transaction.

export type Family = 'ip' | 'ip6';

export interface Endpoint {
  /** IP literal, IPv6 without brackets. */
  readonly host: string;
  readonly port: number;
}

export interface DataPlane {
  /** nftables table name (an identifier). */
  readonly table: string;
  readonly family: Family;
  readonly vip: string;
  /** The VIP's SIP port, for UDP and TCP alike. */
  readonly port: number;
  /** Every configured balancer: the return path is rewritten for all of them, healthy or not. */
  readonly balancers: readonly Endpoint[];
  readonly buckets: number;
  /** jhash seed: two sprayers with the same seed and balancers spray alike. */
  readonly seed: number;
}

/** What the table's comment starts with: the mark of a table siplb-advisor made. */
export const OWNER_MARK = 'siplb-advisor';

/** `10.0.0.1:5060`, `[fd00::1]:5060`: a balancer's name in the table, the logs and /state. */
export function endpointName(e: Endpoint): string {
  return `${e.host.includes(':') ? `[${e.host}]` : e.host}:${e.port}`;
}

export function ownerComment(dp: DataPlane): string {
  return `${OWNER_MARK} vip ${endpointName({ host: dp.vip, port: dp.port })}`;
}

/** Whether the balancers listen on a port other than the VIP's (then ports are rewritten both ways). */
function rewritesPorts(dp: DataPlane): boolean {
  return dp.balancers.some((b) => b.port !== dp.port);
}

function addrType(dp: DataPlane): string {
  return dp.family === 'ip' ? 'ipv4_addr' : 'ipv6_addr';
}

/**
 * The whole table, created in one transaction. `replace`: a table of this name that is ours
 * (left by an advisor that crashed) exists and goes in the same transaction; otherwise `create`
 * fails if a table of this name appeared since it was checked, and nothing else is touched.
 */
export function createScript(dp: DataPlane, owners: readonly string[], replace: boolean): string {
  const f = dp.family;
  const l3 = f === 'ip' ? 'ip' : 'ip6';
  const ports = rewritesPorts(dp);
  const backends = dp.balancers.map((b) => `${b.host} . ${b.port}`).join(', ');
  const seed = `0x${dp.seed.toString(16)}`;
  const lines = [
    `# siplb-advisor: ${endpointName({ host: dp.vip, port: dp.port })} sprayed over ${dp.balancers.length} balancer(s) by stateless NAT (docs/sprayer.md)`,
    ...(replace ? [`delete table ${f} ${dp.table}`] : []),
    `create table ${f} ${dp.table} { comment "${ownerComment(dp)}"; }`,
    `table ${f} ${dp.table} {`,
    `\tmap buckets { type mark : ${addrType(dp)}; }`,
    ...(ports ? ['\tmap ports { type mark : inet_service; }'] : []),
    `\tset backends { type ${addrType(dp)} . inet_service; elements = { ${backends} }; }`,
    '\tchain pre {',
    '\t\ttype filter hook prerouting priority raw; policy accept;',
  ];
  for (const p of ['udp', 'tcp']) {
    lines.push(`\t\t${l3} daddr ${dp.vip} ${p} dport ${dp.port} notrack meta mark set jhash ${l3} saddr . ${p} sport mod ${dp.buckets} seed ${seed}` +
      ` ${l3} daddr set meta mark map @buckets${ports ? ` ${p} dport set meta mark map @ports` : ''}`);
  }
  for (const p of ['udp', 'tcp']) lines.push(`\t\t${l3} saddr . ${p} sport @backends fib daddr type != local notrack`);
  lines.push('\t}', '\tchain post {', '\t\ttype filter hook postrouting priority srcnat; policy accept;');
  for (const p of ['udp', 'tcp']) {
    lines.push(`\t\t${l3} saddr . ${p} sport @backends ${l3} saddr set ${dp.vip}${ports ? ` ${p} sport set ${dp.port}` : ''}`);
  }
  lines.push('\t}', '\tchain defrag {', '\t\tct state untracked counter comment "never jumped to: loads conntrack, so fragments are reassembled before chain pre"', '\t}', '}');
  return lines.join('\n') + '\n' + mapElements(dp, owners);
}

/** The new bucket map, replacing the old one in one transaction. */
export function mapUpdateScript(dp: DataPlane, owners: readonly string[]): string {
  const flush = [`flush map ${dp.family} ${dp.table} buckets`];
  if (rewritesPorts(dp)) flush.push(`flush map ${dp.family} ${dp.table} ports`);
  return flush.join('\n') + '\n' + mapElements(dp, owners);
}

export function deleteScript(dp: DataPlane): string {
  return `delete table ${dp.family} ${dp.table}\n`;
}

/** `add element` lines for the buckets (and ports) maps, eight buckets to a line. */
function mapElements(dp: DataPlane, owners: readonly string[]): string {
  if (owners.length !== dp.buckets) throw new RangeError(`mapElements: ${owners.length} owners for ${dp.buckets} buckets`);
  const byName = new Map(dp.balancers.map((b) => [endpointName(b), b]));
  const endpoints = owners.map((o) => {
    const e = byName.get(o);
    if (e === undefined) throw new RangeError(`mapElements: ${o} is not a configured balancer`);
    return e;
  });
  const block = (name: string, value: (e: Endpoint) => string | number): string => {
    const rows: string[] = [];
    for (let i = 0; i < endpoints.length; i += 8) {
      rows.push('\t' + endpoints.slice(i, i + 8).map((e, j) => `${i + j} : ${value(e)}`).join(', '));
    }
    return `add element ${dp.family} ${dp.table} ${name} {\n${rows.join(',\n')}\n}\n`;
  };
  return block('buckets', (e) => e.host) + (rewritesPorts(dp) ? block('ports', (e) => e.port) : '');
}
