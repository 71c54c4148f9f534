// The client's logic against a fake socket: pairing, timeouts, backoff,
// dedup by seq, resume, the offline queue, tokens, heartbeats, bad input.
import { afterEach, test } from "node:test";
import assert from "node:assert/strict";
import {
  backoffDelay,
  ChalktalkClient,
  ChalktalkError,
  encodeServerFrame,
  type ClientOptions,
  type RoomEvent,
} from "../src/index.js";
import { FakeServer, message, roomEvent, snapshot } from "./fake.js";
import { fromHex, signToken, sleep, until } from "./helpers.js";

const SECRET = "unit-test-secret-unit-test-secret!!";

// Every client a test made is closed after it, pass or fail, so that no
// timer keeps the process alive.
const made: ChalktalkClient[] = [];
afterEach(() => {
  for (const c of made.splice(0)) if (c.state !== "closed") c.close();
});

function setup(extra: Partial<ClientOptions> = {}) {
  const server = new FakeServer();
  const client = new ChalktalkClient({
    url: "ws://fake/ws",
    device: "dev-1",
    token: signToken(SECRET, "coach-1", "coach"),
    WebSocket: server.ctor,
    requestTimeoutMs: 200,
    backoff: { initialMs: 5, maxMs: 20, factor: 2, jitter: 0.5 },
    random: () => 0.5,
    ...extra,
  });
  made.push(client);
  const errors: ChalktalkError[] = [];
  client.on("error", (e) => errors.push(e));
  const events: number[] = [];
  client.on("room", (_room, ev) => events.push(ev.seq));
  return { server, client, errors, events };
}

async function open(client: ChalktalkClient): Promise<void> {
  client.connect();
  await until(() => client.state === "open", "open");
}

/** Answers join_room with a replay from `since` to `head` and sends the
 * events since+1..=head. */
function replayJoins(server: FakeServer, head: () => number) {
  server.onFrame = (s, f) => {
    if (f.m.t === "join_room") {
      const since = f.m.since ?? 0;
      const h = head();
      s.push({ t: "ok", id: f.id, r: { t: "joined", room: f.m.room, mode: { k: "replay", since, head: h }, presence: [] } });
      for (let q = since + 1; q <= h; q++) s.push({ t: "room", room: f.m.room, ev: roomEvent(q) });
    }
  };
}

test("backoff grows exponentially, is capped and jittered", () => {
  const o = { initialMs: 100, maxMs: 1000, factor: 2, jitter: 0.5 };
  assert.deepEqual(
    [0, 1, 2, 3, 4, 5].map((a) => backoffDelay(a, o, () => 0)),
    [100, 200, 400, 800, 1000, 1000],
  );
  // random() close to 1 takes off up to half the delay
  assert.equal(backoffDelay(2, o, () => 0.999999), 200);
  assert.equal(backoffDelay(2, o, () => 0.5), 300);
  assert.equal(backoffDelay(3, { ...o, jitter: 1 }, () => 0.25), 600);
  for (let i = 0; i < 100; i++) {
    const d = backoffDelay(4, o);
    assert.ok(d >= 500 && d <= 1000, `delay ${d}`);
  }
});

test("hello is the first frame and carries the token, device and inbox seq", async () => {
  const token = signToken(SECRET, "coach-1", "coach");
  const { server, client } = setup({ token, inboxSince: 7 });
  await open(client);
  const first = server.last.sent[0]!;
  assert.deepEqual(first.m, { t: "hello", v: [1], token, device: "dev-1", inbox_since: 7 });
  assert.deepEqual(server.last.protocols, ["chalktalk.v1"]);
  assert.equal(server.last.binaryType, "arraybuffer");
  assert.equal(client.welcome?.session, "s-1");
  client.close();
});

