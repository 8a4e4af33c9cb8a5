// Session ids and routes as mod_jk reads them: tables of request targets and Cookie headers.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cookieSessionIds, pathSessionId, querySessionId, routeOf, sessionIds } from '../../src/http/session-id.ts';

const paths: [string, string | null][] = [
  ['/app/page;jsessionid=ABC.node1', 'ABC.node1'],
  ['/app/page;jsessionid=ABC.node1?x=1', 'ABC.node1'],
  ['/app/page;jsessionid=ABC.node1#top', 'ABC.node1'],
  ['/app;jsessionid=ABC.node1/page', 'ABC.node1'],
  ['/app/page;jsessionid=ABC.node1;other=2', 'ABC.node1'],
  ['/app/page;v=1;jsessionid=ABC.n', 'ABC.n'],
  ['/app/page;jsessionid=', null],
  ['/app/page;jsessionid=;x', null],
  ['/app/page;JSESSIONID=ABC.node1', null], // the path parameter's name is case-sensitive, as in Tomcat
  ['/app/page?q=;jsessionid=ABC.node1', null], // in the query, not the path
  ['/app/page', null],
  ['/', null],
];
for (const [url, expected] of paths) {
  test(`path parameter: ${url} -> ${expected}`, () => assert.equal(pathSessionId(url), expected));
}

const queries: [string, string | null][] = [
  ['/app?jsessionid=ABC.node1', 'ABC.node1'],
  ['/app?a=1&jsessionid=ABC.node1&b=2', 'ABC.node1'],
  ['/app?jsessionid=&jsessionid=ABC.n2', 'ABC.n2'],
  ['/app?jsessionid=ABC.node1#frag', 'ABC.node1'],
  ['/app?xjsessionid=ABC.node1', null],
  ['/app?jsessionidx=ABC.node1', null],
  ['/app?jsessionid', null],
  ['/app#?jsessionid=ABC', null],
  ['/app', null],
];
for (const [url, expected] of queries) {
  test(`query parameter: ${url} -> ${expected}`, () => assert.equal(querySessionId(url), expected));
}

const cookies: [string | undefined, string[]][] = [
  [undefined, []],
  ['', []],
  ['JSESSIONID=ABC.node1', ['ABC.node1']],
  ['jsessionid=ABC.node1', ['ABC.node1']],
  ['JSessionId=ABC.node1', ['ABC.node1']],
  ['theme=dark; JSESSIONID=ABC.node1; lang=en', ['ABC.node1']],
  ['theme=dark;JSESSIONID=ABC.node1', ['ABC.node1']],
  ['  JSESSIONID  =  ABC.node1  ', ['ABC.node1']],
  ['JSESSIONID="ABC.node1"', ['ABC.node1']],
  ['$Version=1, JSESSIONID=ABC.node1', ['ABC.node1']], // RFC 2965 separator
  ['JSESSIONID=OLD.node9; JSESSIONID=NEW.node2', ['OLD.node9', 'NEW.node2']], // one per cookie path
  ['XJSESSIONID=ABC.node1; JSESSIONIDX=DEF.node2', []],
  ['JSESSIONID=; other=1', []],
  ['JSESSIONID', []],
  ['a=b=c; JSESSIONID=X.y=z', ['X.y=z']],
];
for (const [cookie, expected] of cookies) {
  test(`cookie: ${JSON.stringify(cookie)} -> ${JSON.stringify(expected)}`, () => assert.deepEqual([...cookieSessionIds(cookie)], expected));
}

test('session ids in mod_jk\'s order: path parameter, query parameter, cookies', () => {
  assert.deepEqual([...sessionIds('/a;jsessionid=P.n1?jsessionid=Q.n2', 'JSESSIONID=C.n3')], ['P.n1', 'Q.n2', 'C.n3']);
  assert.deepEqual([...sessionIds('/a', 'JSESSIONID=C.n3')], ['C.n3']);
  assert.deepEqual([...sessionIds('/a', undefined)], []);
  // Nothing allocated for a request without a session: the same empty list every time.
  assert.equal(sessionIds('/a', undefined), sessionIds('/b', 'x=1'));
});

const routes: [string, string | null][] = [
  ['ABC.node1', 'node1'],
  ['ABC.node1.eu', 'eu'], // the text after the last dot
  ['A.B.C', 'C'],
  ['ABC', null],
  ['ABC.', null],
  ['.node1', 'node1'],
  ['', null],
];
for (const [id, expected] of routes) {
  test(`route of ${JSON.stringify(id)} -> ${expected}`, () => assert.equal(routeOf(id), expected));
}
