/**
 * Protobuf wire format, the little of it mcp-pin's messages use: varints,
 * length-delimited fields, doubles. The message layouts live next to their
 * users (src/extproc/codec.ts, src/health.ts); the field numbers there are
 * the ones in protos/, and tests decode and encode every message with
 * protobufjs from those protos to prove the two agree.
 */

export const WIRE_VARINT = 0;
export const WIRE_FIXED64 = 1;
export const WIRE_LEN = 2;
export const WIRE_FIXED32 = 5;

/** A field's tag on the wire: field number * 8 + wire type. */
export const tagOf = (field: number, wireType: number): number => field * 8 + wireType;

/** A message that does not parse. */
export class WireError extends Error {}

/**
 * Reads one message. Nested messages are read in place (the caller loops
 * while pos < the end that len() returned), and bytes come back as views,
 * not copies: no allocation per field.
 */
export class Reader {
  pos = 0;
  constructor(readonly buf: Buffer) {}

  /** A varint of up to 64 bits, as a number (exact up to 2^53; enough for tags, lengths, enums, bools). */
  varint(): number {
    let result = 0;
    let mul = 1;
    for (let i = 0; i < 10; i++) {
      if (this.pos >= this.buf.length) throw new WireError('truncated varint');
      const b = this.buf[this.pos++]!;
      result += (b & 0x7f) * mul;
      if (b < 0x80) return result;
      mul *= 128;
    }
    throw new WireError('varint longer than 10 bytes');
  }

  /** The next field's tag: field number * 8 + wire type. */
  tag(): number {
    const t = this.varint();
    if (t < 8) throw new WireError('field number 0');
    return t;
  }

  /** Reads a length prefix; returns where the field's content ends (pos is at its start). */
  len(end: number): number {
    const n = this.varint();
    const e = this.pos + n;
    if (e > end) throw new WireError('length-delimited field runs past its message');
    return e;
  }

  bytes(end: number): Buffer {
    const e = this.len(end);
    const b = this.buf.subarray(this.pos, e);
    this.pos = e;
    return b;
  }

  string(end: number): string {
    const e = this.len(end);
    const s = this.buf.toString('utf8', this.pos, e);
    this.pos = e;
    return s;
  }

  bool(): boolean {
    return this.varint() !== 0;
  }

  double(end: number): number {
    if (this.pos + 8 > end) throw new WireError('truncated double');
    const v = this.buf.readDoubleLE(this.pos);
    this.pos += 8;
    return v;
  }

  /** Skips a field this decoder does not use (unknown fields are legal). */
  skip(wireType: number, end: number): void {
    switch (wireType) {
      case WIRE_VARINT:
        this.varint();
        return;
      case WIRE_FIXED64:
        this.advance(8, end);
        return;
      case WIRE_LEN:
        this.pos = this.len(end);
        return;
      case WIRE_FIXED32:
        this.advance(4, end);
        return;
      default:
        throw new WireError(`unsupported wire type ${wireType}`);
    }
  }

  private advance(n: number, end: number): void {
    if (this.pos + n > end) throw new WireError('truncated fixed-width field');
    this.pos += n;
  }
}

/**
 * Builds one message. Nested messages are built by their own Writer and
 * appended whole (their length is known by then); large byte fields are kept
 * as references and copied once, in finish().
 */
export class Writer {
  private readonly parts: Buffer[] = [];
  private partsLength = 0;
  private cur: Buffer = Buffer.allocUnsafe(64);
  private pos = 0;

  get length(): number {
    return this.partsLength + this.pos;
  }

  private room(n: number): void {
    if (this.pos + n <= this.cur.length) return;
    this.flush();
    this.cur = Buffer.allocUnsafe(Math.max(256, n));
  }

  private flush(): void {
    if (this.pos === 0) return;
    const done = this.cur.subarray(0, this.pos);
    this.parts.push(done);
    this.partsLength += done.length;
    this.cur = this.cur.subarray(this.pos);
    this.pos = 0;
  }

  varint(v: number): this {
    this.room(10);
    while (v > 0x7f) {
      this.cur[this.pos++] = (v % 128) | 0x80;
      v = Math.floor(v / 128);
    }
    this.cur[this.pos++] = v;
    return this;
  }

  tag(field: number, wireType: number): this {
    return this.varint(tagOf(field, wireType));
  }

  uint(field: number, v: number): this {
    return this.tag(field, WIRE_VARINT).varint(v);
  }

  bool(field: number, v: boolean): this {
    return this.uint(field, v ? 1 : 0);
  }

  string(field: number, s: string): this {
    const n = Buffer.byteLength(s, 'utf8');
    this.tag(field, WIRE_LEN).varint(n);
    this.room(n);
    this.cur.write(s, this.pos, n, 'utf8');
    this.pos += n;
    return this;
  }

  bytes(field: number, b: Uint8Array): this {
    this.tag(field, WIRE_LEN).varint(b.length);
    if (b.length <= 64) {
      this.room(b.length);
      this.cur.set(b, this.pos);
      this.pos += b.length;
    } else {
      this.flush();
      const buf = Buffer.isBuffer(b) ? b : Buffer.from(b.buffer, b.byteOffset, b.length);
      this.parts.push(buf);
      this.partsLength += buf.length;
    }
    return this;
  }

  /** A nested message, present even when empty (presence matters in a oneof). */
  message(field: number, sub: Writer): this {
    this.tag(field, WIRE_LEN).varint(sub.length);
    this.flush();
    sub.flush();
    for (const p of sub.parts) this.parts.push(p);
    this.partsLength += sub.partsLength;
    return this;
  }

  finish(): Buffer {
    this.flush();
    return this.parts.length === 1 ? this.parts[0]! : Buffer.concat(this.parts, this.partsLength);
  }
}