test("replies are paired by id whatever their order; errors and timeouts reject", async () => {
  const { server, client } = setup();
  await open(client);
  const held: { id: number; thread: string }[] = [];
  server.onFrame = (_s, f) => {
    if (f.m.t === "history") held.push({ id: f.id, thread: f.m.thread });
  };
  const a = client.history("t-a", 5);
  const b = client.history("t-b", 5);
  const c = client.history("t-c", 5);
  const d = client.history("t-d", 5);
  await until(() => held.length === 4, "four requests");
  assert.equal(new Set(held.map((h) => h.id)).size, 4, "distinct ids");
  const s = server.last;
  // b, then a, each with its own messages; c fails; d never answered
  s.push({ t: "ok", id: held[1]!.id, r: { t: "history", messages: [message(2)], more: true } });
  s.push({ t: "ok", id: held[0]!.id, r: { t: "history", messages: [message(1)], more: false } });
  s.push({ t: "err", id: held[2]!.id, code: "not_member", msg: "no" });
  assert.deepEqual((await a).messages.map((m) => m.seq), [1]);
  assert.deepEqual((await b).messages.map((m) => m.seq), [2]);
  await assert.rejects(c, (e: ChalktalkError) => e.kind === "server" && e.code === "not_member");
  const t0 = Date.now();
  await assert.rejects(d, (e: ChalktalkError) => e.kind === "timeout");
  assert.ok(Date.now() - t0 >= 150, "waited for the timeout");
  // a late reply to the timed-out request is ignored
  s.push({ t: "ok", id: held[3]!.id, r: { t: "history", messages: [], more: false } });
  client.close();
});

test("room events: in seq order, duplicates dropped, a gap rejoins from the last seq", async () => {
  const { server, client, errors, events } = setup();
  await open(client);
  let head = 5;
  replayJoins(server, () => head);
  const joined = await client.joinRoom("r-1", { since: 3 });
  assert.deepEqual(joined, { room: "r-1", mode: "replay", presence: [], seq: 3 });
  await until(() => events.length === 2, "catch-up");
  const s = server.last;
  s.push({ t: "room", room: "r-1", ev: roomEvent(5) }); // duplicate
  s.push({ t: "room", room: "r-1", ev: roomEvent(4) }); // duplicate
  s.push({ t: "room", room: "r-1", ev: roomEvent(6) });
  await s.flushed();
  assert.deepEqual(events, [4, 5, 6]);
  assert.equal(client.stats.duplicatesDropped, 2);
  // seq 9 after 6: events 7 and 8 are missing: join again with since 6
  head = 9;
  s.push({ t: "room", room: "r-1", ev: roomEvent(9) });
  await until(() => events.length === 6, "refill after the gap");
  assert.deepEqual(events, [4, 5, 6, 7, 8, 9]);
  assert.deepEqual(s.of("join_room").map((f) => f.m.since), [3, 6]);
  assert.ok(errors.some((e) => e.kind === "gap"));
  assert.equal(client.roomSeq("r-1"), 9);
  client.close();
});

