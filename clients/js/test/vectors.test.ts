// Every vector of protocol/vectors.json, byte for byte: decode its bytes to
// its meaning, re-encode the decoded value to the same bytes, encode the
// meaning (JSON) to the same bytes, and check both against the schemas the
// TypeScript types come from.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import {
  ClientFrameS,
  ServerFrameS,
  decodeClientFrame,
  decodeServerFrame,
  encodeClientFrame,
  encodeServerFrame,
  type ClientFrame,
  type ServerFrame,
} from "../src/protocol.js";
import { check } from "../src/schema.js";
import { decode } from "../src/msgpack.js";
import { fromHex, hex, repoRoot } from "./helpers.js";

interface Vector {
  name: string;
  direction: "client_to_server" | "server_to_client";
  hex: string;
  meaning: unknown;
}

const vectors: Vector[] = JSON.parse(readFileSync(join(repoRoot(), "protocol", "vectors.json"), "utf8"));

test("the vectors file is there and covers both directions", () => {
  assert.ok(vectors.length >= 18, `only ${vectors.length} vectors`);
  assert.ok(vectors.some((v) => v.direction === "client_to_server"));
  assert.ok(vectors.some((v) => v.direction === "server_to_client"));
});

for (const v of vectors) {
  const c2s = v.direction === "client_to_server";
  test(`vector ${v.name} (${v.direction})`, () => {
    const bytes = fromHex(v.hex);
    // Decoding gives the meaning (float32 values widened as JSON shows them).
    const decoded = decode(bytes);
    assert.deepEqual(decoded, v.meaning);
    // The decoded value and the meaning conform to the schema.
    const schema = c2s ? ClientFrameS : ServerFrameS;
    assert.deepEqual(check(schema, decoded), []);
    assert.deepEqual(check(schema, v.meaning), []);
    // Re-encoding the decoded value, and encoding the meaning, give the bytes.
    const enc = c2s
      ? (x: unknown) => encodeClientFrame(x as ClientFrame)
      : (x: unknown) => encodeServerFrame(x as ServerFrame);
    assert.equal(hex(enc(decoded)), v.hex);
    assert.equal(hex(enc(v.meaning)), v.hex);
    // The checked decoders accept it.
    if (c2s) decodeClientFrame(bytes);
    else decodeServerFrame(bytes);
  });
}

test("the two vectors spelled out in PROTOCOL.md §14", () => {
  assert.equal(
    hex(encodeClientFrame({ id: 2, m: { t: "join_room", room: "r-abc", since: 41 } })),
    "82a2696402a16d83a174a96a6f696e5f726f6f6da4726f6f6da5722d616263a573696e636529",
  );
  assert.equal(
    hex(encodeServerFrame({ t: "ok", id: 3, r: { t: "ack", seq: 42, dup: false } })),
    "83a174a26f6ba2696403a17283a174a361636ba37365712aa3647570c2",
  );
});

test("defaults are written when omitted, absent options as nil", () => {
  const withDefaults = encodeClientFrame({
    id: 5,
    m: { t: "send", thread: "t-9", msg_id: "m-1", text: "Watch your left knee at 0:12" },
  });
  const v = vectors.find((x) => x.name === "send_message")!;
  assert.equal(hex(withDefaults), v.hex);
});

test("integers take the smallest form, f64 fields stay float64 when integral", () => {
  const b = encodeClientFrame({ id: 70000, m: { t: "op", room: "r", op_id: "o", op: { k: "seek", position_ms: 12000 } } });
  // id 70000 -> ce 00011170; position_ms 12000.0 -> cb 40c7700000000000
  assert.ok(hex(b).startsWith("82a26964ce00011170"));
  assert.ok(hex(b).endsWith("ab706f736974696f6e5f6d73cb40c7700000000000"));
  const neg = encodeClientFrame({ id: 1, m: { t: "op", room: "r", op_id: "o", op: { k: "step", frames: -200 } } });
  assert.ok(hex(neg).endsWith("a66672616d6573d1ff38"));
});

test("malformed input is a DecodeError, never another exception", () => {
  for (const bad of ["c1", "92", "83a174a26f6b", "a3616263", "81a174a46e6f7065", ""]) {
    assert.throws(() => decodeServerFrame(fromHex(bad)), { name: "DecodeError" }, bad);
  }
});
