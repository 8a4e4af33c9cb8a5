import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadConfigText } from '../../src/config/load.ts';
import { ipLoadBalancerPort, isOnePortMode, sidePorts, sidePortsV6 } from '../../src/config/ports.ts';

// How Restcomm's two generations of port keys resolve to listeners: [file, external, internal]
// as "udp:N tcp:N" strings of the transports that listen ('' = none: one-port mode).
const CASES: { name: string; input: string; external: string; internal: string }[] = [
  { name: 'nothing set: 5060 UDP and TCP, one port', input: '', external: 'udp:5060 tcp:5060', internal: '' },
  { name: 'externalPort: both transports', input: 'externalPort=5070', external: 'udp:5070 tcp:5070', internal: '' },
  { name: 'externalPort limited by externalTransport', input: 'externalPort=5070\nexternalTransport=udp', external: 'udp:5070', internal: '' },
  { name: "Restcomm's file: externalUdpPort alone opens UDP only", input: 'externalUdpPort=5060\ninternalUdpPort=5065', external: 'udp:5060', internal: 'udp:5065' },
  { name: 'per-transport ports may differ', input: 'externalUdpPort=5060\nexternalTcpPort=5062', external: 'udp:5060 tcp:5062', internal: '' },
  { name: 'per-transport key wins over externalPort', input: 'externalPort=5070\nexternalTcpPort=5072', external: 'udp:5070 tcp:5072', internal: '' },
  { name: '0 turns one transport off', input: 'externalPort=5070\nexternalTcpPort=0', external: 'udp:5070', internal: '' },
  { name: 'internalPort: both transports', input: 'internalPort=5065', external: 'udp:5060 tcp:5060', internal: 'udp:5065 tcp:5065' },
  { name: 'internal per-transport', input: 'internalTcpPort=5066', external: 'udp:5060 tcp:5060', internal: 'tcp:5066' },
  { name: 'internal 0 everywhere is one-port mode', input: 'internalUdpPort=0\ninternalTcpPort=0', external: 'udp:5060 tcp:5060', internal: '' },
  { name: "internalTransport limits the per-transport ports too (Restcomm: the transport towards nodes)", input: 'internalUdpPort=5065\ninternalTcpPort=5065\ninternalTransport=TCP', external: 'udp:5060 tcp:5060', internal: 'tcp:5065' },
  { name: 'externalTransport limits the per-transport ports too', input: 'externalUdpPort=5060\nexternalTcpPort=5060\nexternalTransport=udp', external: 'udp:5060', internal: '' },
  { name: 'TLS/WS/WSS ports open listeners of their own', input: 'externalUdpPort=5060\nexternalTlsPort=5061\nexternalWsPort=5062\ntlsCertFile=c.pem\ntlsKeyFile=k.pem', external: 'udp:5060 tls:5061 ws:5062', internal: '' },
  { name: 'a TLS or WSS port without certificate and key opens nothing', input: 'externalUdpPort=5060\nexternalTlsPort=5061\nexternalWssPort=5063', external: 'udp:5060', internal: '' },
];

function text(ports: ReturnType<typeof sidePorts>): string {
  return (['udp', 'tcp', 'tls', 'ws', 'wss'] as const).filter((t) => ports[t] !== null).map((t) => `${t}:${ports[t]}`).join(' ');
}

for (const c of CASES) {
  test(`ports: ${c.name}`, () => {
    const { config } = loadConfigText(c.input);
    assert.equal(text(sidePorts(config, 'external')), c.external);
    assert.equal(text(sidePorts(config, 'internal')), c.internal);
    assert.equal(isOnePortMode(config), c.internal === '');
  });
}

test('ports: TLS, WS and WSS ports are kept for their listeners', () => {
  const { config } = loadConfigText('externalTlsPort=5061\nexternalWsPort=5062\nexternalWssPort=5063\nexternalUdpPort=5060\ntlsCertFile=c.pem\ntlsKeyFile=k.pem');
  assert.deepEqual(sidePorts(config, 'external'), { udp: 5060, tcp: null, tls: 5061, ws: 5062, wss: 5063 });
});

test('ports: ipv6Host opens the same listeners on IPv6; an Ipv6 port key overrides one, 0 turns it off', () => {
  const { config } = loadConfigText('externalUdpPort=5060\nexternalTcpPort=5060\ninternalUdpPort=5065\nipv6Host=::1\nexternalIpv6TcpPort=0\ninternalIpv6UdpPort=5075');
  assert.deepEqual(sidePortsV6(config, 'external'), { udp: 5060, tcp: null, tls: null, ws: null, wss: null });
  assert.deepEqual(sidePortsV6(config, 'internal'), { udp: 5075, tcp: null, tls: null, ws: null, wss: null });
  assert.equal(sidePortsV6(loadConfigText('externalUdpPort=5060').config, 'external'), null);
});

const VIP_CASES: { name: string; input: string; udp: number | null; tcp: number | null }[] = [
  { name: 'no VIP port: the listener port', input: 'externalPort=5070\nexternalIpLoadBalancerAddress=192.0.2.1', udp: 5070, tcp: 5070 },
  { name: 'one VIP port for both', input: 'externalIpLoadBalancerAddress=192.0.2.1\nexternalIpLoadBalancerPort=111', udp: 111, tcp: 111 },
  {
    name: 'per-transport VIP ports win',
    input: 'externalIpLoadBalancerAddress=192.0.2.1\nexternalIpLoadBalancerPort=111\nexternalIpLoadBalancerTcpPort=112',
    udp: 111, tcp: 112,
  },
  { name: 'a VIP port of 0 means unset', input: 'externalIpLoadBalancerAddress=192.0.2.1\nexternalIpLoadBalancerUdpPort=0', udp: 5060, tcp: 5060 },
];

for (const c of VIP_CASES) {
  test(`IP load balancer ports: ${c.name}`, () => {
    const { config } = loadConfigText(c.input);
    const listen = sidePorts(config, 'external');
    assert.equal(ipLoadBalancerPort(config, 'external', 'udp', listen.udp), c.udp);
    assert.equal(ipLoadBalancerPort(config, 'external', 'tcp', listen.tcp), c.tcp);
  });
}