test("reconnect resumes rooms, threads and the inbox by seq, and resends durable ops in order with their ids", async () => {
  const { server, client, events } = setup({ inboxSince: 0 });
  await open(client);
  let head = 2;
  replayJoins(server, () => head);
  const base = server.onFrame;
  const acks: string[] = [];
  let ackSeq = 100;
  let answerOps = true;
  server.onFrame = (s, f) => {
    base(s, f);
    if (f.m.t === "open_thread")
      s.push({
        t: "ok",
        id: f.id,
        r: {
          t: "thread_opened",
          thread: { id: f.m.thread, kind: "direct", title: null, created_by: "coach-1", members: ["ana", "coach-1"], head: 3 },
          since: f.m.since ?? 2,
          cursors: [],
        },
      });
    if (f.m.t === "op" && answerOps) {
      acks.push(f.m.op_id);
      s.push({ t: "ok", id: f.id, r: { t: "ack", seq: ++ackSeq, dup: false } });
    }
  };
  const msgs: number[] = [];
  client.on("msg", (_t, m) => msgs.push(m.seq));
  const inbox: number[] = [];
  client.on("inbox", (ev) => inbox.push(ev.seq));
  await client.joinRoom("r-1");
  await client.openThread("t-1");
  const s1 = server.last;
  s1.push({ t: "msg", thread: "t-1", msg: message(3) });
  s1.push({ t: "inbox", seq: 1, at_ms: 1, notice: { k: "added_to_thread", thread: "t-1", by: "ana" } });
  await until(() => events.length === 2 && msgs.length === 1 && inbox.length === 1, "first pushes");

  // An op in flight when the connection drops, then three while offline.
  answerOps = false;
  const inflight = client.op("r-1", { k: "undo" }, { opId: "op-a" });
  await until(() => s1.of("op").length === 1, "op sent");
  s1.drop(1006);
  assert.notEqual(client.state, "open");
  const queued = [
    client.op("r-1", { k: "redo" }, { opId: "op-b" }),
    client.op("r-1", { k: "seek", position_ms: 1000 }),
    client.op("r-1", { k: "play", position_ms: 1000 }, { opId: "op-d" }),
  ];
  assert.equal(client.queued, 4);
  head = 4;
  answerOps = true;
  await until(() => client.state === "open" && server.sockets.length === 2, "reconnected");
  const acked = await Promise.all([inflight, ...queued]);
  assert.deepEqual(acked.map((a) => a.seq), [101, 102, 103, 104]);
  const s2 = server.last;
  assert.deepEqual(s2.sent[0]!.m, {
    t: "hello",
    v: [1],
    token: (s2.sent[0]!.m as { token: string }).token,
    device: "dev-1",
    inbox_since: 1,
  });
  assert.deepEqual(s2.of("join_room").map((f) => f.m.since), [2]);
  assert.deepEqual(s2.of("open_thread").map((f) => f.m.since), [3]);
  const types = s2.sent.map((f) => f.m.t);
  assert.deepEqual(types.slice(0, 7), ["hello", "join_room", "open_thread", "op", "op", "op", "op"]);
  const ids = s2.of("op").map((f) => f.m.op_id);
  assert.equal(ids[0], "op-a"); // the in-flight op keeps its id and its place
  assert.equal(ids[1], "op-b");
  assert.match(ids[2]!, /^dev-1\.[0-9a-z]+\.op\d+$/);
  assert.equal(ids[3], "op-d");
  assert.deepEqual(events, [1, 2, 3, 4]);
  assert.equal(client.queued, 0);
  client.close();
});

test("resync and too-far-behind joins hand over a snapshot; older events are dropped", async () => {
  const { server, client, events } = setup();
  await open(client);
  const snaps: number[] = [];
  client.on("snapshot", (_r, snap) => snaps.push(snap.seq));
  let mode: "replay" | "snapshot" = "replay";
  server.onFrame = (s, f) => {
    if (f.m.t !== "join_room") return;
    if (mode === "replay") {
      s.push({ t: "ok", id: f.id, r: { t: "joined", room: "r-1", mode: { k: "replay", since: 0, head: 1 }, presence: [] } });
      s.push({ t: "room", room: "r-1", ev: roomEvent(1) });
    } else {
      s.push({ t: "ok", id: f.id, r: { t: "joined", room: "r-1", mode: { k: "snapshot", snapshot: snapshot(40) }, presence: [] } });
      s.push({ t: "room", room: "r-1", ev: roomEvent(40) }); // already in the snapshot
      s.push({ t: "room", room: "r-1", ev: roomEvent(41) });
    }
  };
  await client.joinRoom("r-1", { since: 0 });
  mode = "snapshot";
  const resyncs: string[] = [];
  client.on("resync", (_r, why) => resyncs.push(why));
  server.last.push({ t: "resync", room: "r-1", reason: "too slow to receive room events" });
  await until(() => events.length === 2, "events after the snapshot");
  assert.deepEqual(resyncs, ["too slow to receive room events"]);
  assert.deepEqual(server.last.of("join_room").map((f) => f.m.since), [0, 1]);
  assert.deepEqual(snaps, [40]);
  assert.deepEqual(events, [1, 41]);
  client.close();
});

