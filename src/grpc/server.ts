/**
 * A small gRPC server on node:http2, serving mcp-pin's two services
 * (ext_proc and grpc.health.v1) on one port.
 *
 * Why not @grpc/grpc-js: Envoy opens one gRPC stream per HTTP request, and
 * grpc-js's per-stream machinery (interceptor chain, Node stream objects,
 * metadata and status objects) was about 40% of mcp-pin's CPU in the
 * benchmark (`npm run bench:profile`). This does only what those services
 * need: length-prefixed messages in and out, a status in the trailers,
 * GOAWAY on close, keepalive pings. No compression (Envoy does not compress
 * ext_proc), no deadlines (Envoy's message_timeout governs), no TLS (the
 * port is for the local Envoy). Tests speak to it with @grpc/grpc-js
 * clients and with real Envoy.
 */
import * as http2 from 'node:http2';

/** gRPC status codes used here. */
export const GrpcStatus = {
  OK: 0,
  CANCELLED: 1,
  UNKNOWN: 2,
  INVALID_ARGUMENT: 3,
  NOT_FOUND: 5,
  RESOURCE_EXHAUSTED: 8,
  UNIMPLEMENTED: 12,
  INTERNAL: 13,
  UNAVAILABLE: 14,
} as const;

/** Ends a call with this status when thrown by a handler or a decoder. */
export class GrpcError extends Error {
  constructor(
    readonly code: number,
    message: string,
  ) {
    super(message);
  }
}

/** One RPC as its handler sees it. */
export interface ServerCall {
  /** Sends one message (response headers go out with the first). Ignored once ended. */
  write(message: Buffer): void;
  /** Ends the RPC with a status, OK by default. Only the first call counts. */
  end(code?: number, message?: string): void;
  readonly ended: boolean;
}

export interface CallHandlers {
  /** One request message, in order. */
  message(m: Buffer): void;
  /** The client will send nothing more. */
  halfClose(): void;
  /** The stream is closed; `cancelled` when that happened before end() (client reset, connection lost). Called once. */
  closed(cancelled: boolean): void;
}

/** Starts handling one RPC. */
export type Method = (call: ServerCall) => CallHandlers;

export interface GrpcServerOptions {
  /** Largest request message accepted; bigger ones end the call with RESOURCE_EXHAUSTED. */
  maxMessageBytes: number;
  /** Ping each connection this often (0: never) and drop it if no answer within keepaliveTimeoutMs. */
  keepaliveMs: number;
  keepaliveTimeoutMs: number;
}

const GRPC_CONTENT_TYPE = 'application/grpc';

class H2Call implements ServerCall {
  ended = false;
  private headersSent = false;
  private trailers: http2.OutgoingHttpHeaders = { 'grpc-status': '0' };

  constructor(private readonly stream: http2.ServerHttp2Stream) {}

  write(message: Buffer): void {
    if (this.ended || this.stream.destroyed) return;
    const frame = Buffer.allocUnsafe(5 + message.length);
    frame[0] = 0; // not compressed
    frame.writeUInt32BE(message.length, 1);
    message.copy(frame, 5);
    try {
      if (!this.headersSent) {
        this.headersSent = true;
        this.stream.respond({ ':status': 200, 'content-type': GRPC_CONTENT_TYPE }, { waitForTrailers: true });
        this.stream.once('wantTrailers', () => {
          try {
            this.stream.sendTrailers(this.trailers);
          } catch {
            // The stream was reset meanwhile: nobody left to tell.
          }
        });
      }
      this.stream.write(frame);
    } catch {
      // The session is going away under us; the peer sees the stream reset.
    }
  }

  end(code: number = GrpcStatus.OK, message?: string): void {
    if (this.ended) return;
    this.ended = true;
    if (this.stream.destroyed || this.stream.closed) return;
    const status: http2.OutgoingHttpHeaders = { 'grpc-status': String(code) };
    if (message) status['grpc-message'] = encodeURIComponent(message);
    try {
      if (!this.headersSent) {
        // Trailers-only response: status in the one HEADERS frame.
        this.headersSent = true;
        this.stream.respond({ ':status': 200, 'content-type': GRPC_CONTENT_TYPE, ...status }, { endStream: true });
      } else {
        this.trailers = status;
        this.stream.end();
      }
    } catch {
      // Session already going away; the peer sees the stream reset.
    }
  }

  /** Marks the call over without sending anything (the stream is already gone). */
  abandon(): void {
    this.ended = true;
  }
}

/** Splits a stream's bytes into gRPC messages (1-byte flag, 4-byte length, message). */
export class MessageFramer {
  private chunks: Buffer[] = [];
  private buffered = 0;
  /** Length of the message being read, once its prefix is in; -1 before. */
  private need = -1;

  constructor(private readonly maxMessageBytes: number) {}

  push(chunk: Buffer, deliver: (m: Buffer) => void): void {
    this.chunks.push(chunk);
    this.buffered += chunk.length;
    for (;;) {
      if (this.need < 0) {
        if (this.buffered < 5) return;
        const prefix = this.take(5);
        if (prefix[0] !== 0) throw new GrpcError(GrpcStatus.INTERNAL, 'compressed message, but no compression was negotiated');
        const len = prefix.readUInt32BE(1);
        if (len > this.maxMessageBytes) throw new GrpcError(GrpcStatus.RESOURCE_EXHAUSTED, `message of ${len} bytes is over the ${this.maxMessageBytes} byte limit`);
        this.need = len;
      }
      if (this.buffered < this.need) return;
      const m = this.take(this.need);
      this.need = -1;
      deliver(m);
    }
  }

