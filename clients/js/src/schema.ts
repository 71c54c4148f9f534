// A small schema language for the wire types. One schema per type gives
// three things that cannot drift apart: the TypeScript type (`Infer`), the
// canonical encoder (field order and number widths as the server's
// rmp-serde writes them, see ./msgpack.ts) and a checker for decoded values.
//
// Why a schema at all: MessagePack has no field order or float width of its
// own. The server writes struct fields in declaration order, the tag (`t`,
// `k`) first, f32 fields as float32 and f64 fields as float64 even when the
// value is integral (12500.0). A generic encoder cannot know that; the
// schema does.

export type Schema<T> = {
  readonly kind: string;
  /** Phantom: the TypeScript type this schema describes. */
  readonly __type?: T;
  /** True when the field may be absent in a struct (optional or defaulted). */
  readonly optional?: boolean;
} & Node;

type Node =
  | { kind: "str" }
  | { kind: "uint" }
  | { kind: "int" }
  | { kind: "f32" }
  | { kind: "f64" }
  | { kind: "bool" }
  | { kind: "any" }
  | { kind: "enum"; values: readonly string[] }
  | { kind: "opt"; of: Schema<unknown> }
  | { kind: "skip"; of: Schema<unknown> }
  | { kind: "default"; of: Schema<unknown>; value: () => unknown }
  | { kind: "arr"; of: Schema<unknown> }
  | { kind: "tuple"; of: readonly Schema<unknown>[] }
  | { kind: "struct"; fields: Fields }
  | { kind: "tagged"; tag: string; variants: Record<string, Fields> };

export type Fields = Record<string, Schema<any>>;

export type Infer<S> = S extends Schema<infer T> ? T : never;

type Simplify<T> = { [K in keyof T]: T[K] } & {};
type OptKeys<F extends Fields> = {
  [K in keyof F]: F[K] extends { optional: true } ? K : never;
}[keyof F];
type ReqKeys<F extends Fields> = Exclude<keyof F, OptKeys<F>>;
export type StructOf<F extends Fields> = Simplify<
  { [K in ReqKeys<F>]: Infer<F[K]> } & { [K in OptKeys<F>]?: Infer<F[K]> }
>;
type TaggedOf<Tag extends string, V extends Record<string, Fields>> = {
  [N in keyof V & string]: Simplify<{ [K in Tag]: N } & StructOf<V[N]>>;
}[keyof V & string];

export const str: Schema<string> = { kind: "str" };
/** Unsigned integer (u16/u32/u64 on the server). */
export const uint: Schema<number> = { kind: "uint" };
/** Signed integer (i32 on the server). */
export const int: Schema<number> = { kind: "int" };
/** Written as MessagePack float32. */
export const f32: Schema<number> = { kind: "f32" };
/** Written as MessagePack float64. */
export const f64: Schema<number> = { kind: "f64" };
export const bool: Schema<boolean> = { kind: "bool" };
export const any: Schema<unknown> = { kind: "any" };

export function oneOf<const V extends readonly string[]>(...values: V): Schema<V[number]> {
  return { kind: "enum", values };
}

/** `Option<T>`: nil or absent mean none. Written as nil when absent. */
export function opt<T>(of: Schema<T>): Schema<T | null> & { optional: true } {
  return { kind: "opt", of, optional: true } as Schema<T | null> & { optional: true };
}

/** `Option<T>` with `skip_serializing_if = "Option::is_none"`: nil or
 * absent mean none; left out of the struct when none. */
export function skip<T>(of: Schema<T>): Schema<T | null> & { optional: true } {
  return { kind: "skip", of, optional: true } as Schema<T | null> & { optional: true };
}

/** `#[serde(default)]` on a non-Option field: may be omitted when sending;
 * the encoder writes the default. */
export function dflt<T>(of: Schema<T>, value: () => T): Schema<T> & { optional: true } {
  return { kind: "default", of, value, optional: true } as Schema<T> & { optional: true };
}

export function arr<T>(of: Schema<T>): Schema<T[]> {
  return { kind: "arr", of };
}

export function tuple<A, B>(a: Schema<A>, b: Schema<B>): Schema<[A, B]> {
  return { kind: "tuple", of: [a, b] };
}

export function struct<F extends Fields>(fields: F): Schema<StructOf<F>> {
  return { kind: "struct", fields };
}

/** Internally tagged enum: `{[tag]: variant, ...fields}`, tag written first.
 * Variant field order is the key order of each fields object. */
export function tagged<Tag extends string, V extends Record<string, Fields>>(
  tag: Tag,
  variants: V,
): Schema<TaggedOf<Tag, V>> {
  return { kind: "tagged", tag, variants };
}

// ---------------------------------------------------------------------------
// Checking decoded values

/** Problems found in `value` against `schema` ("path: problem"); empty when
 * it conforms. Unknown keys are allowed (the protocol ignores them). */
export function check(schema: Schema<unknown>, value: unknown, path = "$"): string[] {
  const out: string[] = [];
  walk(schema, value, path, out);
  return out;
}

function isMap(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v) && !(v instanceof Uint8Array);
}

function walk(s: Schema<unknown>, v: unknown, p: string, out: string[]): void {
  switch (s.kind) {
    case "str":
      if (typeof v !== "string") out.push(`${p}: expected a string`);
      return;
    case "uint":
      if (!(typeof v === "number" && Number.isInteger(v) && v >= 0) && typeof v !== "bigint")
        out.push(`${p}: expected an unsigned integer`);
      return;
    case "int":
      if (!(typeof v === "number" && Number.isInteger(v))) out.push(`${p}: expected an integer`);
      return;
    case "f32":
    case "f64":
      if (typeof v !== "number") out.push(`${p}: expected a number`);
      return;
    case "bool":
      if (typeof v !== "boolean") out.push(`${p}: expected a boolean`);
      return;
    case "any":
      return;
    case "enum":
      if (typeof v !== "string" || !s.values.includes(v))
        out.push(`${p}: expected one of ${s.values.join(", ")}`);
      return;
    case "opt":
    case "skip":
      if (v === null || v === undefined) return;
      walk(s.of, v, p, out);
      return;
    case "default":
      if (v === undefined) return;
      walk(s.of, v, p, out);
      return;
    case "arr":
      if (!Array.isArray(v)) {
        out.push(`${p}: expected an array`);
        return;
      }
      v.forEach((x, i) => walk(s.of, x, `${p}[${i}]`, out));
      return;
    case "tuple":
      if (!Array.isArray(v) || v.length !== s.of.length) {
        out.push(`${p}: expected an array of ${s.of.length}`);
        return;
      }
      s.of.forEach((e, i) => walk(e, v[i], `${p}[${i}]`, out));
      return;
    case "struct":
      if (!isMap(v)) {
        out.push(`${p}: expected a map`);
        return;
      }
      walkFields(s.fields, v, p, out);
      return;
    case "tagged": {
      if (!isMap(v)) {
        out.push(`${p}: expected a map`);
        return;
      }
      const tag = v[s.tag];
      if (typeof tag !== "string" || !Object.hasOwn(s.variants, tag)) {
        out.push(`${p}.${s.tag}: unknown variant ${JSON.stringify(tag)}`);
        return;
      }
      walkFields(s.variants[tag]!, v, p, out);
      return;
    }
  }
}

function walkFields(fields: Fields, v: Record<string, unknown>, p: string, out: string[]): void {
  for (const [name, fs] of Object.entries(fields)) {
    const x = v[name];
    if (x === undefined && !fs.optional) {
      out.push(`${p}.${name}: missing`);
      continue;
    }
    walk(fs, x, `${p}.${name}`, out);
  }
}