test("a paged join fetches every page and applies the events that came meanwhile, after it", async () => {
  const { server, client, events } = setup();
  await open(client);
  const order: string[] = [];
  client.on("snapshot", (_r, snap) => order.push(`snapshot ${snap.seq} ${snap.annotations.map((a) => a.id).join(",")}`));
  client.on("room", (_r, ev) => order.push(`event ${ev.seq}`));
  const ann = (id: string) => ({
    id,
    author: "coach-1",
    t_ms: 0,
    dur_ms: null,
    style: { color: 1, width: 0.5 },
    shape: { k: "line" as const, a: [0, 0] as [number, number], b: [1, 1] as [number, number] },
  });
  server.onFrame = (s, f) => {
    if (f.m.t === "join_room") {
      s.push({
        t: "ok",
        id: f.id,
        r: { t: "joined", room: "r-1", mode: { k: "paged", snapshot: snapshot(10), annotations: 3, pages: 3 }, presence: [] },
      });
      s.push({ t: "room", room: "r-1", ev: roomEvent(10) }); // in the snapshot
      s.push({ t: "room", room: "r-1", ev: roomEvent(11) });
    }
    if (f.m.t === "snapshot_page") {
      const page = f.m.page;
      if (page === 1) s.push({ t: "room", room: "r-1", ev: roomEvent(12) });
      s.push({ t: "ok", id: f.id, r: { t: "snapshot_page", room: "r-1", seq: 10, page, pages: 3, annotations: [ann(`a${page}`)] } });
    }
  };
  const j = await client.joinRoom("r-1");
  assert.equal(j.mode, "paged");
  assert.equal(j.seq, 12);
  assert.deepEqual(server.last.of("snapshot_page").map((f) => [f.m.seq, f.m.page]), [[10, 0], [10, 1], [10, 2]]);
  assert.deepEqual(order, ["snapshot 10 a0,a1,a2", "event 11", "event 12"]);
  assert.deepEqual(events, [11, 12]);
  client.close();
});

test("a thread too far behind is filled with history: every message once, in order", async () => {
  const { server, client } = setup();
  await open(client);
  const head = 450;
  server.onFrame = (s, f) => {
    if (f.m.t === "open_thread") {
      // the server's catch-up covers head-400.. only
      const since = Math.max(f.m.since ?? 0, head - 400);
      s.push({
        t: "ok",
        id: f.id,
        r: { t: "thread_opened", thread: { id: "t-1", kind: "group", title: "x", created_by: "coach-1", members: ["ana", "coach-1"], head }, since, cursors: [] },
      });
      for (let q = since + 1; q <= head; q++) s.push({ t: "msg", thread: "t-1", msg: message(q) });
    }
    if (f.m.t === "history") {
      const before = f.m.before ?? head + 1;
      const from = Math.max(1, before - f.m.limit);
      const messages = [];
      for (let q = from; q < before; q++) messages.push(message(q));
      s.push({ t: "ok", id: f.id, r: { t: "history", messages, more: from > 1 } });
    }
  };
  const seen: number[] = [];
  client.on("msg", (_t, m) => seen.push(m.seq));
  await client.openThread("t-1", { since: 10 });
  await until(() => seen.length === head - 10, `${head - 10} messages`);
  assert.deepEqual(seen, Array.from({ length: head - 10 }, (_, i) => i + 11));
  const hist = server.last.of("history").map((f) => [f.m.before, f.m.limit]);
  assert.deepEqual(hist, [[51, 40]]);
  client.close();
});

test("inbox notices: duplicates dropped, the seq to persist follows", async () => {
  const { server, client } = setup({ inboxSince: 4 });
  await open(client);
  const seen: number[] = [];
  client.on("inbox", (ev) => seen.push(ev.seq));
  const n = (seq: number) => ({ t: "inbox" as const, seq, at_ms: seq, notice: { k: "invited" as const, room: "r", video_id: "v", by: "x" } });
  for (const q of [3, 4, 5, 5, 6]) server.last.push(n(q));
  await server.last.flushed();
  assert.deepEqual(seen, [5, 6]);
  assert.equal(client.inboxSeq, 6);
  client.close();
});

