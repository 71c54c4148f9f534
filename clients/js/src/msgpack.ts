// MessagePack in the server's dialect. Decoding is @msgpack/msgpack's;
// encoding walks a schema (./schema.ts) so that field order and number
// widths match what the server's rmp-serde writes byte for byte:
// smallest integer form, float32 for f32 fields, float64 for f64 fields
// (also when integral), struct fields in declaration order, tags first,
// absent optional fields as nil.

import { Decoder } from "@msgpack/msgpack";
import type { Schema, Fields } from "./schema.js";

const textEncoder = new TextEncoder();

class Writer {
  private buf = new Uint8Array(256);
  private view = new DataView(this.buf.buffer);
  private pos = 0;

  private ensure(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.pos + n) size *= 2;
    const next = new Uint8Array(size);
    next.set(this.buf.subarray(0, this.pos));
    this.buf = next;
    this.view = new DataView(next.buffer);
  }

  u8(b: number): void {
    this.ensure(1);
    this.buf[this.pos++] = b;
  }

  nil(): void {
    this.u8(0xc0);
  }

  bool(v: boolean): void {
    this.u8(v ? 0xc3 : 0xc2);
  }

  int(v: number): void {
    if (!Number.isSafeInteger(v)) throw new EncodeError(`not a safe integer: ${v}`);
    this.ensure(9);
    const d = this.view;
    if (v >= 0) {
      if (v < 0x80) this.buf[this.pos++] = v;
      else if (v < 0x100) {
        this.buf[this.pos++] = 0xcc;
        this.buf[this.pos++] = v;
      } else if (v < 0x10000) {
        this.buf[this.pos++] = 0xcd;
        d.setUint16(this.pos, v);
        this.pos += 2;
      } else if (v < 0x100000000) {
        this.buf[this.pos++] = 0xce;
        d.setUint32(this.pos, v);
        this.pos += 4;
      } else {
        this.buf[this.pos++] = 0xcf;
        d.setBigUint64(this.pos, BigInt(v));
        this.pos += 8;
      }
    } else if (v >= -32) {
      this.buf[this.pos++] = v & 0xff;
    } else if (v >= -0x80) {
      this.buf[this.pos++] = 0xd0;
      d.setInt8(this.pos++, v);
    } else if (v >= -0x8000) {
      this.buf[this.pos++] = 0xd1;
      d.setInt16(this.pos, v);
      this.pos += 2;
    } else if (v >= -0x80000000) {
      this.buf[this.pos++] = 0xd2;
      d.setInt32(this.pos, v);
      this.pos += 4;
    } else {
      this.buf[this.pos++] = 0xd3;
      d.setBigInt64(this.pos, BigInt(v));
      this.pos += 8;
    }
  }

  f32(v: number): void {
    this.ensure(5);
    this.buf[this.pos++] = 0xca;
    this.view.setFloat32(this.pos, v);
    this.pos += 4;
  }

  f64(v: number): void {
    this.ensure(9);
    this.buf[this.pos++] = 0xcb;
    this.view.setFloat64(this.pos, v);
    this.pos += 8;
  }

  str(s: string): void {
    const bytes = textEncoder.encode(s);
    const n = bytes.length;
    this.ensure(5 + n);
    if (n < 32) this.buf[this.pos++] = 0xa0 | n;
    else if (n < 0x100) {
      this.buf[this.pos++] = 0xd9;
      this.buf[this.pos++] = n;
    } else if (n < 0x10000) {
      this.buf[this.pos++] = 0xda;
      this.view.setUint16(this.pos, n);
      this.pos += 2;
    } else {
      this.buf[this.pos++] = 0xdb;
      this.view.setUint32(this.pos, n);
      this.pos += 4;
    }
    this.buf.set(bytes, this.pos);
    this.pos += n;
  }

  bin(b: Uint8Array): void {
    const n = b.length;
    this.ensure(5 + n);
    if (n < 0x100) {
      this.buf[this.pos++] = 0xc4;
      this.buf[this.pos++] = n;
    } else if (n < 0x10000) {
      this.buf[this.pos++] = 0xc5;
      this.view.setUint16(this.pos, n);
      this.pos += 2;
    } else {
      this.buf[this.pos++] = 0xc6;
      this.view.setUint32(this.pos, n);
      this.pos += 4;
    }
    this.buf.set(b, this.pos);
    this.pos += n;
  }

  arrayHeader(n: number): void {
    this.ensure(5);
    if (n < 16) this.buf[this.pos++] = 0x90 | n;
    else if (n < 0x10000) {
      this.buf[this.pos++] = 0xdc;
      this.view.setUint16(this.pos, n);
      this.pos += 2;
    } else {
      this.buf[this.pos++] = 0xdd;
      this.view.setUint32(this.pos, n);
      this.pos += 4;
    }
  }

  mapHeader(n: number): void {
    this.ensure(5);
    if (n < 16) this.buf[this.pos++] = 0x80 | n;
    else if (n < 0x10000) {
      this.buf[this.pos++] = 0xde;
      this.view.setUint16(this.pos, n);
      this.pos += 2;
    } else {
      this.buf[this.pos++] = 0xdf;
      this.view.setUint32(this.pos, n);
      this.pos += 4;
    }
  }

  bytes(): Uint8Array {
    return this.buf.slice(0, this.pos);
  }
}

