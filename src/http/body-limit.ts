// maxContentLength for request bodies of unknown length (chunked): a pass-through stream that
// counts, and fails once the count passes the limit, which makes the node client abort the
// request to the node. Bodies with a Content-Length are checked before anything is sent and need
// no stream.

import { Transform, type TransformCallback } from 'node:stream';

/** The error a BodyLimit fails with; the balancer answers 413 for it. */
export class BodyTooLargeError extends Error {
  readonly code = 'SIPLB_HTTP_BODY_TOO_LARGE';
  constructor(limit: number) {
    super(`request body larger than maxContentLength (${limit} bytes)`);
  }
}

export class BodyLimit extends Transform {
  private readonly limit: number;
  private seen = 0;

  constructor(limit: number) {
    super();
    this.limit = limit;
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, done: TransformCallback): void {
    this.seen += chunk.length;
    if (this.seen > this.limit) done(new BodyTooLargeError(this.limit));
    else done(null, chunk);
  }
}
