// The --help texts of siplb, siplb-node and siplb-demo-node (siplb-advisor's is in
// advisor-options.ts, next to its options). test/cli/help.test.ts checks that each names every
// option its command accepts.

import { TOKEN_ENV } from './agent-options.ts';

export const SIPLB_USAGE = 'usage: siplb [path/to/lb.properties | path/to/lb-configuration.xml] [--log-level error|warn|info|debug] [--log-format json|pretty]';

/** The options siplb's own command-line loop accepts (src/cli/siplb.ts). */
export const SIPLB_OPTIONS = ['log-level', 'log-format', 'version', 'help'] as const;

const DOCS = `Documentation: README.md and docs/ in the repository, and in the installed package
($(npm root -g)/siplb/README.md, .../docs/). Report problems with the output of --version.`;

export const SIPLB_HELP = `${SIPLB_USAGE}

A stateless SIP and HTTP load balancer that reads Restcomm's lb.properties or
lb-configuration.xml (told apart by content). Without a file it runs on the built-in defaults:
127.0.0.1:5060, UDP and TCP, no nodes. Sample files: examples/ (README.md there).

  FILE                     the configuration. Every key, its default and meaning:
                           docs/configuration.md (and README.md, "Configuration")
  --log-level LEVEL        error, warn, info or debug (default info, or LOG_LEVEL)
  --log-format FORMAT      json or pretty (default pretty on a terminal, else JSON lines)
  --version                print the version and exit
  -h, --help               this text

Signals: SIGHUP reads FILE again and applies what can change without a restart, TLS files
included (docs/operations.md); SIGTERM/SIGINT stop gracefully (new calls get 503 for up to
shutdownTimeout while calls in progress go on), a second one stops at once.
Exit codes: 0 after SIGTERM/SIGINT; 2 for a bad command line or configuration (one line on
stderr naming the key, the value and the reason); 1 when a socket cannot be bound.

${DOCS}`;

const AGENT_HELP = `  --balancers LIST         the balancers' heartbeat endpoints, HOST:PORT[;HOST:PORT...]
                           (PORT defaults to 2610, the balancers' heartbeatPort)
  --host-name NAME         informational name sent with the heartbeats
  --version V              the application version the node announces (default "0"); new calls
                           go to the highest live version (docs/heartbeat-protocol.md).
                           --version as the only argument prints this command's version
  --jvm-route R            HTTP stickiness id
  --http-port N            the node's HTTP port, for siplb's HTTP balancing
  --ssl-port N             the node's HTTPS port
  --interval ms            heartbeat period (default 1000)
  --request-timeout ms     per heartbeat request (default 2000)
  --grace ms               on SIGTERM/SIGINT: drain (no new calls), then stop after ms
                           (default 30000); a second signal stops at once
  --token-file PATH        a file holding the balancers' heartbeatToken (or the environment
                           variable ${TOKEN_ENV}, never a flag: command lines are public)
  --log-level LEVEL        error, warn, info or debug (default info, or LOG_LEVEL)
  -h, --help               this text`;

export const NODE_USAGE = 'usage: siplb-node --balancers HOST:PORT[;HOST:PORT...] --ip IP (--udp-port N | --tcp-port N) ' +
  '[--tls-port N] [--ws-port N] [--wss-port N] [--http-port N] [--ssl-port N] [--host-name NAME] [--version V] ' +
  '[--jvm-route R] [--interval ms] [--request-timeout ms] [--grace ms] [--token-file PATH] [--log-level error|warn|info|debug]' +
  ` (the balancers' heartbeatToken: --token-file PATH or environment ${TOKEN_ENV})`;

export const NODE_HELP = `${NODE_USAGE}

Registers a SIP application server (any language, any process) with siplb balancers over the
heartbeat protocol (docs/heartbeat-protocol.md) and keeps it registered while it runs.

  --ip IP                  the address the node's SIP ports listen on; required
  --udp-port N             the node's SIP UDP port (this or --tcp-port required)
  --tcp-port N             the node's SIP TCP port
  --tls-port N             the node's SIP TLS port
  --ws-port N              the node's SIP WebSocket port
  --wss-port N             the node's SIP secure WebSocket port
${AGENT_HELP}

Exit codes: 0 after SIGTERM/SIGINT; 2 for a bad command line (one line on stderr).

${DOCS}`;

export const DEMO_NODE_USAGE = 'usage: siplb-demo-node --ip IP --port N [--transport udp,tcp] [--answer-delay ms] [--stats-port N] ' +
  '[--balancers HOST:PORT[;HOST:PORT...] [--version V] [--jvm-route R] [--host-name NAME] [--interval ms] ' +
  '[--request-timeout ms] [--grace ms] [--token-file PATH]] [--log-level error|warn|info|debug]' +
  ` (the balancers' heartbeatToken: --token-file PATH or environment ${TOKEN_ENV})`;

export const DEMO_NODE_HELP = `${DEMO_NODE_USAGE}

A small SIP application server for demos and tests: answers INVITE (180, then 200 with SDP),
ends calls on BYE or CANCEL (487 before the answer), answers OPTIONS, REGISTER and MESSAGE with
200; with --balancers it registers itself with siplb balancers (heartbeat protocol).

  --ip IP                  the unicast address calls are sent to (Contact, SDP, heartbeat); required
  --port N                 the SIP port; required
  --transport LIST         udp, tcp or both (default udp,tcp)
  --answer-delay ms        wait between the 180 and the 200 (default 0)
  --stats-port N           serve the counters as JSON on http://127.0.0.1:N/
${AGENT_HELP}

Exit codes: 0 after SIGTERM/SIGINT; 2 for a bad command line; 1 when a socket cannot be bound.

${DOCS}`;