export class EncodeError extends Error {
  override name = "EncodeError";
}

/** Encodes `value` as `schema` says, in the server's canonical form. */
export function encodeWith<T>(schema: Schema<T>, value: T): Uint8Array {
  const w = new Writer();
  write(w, schema as Schema<unknown>, value, "$");
  return w.bytes();
}

function write(w: Writer, s: Schema<unknown>, v: unknown, p: string): void {
  const bad = (what: string): never => {
    throw new EncodeError(`${p}: expected ${what}, got ${JSON.stringify(v)}`);
  };
  switch (s.kind) {
    case "str":
      if (typeof v !== "string") bad("a string");
      w.str(v as string);
      return;
    case "uint":
    case "int":
      if (typeof v !== "number" || !Number.isInteger(v)) bad("an integer");
      if (s.kind === "uint" && (v as number) < 0) bad("an unsigned integer");
      w.int(v as number);
      return;
    case "f32":
      if (typeof v !== "number") bad("a number");
      w.f32(v as number);
      return;
    case "f64":
      if (typeof v !== "number") bad("a number");
      w.f64(v as number);
      return;
    case "bool":
      if (typeof v !== "boolean") bad("a boolean");
      w.bool(v as boolean);
      return;
    case "enum":
      if (typeof v !== "string" || !s.values.includes(v)) bad(`one of ${s.values.join(", ")}`);
      w.str(v as string);
      return;
    case "any":
      writeAny(w, v, p);
      return;
    case "opt":
    case "skip":
      if (v === null || v === undefined) w.nil();
      else write(w, s.of, v, p);
      return;
    case "default":
      write(w, s.of, v === undefined ? s.value() : v, p);
      return;
    case "arr":
      if (!Array.isArray(v)) bad("an array");
      w.arrayHeader((v as unknown[]).length);
      (v as unknown[]).forEach((x, i) => write(w, s.of, x, `${p}[${i}]`));
      return;
    case "tuple":
      if (!Array.isArray(v) || v.length !== s.of.length) bad(`an array of ${s.of.length}`);
      w.arrayHeader(s.of.length);
      s.of.forEach((e, i) => write(w, e, (v as unknown[])[i], `${p}[${i}]`));
      return;
    case "struct":
      if (typeof v !== "object" || v === null) bad("an object");
      writeFields(w, s.fields, v as Record<string, unknown>, p, null);
      return;
    case "tagged": {
      if (typeof v !== "object" || v === null) bad("an object");
      const tag = (v as Record<string, unknown>)[s.tag];
      if (typeof tag !== "string" || !Object.hasOwn(s.variants, tag))
        throw new EncodeError(`${p}.${s.tag}: unknown variant ${JSON.stringify(tag)}`);
      writeFields(w, s.variants[tag]!, v as Record<string, unknown>, p, [s.tag, tag]);
      return;
    }
  }
}

function writeFields(
  w: Writer,
  fields: Fields,
  v: Record<string, unknown>,
  p: string,
  tag: [string, string] | null,
): void {
  // A `skip` field that is none is left out.
  const names = Object.keys(fields).filter(
    (n) => !(fields[n]!.kind === "skip" && (v[n] === null || v[n] === undefined)),
  );
  w.mapHeader(names.length + (tag ? 1 : 0));
  if (tag) {
    w.str(tag[0]);
    w.str(tag[1]);
  }
  for (const name of names) {
    const fs = fields[name]!;
    const x = v[name];
    if (x === undefined && !fs.optional) throw new EncodeError(`${p}.${name}: missing`);
    w.str(name);
    write(w, fs, x, `${p}.${name}`);
  }
}

/** Values of unknown shape: integers smallest form, other numbers float64,
 * maps in the object's key order. */
function writeAny(w: Writer, v: unknown, p: string): void {
  if (v === null || v === undefined) w.nil();
  else if (typeof v === "boolean") w.bool(v);
  else if (typeof v === "number") {
    if (Number.isSafeInteger(v)) w.int(v);
    else w.f64(v);
  } else if (typeof v === "string") w.str(v);
  else if (v instanceof Uint8Array) w.bin(v);
  else if (Array.isArray(v)) {
    w.arrayHeader(v.length);
    v.forEach((x, i) => writeAny(w, x, `${p}[${i}]`));
  } else if (typeof v === "object") {
    const entries = Object.entries(v as Record<string, unknown>).filter(([, x]) => x !== undefined);
    w.mapHeader(entries.length);
    for (const [k, x] of entries) {
      w.str(k);
      writeAny(w, x, `${p}.${k}`);
    }
  } else throw new EncodeError(`${p}: cannot encode ${typeof v}`);
}

export class DecodeError extends Error {
  override name = "DecodeError";
}

const decoder = new Decoder({ maxStrLength: 1 << 24, maxBinLength: 1 << 24 });

/** Decodes one MessagePack value. Throws DecodeError (never anything else)
 * on malformed input or trailing bytes. */
export function decode(bytes: Uint8Array): unknown {
  try {
    return decoder.decode(bytes);
  } catch (e) {
    throw new DecodeError(`undecodable MessagePack: ${e instanceof Error ? e.message : String(e)}`);
  }
}
