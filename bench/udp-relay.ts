// The floor under siplb's CPU per call: a Node process that relays the same datagrams with no
// SIP work at all. What a client sends goes to one node unchanged, from a socket connected to
// it; what the node sends back goes to the last client heard. The node (sipp's uas) answers the
// address a request came from, so every message of a call passes here, as through siplb. Not a
// proxy (nothing is parsed, no Via is added): only for `npm run bench -- --relay-only`.
//
//   node --max-semi-space-size=8 bench/udp-relay.ts LISTEN_PORT NODE_PORT
//
// Loopback only. Prints "relay ready" once both sockets are bound; exits on SIGTERM.

import dgram from 'node:dgram';

const [listenPort, nodePort] = process.argv.slice(2).map(Number);
if (!Number.isInteger(listenPort) || !Number.isInteger(nodePort)) {
  process.stderr.write('usage: node bench/udp-relay.ts LISTEN_PORT NODE_PORT\n');
  process.exit(2);
}

// The receive queue siplb asks for (transport/udp.ts), so the two queue alike.
const outside = dgram.createSocket({ type: 'udp4', recvBufferSize: 256 * 1024 });
const towardsNode = dgram.createSocket({ type: 'udp4', recvBufferSize: 256 * 1024 });
let clientPort = 0;
outside.on('message', (data, rinfo) => {
  clientPort = rinfo.port;
  towardsNode.send(data);
});
towardsNode.on('message', (data) => {
  if (clientPort !== 0) outside.send(data, clientPort, '127.0.0.1');
});
for (const s of [outside, towardsNode]) s.on('error', (err) => process.stderr.write(`relay: ${err.message}\n`));
process.on('SIGTERM', () => process.exit(0));

outside.bind(listenPort, '127.0.0.1', () => {
  towardsNode.bind(0, '127.0.0.1', () => {
    towardsNode.connect(nodePort, '127.0.0.1', () => process.stdout.write('relay ready\n'));
  });
});
