// The dashboard of a real siplb process, in headless Chromium: the page shows both nodes, a
// press on Drain takes one out (its state turns "draining" over the live stream) and the new
// calls sent afterwards all reach the other node; Activate brings it back.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import type { Page } from 'playwright-core';
import { allocatePorts, releasePorts } from './harness/ports.ts';
import { startSiplb, type SiplbHandle } from './harness/siplb.ts';
import { launchChromium, type LaunchedChromium } from '../helpers/chromium.ts';
import { ScriptedUas } from '../helpers/scripted-uas.ts';
import { eventually } from '../helpers/wait.ts';

const WAIT_MS = 8_000;

function sendInvites(lbPort: number, prefix: string, count: number): Promise<void> {
  const socket = dgram.createSocket('udp4');
  return new Promise<void>((resolve) => {
    socket.bind(0, '127.0.0.1', () => {
      const port = socket.address().port;
      for (let i = 0; i < count; i++) {
        const callId = `${prefix}-${i}`;
        socket.send([
          `INVITE sip:service@127.0.0.1:${lbPort} SIP/2.0`, `Via: SIP/2.0/UDP 127.0.0.1:${port};branch=z9hG4bK-${callId};rport`,
          'Max-Forwards: 70', `From: <sip:u${i}@example.org>;tag=f${i}`, 'To: <sip:service@example.org>', `Call-ID: ${callId}`,
          'CSeq: 1 INVITE', `Contact: <sip:u${i}@127.0.0.1:${port}>`, 'Content-Length: 0', '', '',
        ].join('\r\n'), lbPort, '127.0.0.1');
      }
      // The answers do not matter here; the nodes count what reached them.
      setTimeout(() => { socket.close(); resolve(); }, 200);
    });
  });
}

async function stateOf(page: Page, nodeId: string): Promise<string | null> {
  return page.textContent(`tr[data-node="${nodeId}"] .state`);
}

test('dashboard on a real siplb: see the nodes, press Drain, the state changes and new calls avoid the node', { timeout: 90_000 }, async () => {
  const ports = await allocatePorts(2);
  const [lbPort, apiPort] = ports;
  const nodes = [await ScriptedUas.start(), await ScriptedUas.start()];
  const ids = nodes.map((n) => `127.0.0.1:${n.port}`);
  let siplb: SiplbHandle | undefined;
  let browser: LaunchedChromium | undefined;
  try {
    siplb = await startSiplb({
      externalUdpPort: String(lbPort), apiPort: String(apiPort), isSendTrying: 'false',
      nodes: ids.map((id) => `${id};transport=udp`).join(','),
    }, { logLevel: 'info' });
    browser = await launchChromium();
    const page = await browser.context.newPage();
    const problems: string[] = [];
    page.on('pageerror', (err) => problems.push(`pageerror: ${err.message}`));
    page.on('console', (m) => { if (m.type() === 'error') problems.push(`console: ${m.text()}`); });
    await page.goto(`http://127.0.0.1:${apiPort}/`);
    for (const id of ids) await page.locator(`tr[data-node="${id}"] .state`).waitFor({ timeout: WAIT_MS });
    await eventually('both nodes shown active', WAIT_MS, async () => (await stateOf(page, ids[0])) === 'active' && (await stateOf(page, ids[1])) === 'active');

    await page.click(`tr[data-node="${ids[0]}"] button[data-action="drain"]`);
    await eventually('the drained node shown draining', WAIT_MS, async () => (await stateOf(page, ids[0])) === 'draining');
    await sendInvites(lbPort, 'after-drain', 12);
    await eventually('all 12 new calls at the other node', WAIT_MS, () => nodes[1].requests('INVITE').filter((m) => m.callId.startsWith('after-drain')).length === 12);
    assert.equal(nodes[0].requests('INVITE').filter((m) => m.callId.startsWith('after-drain')).length, 0, 'the drained node got none');

    await page.click(`tr[data-node="${ids[0]}"] button[data-action="activate"]`);
    await eventually('the node shown active again', WAIT_MS, async () => (await stateOf(page, ids[0])) === 'active');
    await sendInvites(lbPort, 'after-activate', 12);
    await eventually('new calls reach the node again', WAIT_MS, () => nodes[0].requests('INVITE').some((m) => m.callId.startsWith('after-activate')));
    assert.deepEqual(problems, [], 'no page errors');
  } finally {
    await browser?.close();
    await siplb?.stop();
    for (const n of nodes) await n.close();
    releasePorts(ports);
  }
});