  /** The next n bytes: a view when one chunk holds them, else one copy. */
  private take(n: number): Buffer {
    if (n === 0) return Buffer.alloc(0);
    this.buffered -= n;
    const first = this.chunks[0]!;
    if (first.length >= n) {
      if (first.length === n) this.chunks.shift();
      else this.chunks[0] = first.subarray(n);
      return first.subarray(0, n);
    }
    const out = Buffer.allocUnsafe(n);
    let off = 0;
    while (off < n) {
      const c = this.chunks[0]!;
      const k = Math.min(c.length, n - off);
      c.copy(out, off, 0, k);
      off += k;
      if (k === c.length) this.chunks.shift();
      else this.chunks[0] = c.subarray(k);
    }
    return out;
  }
}

export class GrpcServer {
  private readonly methods = new Map<string, Method>();
  private readonly sessions = new Set<http2.ServerHttp2Session>();
  private readonly h2: http2.Http2Server;

  constructor(private readonly opts: GrpcServerOptions) {
    // Session memory in MB: many concurrent streams with buffered bodies must fit.
    this.h2 = http2.createServer({ maxSessionMemory: 256 });
    // Answers are small frames written right after others: with Nagle on,
    // one waits for the peer's delayed ACK (up to 40 ms on Linux).
    this.h2.on('connection', (socket: import('node:net').Socket) => socket.setNoDelay(true));
    this.h2.on('session', (s: http2.ServerHttp2Session) => this.track(s));
    this.h2.on('stream', (stream, headers) => this.onStream(stream, headers));
    // A peer that breaks HTTP/2 loses its connection; nothing else is affected.
    this.h2.on('sessionError', () => {});
  }

  /** Serves `path` ("/package.Service/Method"). */
  add(path: string, method: Method): void {
    this.methods.set(path, method);
  }

  listen(host: string, port: number): Promise<number> {
    return new Promise((resolve, reject) => {
      const onError = (err: Error): void => reject(err);
      this.h2.once('error', onError);
      this.h2.listen(port, host, () => {
        this.h2.off('error', onError);
        const a = this.h2.address();
        resolve(typeof a === 'object' && a ? a.port : port);
      });
    });
  }

  /**
   * No new connections; GOAWAY on open ones, whose streams may finish.
   * Resolves when all are closed, dropping whatever is left after graceMs.
   */
  close(graceMs = 2000): Promise<void> {
    return new Promise((resolve) => {
      const t = setTimeout(() => this.destroy(), graceMs).unref();
      this.h2.close(() => {
        clearTimeout(t);
        resolve();
      });
      for (const s of this.sessions) s.close();
    });
  }

  /** Drops every connection at once. */
  destroy(): void {
    for (const s of this.sessions) s.destroy();
    this.h2.close();
  }

  private track(s: http2.ServerHttp2Session): void {
    this.sessions.add(s);
    let timer: NodeJS.Timeout | undefined;
    if (this.opts.keepaliveMs > 0) {
      // Notices a peer that vanished without closing its connection.
      timer = setInterval(() => {
        if (s.destroyed || s.closed) return;
        const deadline = setTimeout(() => s.destroy(), this.opts.keepaliveTimeoutMs).unref();
        try {
          s.ping((err) => {
            clearTimeout(deadline);
            if (err) s.destroy();
          });
        } catch {
          clearTimeout(deadline);
        }
      }, this.opts.keepaliveMs).unref();
    }
    s.once('close', () => {
      this.sessions.delete(s);
      if (timer) clearInterval(timer);
    });
  }

  private onStream(stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders): void {
    // Stream errors (resets, write after close) end that stream only.
    stream.on('error', () => {});
    const contentType = headers['content-type'];
    if (headers[':method'] !== 'POST' || typeof contentType !== 'string' || !contentType.startsWith(GRPC_CONTENT_TYPE)) {
      try {
        stream.respond({ ':status': 415 }, { endStream: true });
      } catch {
        // already gone
      }
      return;
    }
    const call = new H2Call(stream);
    const path = String(headers[':path']);
    const method = this.methods.get(path);
    let handlers: CallHandlers | undefined;
    if (!method) {
      call.end(GrpcStatus.UNIMPLEMENTED, `unknown method ${path}`);
    } else {
      try {
        handlers = method(call);
      } catch (err) {
        call.end(GrpcStatus.INTERNAL, (err as Error)?.message ?? 'handler failed');
      }
    }
    const framer = new MessageFramer(this.opts.maxMessageBytes);
    const deliver = (m: Buffer): void => {
      if (!call.ended) handlers!.message(m);
    };
    stream.on('data', (chunk: Buffer) => {
      // After the status, what the client still sends is read and dropped.
      if (call.ended || !handlers) return;
      try {
        framer.push(chunk, deliver);
      } catch (err) {
        call.end(err instanceof GrpcError ? err.code : GrpcStatus.INTERNAL, (err as Error)?.message);
      }
    });
    stream.on('end', () => {
      if (!call.ended && handlers) handlers.halfClose();
    });
    stream.on('close', () => {
      const cancelled = !call.ended;
      call.abandon();
      handlers?.closed(cancelled);
    });
  }
}