test("undecodable and malformed frames are error events; the connection goes on", async () => {
  const { server, client, errors, events } = setup();
  await open(client);
  replayJoins(server, () => 1);
  await client.joinRoom("r-1", { since: 0 });
  const s = server.last;
  s.pushBytes(fromHex("c1")); // never used byte
  s.pushBytes(fromHex("83a174a26f6b")); // truncated
  s.pushBytes(fromHex("81a174a46e6f7065")); // {t: "nope"}
  s.pushBytes(encodeServerFrame({ t: "room", room: "r-1", ev: roomEvent(2) }).slice(0, 20));
  s.pushData("a text frame");
  s.push({ t: "room", room: "r-1", ev: roomEvent(2) });
  await s.flushed();
  assert.equal(errors.filter((e) => e.kind === "decode").length, 5);
  assert.equal(client.stats.decodeErrors, 5);
  assert.deepEqual(events, [1, 2]);
  assert.equal(client.state, "open");
  client.close();
});

test("a durable op whose ack does not come is resent with the same op id; dup acks resolve", async () => {
  const { server, client } = setup({ requestTimeoutMs: 40 });
  await open(client);
  let seen = 0;
  server.onFrame = (s, f) => {
    if (f.m.t !== "op") return;
    if (++seen === 1) return; // lost
    if (seen === 2) return void s.push({ t: "err", id: f.id, code: "overloaded", msg: "busy" });
    s.push({ t: "ok", id: f.id, r: { t: "ack", seq: 7, dup: true } });
  };
  const ack = await client.op("r-1", { k: "undo" }, { opId: "keep-me" });
  assert.deepEqual(ack, { t: "ack", seq: 7, dup: true });
  const sent = server.last.of("op");
  assert.equal(sent.length, 3);
  assert.deepEqual(new Set(sent.map((f) => f.m.op_id)), new Set(["keep-me"]));
  assert.equal(new Set(sent.map((f) => f.id)).size, 3, "a new request id each time");
  // a refusal is final
  server.onFrame = (s, f) => {
    if (f.m.t === "op") s.push({ t: "err", id: f.id, code: "forbidden", msg: "no" });
  };
  await assert.rejects(client.op("r-1", { k: "undo" }), (e: ChalktalkError) => e.code === "forbidden");
  assert.equal(client.queued, 0);
  client.close();
});

test("a silent connection is declared dead and replaced", async () => {
  const { server, client } = setup({ pingEveryMs: 10, deadAfterMs: 60 });
  await open(client);
  const first = server.last;
  server.answerPing = false;
  await until(() => server.sockets.length === 2, "a second connection", 2000);
  assert.ok(first.of("ping").length >= 2, "pings were sent");
  assert.ok(first.closedByClient, "the dead socket was closed");
  server.answerPing = true;
  await until(() => client.state === "open", "open again");
  client.close();
});

test("the token is refreshed before it expires and after close 4002", async () => {
  let n = 0;
  const refreshToken = async () => signToken(SECRET, "coach-1", "coach", 900, Math.floor(Date.now() / 1000) + ++n);
  // expires in 10 s (9 to 10 s from now, exp is in whole seconds),
  // refreshed 9 s before: within a second
  const short = signToken(SECRET, "coach-1", "coach", 10);
  const { server, client } = setup({ token: short, refreshToken, refreshBeforeMs: 9000 });
  await open(client);
  assert.equal((server.last.sent[0]!.m as { token: string }).token, short);
  await until(() => n === 1, "refresh before expiry", 1500);
  assert.equal(server.sockets.length, 1, "a refresh does not reconnect");
  // 4002: refresh again, reconnect at once with the new token
  server.helloError = null;
  server.last.drop(4002, "token_expired");
  await until(() => server.sockets.length === 2 && client.state === "open", "reconnected");
  assert.equal(n, 2);
  const hello = server.last.sent[0]!.m as { token: string };
  assert.notEqual(hello.token, short);
  assert.equal(hello.token.split(".").length, 3);
  client.close();
});

