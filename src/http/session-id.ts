// Session stickiness the way Apache mod_jk does it in front of Tomcat and JBoss. A servlet
// container names its sessions `<id>.<jvmRoute>`, where jvmRoute is the node's configured name,
// and hands the id back to the client as the JSESSIONID cookie, or, for clients without cookies,
// in the URL (`/app/page;jsessionid=<id>.<route>`, or as a query parameter). The balancer reads
// the route from the id and sends the request to the node with that jvmRoute.
//
// Pure string scanning over the request target and the Cookie header: no regular expressions,
// no decoding, and nothing allocated for a request that carries no session.

/** `;jsessionid=` path parameter (case as Tomcat writes it and as mod_jk matches it). */
const PATH_PARAM = ';jsessionid=';
const QUERY_PARAM = 'jsessionid';
/** Cookie name, compared without regard to case. */
const COOKIE_NAME = 'jsessionid';

const NONE: readonly string[] = Object.freeze([]);

/** Where the request target's path ends: at the query or the fragment. */
function pathEnd(url: string): number {
  const q = url.indexOf('?');
  if (q !== -1) return q;
  const h = url.indexOf('#');
  return h === -1 ? url.length : h;
}

/** The session id of a `;jsessionid=` path parameter, or null. */
export function pathSessionId(url: string): string | null {
  const end = pathEnd(url);
  const at = url.indexOf(PATH_PARAM);
  if (at === -1 || at >= end) return null;
  const start = at + PATH_PARAM.length;
  let stop = start;
  // The parameter ends at the next parameter, path segment or the end of the path.
  while (stop < end) {
    const c = url.charCodeAt(stop);
    if (c === 0x3b /* ; */ || c === 0x2f /* / */) break;
    stop++;
  }
  return stop > start ? url.slice(start, stop) : null;
}

/** The first non-empty `jsessionid` query parameter, or null. */
export function querySessionId(url: string): string | null {
  const q = url.indexOf('?');
  if (q === -1) return null;
  let end = url.indexOf('#');
  if (end === -1) end = url.length;
  else if (end < q) return null;
  let i = q + 1;
  while (i < end) {
    let amp = url.indexOf('&', i);
    if (amp === -1 || amp > end) amp = end;
    const eq = i + QUERY_PARAM.length;
    if (eq < amp && url.charCodeAt(eq) === 0x3d /* = */ && url.startsWith(QUERY_PARAM, i) && amp > eq + 1) {
      return url.slice(eq + 1, amp);
    }
    i = amp + 1;
  }
  return null;
}

function isSpace(c: number): boolean {
  return c === 0x20 || c === 0x09;
}

/** name[start, end) equals COOKIE_NAME, ASCII case-insensitively. */
function isCookieName(s: string, start: number, end: number): boolean {
  if (end - start !== COOKIE_NAME.length) return false;
  for (let i = 0; i < COOKIE_NAME.length; i++) {
    // ASCII letters: setting bit 0x20 lower-cases them and leaves '_' and digits alone here.
    if ((s.charCodeAt(start + i) | 0x20) !== COOKIE_NAME.charCodeAt(i)) return false;
  }
  return true;
}

/**
 * Every JSESSIONID cookie value in a Cookie header, in order: a browser sends one per path that
 * set one (e.g. `/` and `/app`), and only one of them may name a live route. Pairs are separated
 * by ';' (RFC 6265) or ',' (RFC 2965 clients); a value in double quotes is unquoted.
 */
export function cookieSessionIds(cookie: string | undefined): readonly string[] {
  if (cookie === undefined || cookie.length < COOKIE_NAME.length + 2) return NONE;
  let out: string[] | null = null;
  const n = cookie.length;
  let i = 0;
  while (i < n) {
    // One pair: [i, stop).
    let stop = i;
    while (stop < n) {
      const c = cookie.charCodeAt(stop);
      if (c === 0x3b /* ; */ || c === 0x2c /* , */) break;
      stop++;
    }
    const eq = cookie.indexOf('=', i);
    if (eq !== -1 && eq < stop) {
      let ns = i;
      let ne = eq;
      while (ns < ne && isSpace(cookie.charCodeAt(ns))) ns++;
      while (ne > ns && isSpace(cookie.charCodeAt(ne - 1))) ne--;
      if (isCookieName(cookie, ns, ne)) {
        let vs = eq + 1;
        let ve = stop;
        while (vs < ve && isSpace(cookie.charCodeAt(vs))) vs++;
        while (ve > vs && isSpace(cookie.charCodeAt(ve - 1))) ve--;
        if (ve - vs >= 2 && cookie.charCodeAt(vs) === 0x22 && cookie.charCodeAt(ve - 1) === 0x22) {
          vs++;
          ve--;
        }
        if (ve > vs) (out ??= []).push(cookie.slice(vs, ve));
      }
    }
    i = stop + 1;
  }
  return out ?? NONE;
}

/**
 * The session ids a request carries, in the order mod_jk looks: the path parameter, the query
 * parameter, then the cookies. Empty (and not allocated) for a request without a session.
 */
export function sessionIds(url: string, cookie: string | undefined): readonly string[] {
  const fromPath = url.length > PATH_PARAM.length ? pathSessionId(url) : null;
  const fromQuery = querySessionId(url);
  const fromCookies = cookieSessionIds(cookie);
  if (fromPath === null && fromQuery === null) return fromCookies;
  const out: string[] = [];
  if (fromPath !== null) out.push(fromPath);
  if (fromQuery !== null) out.push(fromQuery);
  for (const id of fromCookies) out.push(id);
  return out;
}

/** The route of a session id: the text after its last '.', or null when it has none. */
export function routeOf(sessionId: string): string | null {
  const dot = sessionId.lastIndexOf('.');
  return dot === -1 || dot === sessionId.length - 1 ? null : sessionId.slice(dot + 1);
}