test("an expired token without a refresh callback, or 4003, stops the client and fails what is queued", async () => {
  const { server, client, errors } = setup();
  server.helloError = { code: "unsupported_version", close: 4003 };
  client.connect();
  const op = client.op("r-1", { k: "undo" });
  await assert.rejects(op, (e: ChalktalkError) => e.kind === "fatal" && e.closeCode === 4003);
  assert.equal(client.state, "closed");
  assert.equal(server.sockets.length, 1, "no retry");
  assert.ok(errors.some((e) => e.kind === "fatal"));

  const b = setup();
  b.server.helloError = { code: "token_expired", close: 4002 };
  b.client.connect();
  await until(() => b.client.state === "closed", "closed");
  assert.equal(b.server.sockets.length, 1);
});

test("refused connections are retried with growing delays", async () => {
  const { server, client } = setup({ backoff: { initialMs: 10, maxMs: 80, factor: 2, jitter: 0 } });
  server.refuse = true;
  const t0 = Date.now();
  client.connect();
  await until(() => server.sockets.length === 5, "five attempts", 3000);
  // 10 + 20 + 40 + 80 ms of backoff at least
  assert.ok(Date.now() - t0 >= 150, `${Date.now() - t0} ms`);
  server.refuse = false;
  await until(() => client.state === "open", "open at last", 3000);
  client.close();
  await sleep(5);
});

test("joining a joined room again resolves at once; an oversized durable op is refused, not stuck", async () => {
  const { server, client } = setup();
  await open(client);
  replayJoins(server, () => 2);
  await client.joinRoom("r-1", { since: 0 });
  await until(() => client.roomSeq("r-1") === 2, "catch-up");
  const again = await client.joinRoom("r-1");
  assert.deepEqual(again, { room: "r-1", mode: "replay", presence: [], seq: 2 });
  assert.equal(server.last.of("join_room").length, 1);
  const big = "x".repeat(70_000);
  await assert.rejects(
    client.op("r-1", { k: "add", ann: { id: "t", t_ms: 0, shape: { k: "text", at: [0, 0], text: big, size: 0.1 } } }),
    (e: ChalktalkError) => e.kind === "encode",
  );
  assert.equal(client.queued, 0);
  const ok = client.op("r-1", { k: "undo" });
  server.onFrame = (s, f) => {
    if (f.m.t === "op") s.push({ t: "ok", id: f.id, r: { t: "ack", seq: 3, dup: false } });
  };
  // the op was sent before onFrame answered: resend through a reconnect
  server.last.drop(1006);
  assert.equal((await ok).seq, 3);
});

test("ephemeral messages go out only while joined", async () => {
  const { server, client } = setup();
  await open(client);
  assert.equal(client.points("r-1", "s-1", 0, 0, [[0.5, 0.5]]), false);
  replayJoins(server, () => 0);
  await client.joinRoom("r-1", { since: 0 });
  assert.equal(client.points("r-1", "s-1", 0, 0, [[0.5, 0.5]]), true);
  const p = server.last.of("points")[0]!;
  assert.equal(p.id, 0);
  assert.deepEqual(p.m.style, { color: 0xff3b30ff, width: Math.fround(0.004) });
  client.close();
});

test.after(() => {
  const handles = (process as unknown as { _getActiveHandles(): unknown[] })._getActiveHandles();
  const timers = handles.filter((h) => (h as object).constructor?.name === "Timeout");
  if (timers.length) console.log("active timers left:", timers.map((t) => (t as { _idleTimeout: number })._idleTimeout));
});

// Types: a room event is what the schema says (compile-time check).
const _typed: RoomEvent = roomEvent(1);
void _typed;
