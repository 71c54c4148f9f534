// End to end against a real `chalktalk serve` on 127.0.0.1: two clients in
// one room, one of them behind a loopback TCP proxy the test can cut and
// block. Checks exact seqs: nothing missed, nothing twice, the offline op
// applied exactly once.
//
// The binary: $CHALKTALK_BIN, else $CARGO_TARGET_DIR/debug/chalktalk, else
// target/debug/chalktalk in the repository. Missing: the test fails when
// CI is set, and is skipped otherwise.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import net from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import WebSocket from "ws";
import {
  ChalktalkClient,
  type Annotation,
  type ChalktalkError,
  type RoomEvent,
  type WebSocketCtor,
} from "../src/index.js";
import { repoRoot, signToken, sleep, until } from "./helpers.js";

const SECRET = "e2e-secret-e2e-secret-e2e-secret-0123";

const candidates = [
  process.env.CHALKTALK_BIN,
  process.env.CARGO_TARGET_DIR && join(resolve(repoRoot(), process.env.CARGO_TARGET_DIR), "debug", "chalktalk"),
  join(repoRoot(), "target", "debug", "chalktalk"),
].filter((c): c is string => !!c);

function findBinary(): string | null {
  for (const c of candidates) if (existsSync(c)) return c;
  return null;
}

function freePort(): Promise<number> {
  return new Promise((res, rej) => {
    const s = net.createServer();
    s.on("error", rej);
    s.listen(0, "127.0.0.1", () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => res(port));
    });
  });
}

async function waitForPort(port: number, child: ChildProcess, ms = 20_000): Promise<void> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (child.exitCode !== null) throw new Error(`chalktalk serve exited with ${child.exitCode}`);
    const ok = await new Promise<boolean>((res) => {
      const c = net.connect(port, "127.0.0.1");
      c.on("connect", () => {
        c.destroy();
        res(true);
      });
      c.on("error", () => res(false));
    });
    if (ok) return;
    await sleep(50);
  }
  throw new Error(`chalktalk serve did not listen on ${port} within ${ms} ms`);
}

/** A loopback TCP proxy: `cut()` drops every open link at once (both
 * sides, no close frames: what a network loss looks like), `block` refuses
 * new links while true. */
class Proxy {
  private server: net.Server;
  private links = new Set<net.Socket>();
  block = false;
  links_made = 0;
  port = 0;

  constructor(private target: number) {
    this.server = net.createServer((client) => {
      if (this.block) return void client.destroy();
      this.links_made++;
      const upstream = net.connect(this.target, "127.0.0.1");
      for (const s of [client, upstream]) {
        this.links.add(s);
        s.on("close", () => this.links.delete(s));
        s.on("error", () => {});
      }
      client.pipe(upstream);
      upstream.pipe(client);
      client.on("close", () => upstream.destroy());
      upstream.on("close", () => client.destroy());
    });
  }

  listen(): Promise<void> {
    return new Promise((res) =>
      this.server.listen(0, "127.0.0.1", () => {
        this.port = (this.server.address() as net.AddressInfo).port;
        res();
      }),
    );
  }

  cut(): void {
    for (const s of this.links) s.resetAndDestroy?.() ?? s.destroy();
    this.links.clear();
  }

  close(): Promise<void> {
    this.cut();
    return new Promise((res) => this.server.close(() => res()));
  }
}

const bin = findBinary();
let child: ChildProcess | null = null;
let dataDir = "";
let port = 0;
let stderr = "";

before(async () => {
  if (!bin) return;
  port = await freePort();
  dataDir = mkdtempSync(join(tmpdir(), "chalktalk-js-e2e-"));
  child = spawn(bin, ["serve"], {
    env: {
      ...process.env,
      CHALKTALK_LISTEN: `127.0.0.1:${port}`,
      CHALKTALK_DATA_DIR: dataDir,
      CHALKTALK_JWT_SECRET: SECRET,
      CHALKTALK_LOG: "warn",
    },
    stdio: ["ignore", "ignore", "pipe"],
  });
  child.stderr!.on("data", (d) => {
    stderr = (stderr + d.toString()).slice(-4000);
  });
  await waitForPort(port, child);
});

after(() => {
  child?.kill("SIGTERM");
  if (dataDir) rmSync(dataDir, { recursive: true, force: true });
});

const clients: ChalktalkClient[] = [];
after(() => clients.forEach((c) => c.close()));
/** Frames of the real server that the schemas refused: must stay empty
 * (every frame these tests receive is checked against the schemas). */
const decodeErrors: string[] = [];

function client(url: string, user: string, role: "coach" | "athlete", device: string): ChalktalkClient {
  const c = new ChalktalkClient({
    url,
    device,
    token: signToken(SECRET, user, role),
    refreshToken: async () => signToken(SECRET, user, role),
    WebSocket: WebSocket as unknown as WebSocketCtor,
    inboxSince: 0,
    requestTimeoutMs: 5000,
    backoff: { initialMs: 20, maxMs: 200, factor: 2, jitter: 0.5 },
  });
  clients.push(c);
  c.on("error", (e) => {
    if (e.kind === "decode") decodeErrors.push(e.message);
  });
  return c;
}

/** What one client saw of a room: every event seq in order, the op ids, and
 * the annotations after applying the effects. */
function record(c: ChalktalkClient, room: string) {
  const seqs: number[] = [];
  const opIds: string[] = [];
  const anns = new Map<string, Annotation>();
  const snapshots: number[] = [];
  c.on("snapshot", (r, snap) => {
    if (r !== room) return;
    snapshots.push(snap.seq);
    anns.clear();
    snap.annotations.forEach((a) => anns.set(a.id, a));
  });
  c.on("room", (r, ev: RoomEvent) => {
    if (r !== room) return;
    seqs.push(ev.seq);
    opIds.push(ev.op_id);
    for (const e of ev.effects) {
      if (e.k === "put") anns.set(e.ann.id, e.ann);
      if (e.k === "remove") anns.delete(e.id);
    }
  });
  return { seqs, opIds, anns, snapshots };
}

const line = (id: string, x: number): Annotation => ({
  id,
  t_ms: 1000,
  dur_ms: null,
  style: { color: 0x00ff00ff, width: 0.005 },
  shape: { k: "line", a: [x, 0.1], b: [x, 0.9] },
});

const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i);

test("two clients, one room; a cut link resumes with no gap and no duplicate; an offline op lands once", async (t) => {
  if (!bin) {
    const msg =
      `no chalktalk binary (looked at ${candidates.join(", ")}): set CHALKTALK_BIN, ` +
      "or build it (cargo build -p chalktalk) into $CARGO_TARGET_DIR/debug or target/debug";
    if (process.env.CI) assert.fail(msg);
    t.skip(msg);
    return;
  }
  const url = `ws://127.0.0.1:${port}/ws`;
  const proxy = new Proxy(port);
  await proxy.listen();
  try {
    const coach = client(url, "coach-1", "coach", "laptop");
    const athlete = client(`ws://127.0.0.1:${proxy.port}/ws`, "ana", "athlete", "phone");
    const errors: ChalktalkError[] = [];
    athlete.on("error", (e) => errors.push(e));
    const athleteJoins: string[] = [];
    athlete.on("joined", (j) => athleteJoins.push(`${j.mode}@${j.seq}`));
    coach.connect();
    athlete.connect();

    // The coach creates the room and invites the athlete.
    const room = await coach.createRoom("v-e2e", { aspect: 16 / 9, fps: 30 });
    assert.match(room, /^r-[0-9a-f]{20}$/);
    const invite = await coach.op(room, { k: "invite", user: "ana" });
    assert.deepEqual(invite, { t: "ack", seq: 1, dup: false });

    const seenByCoach = record(coach, room);
    const seenByAthlete = record(athlete, room);
    const joinedCoach = await coach.joinRoom(room);
    const joinedAthlete = await athlete.joinRoom(room);
    assert.equal(joinedCoach.mode, "snapshot");
    assert.equal(joinedCoach.seq, 1);
    assert.equal(joinedAthlete.seq, 1);
    assert.deepEqual(seenByAthlete.snapshots, [1]);

    // One annotation from the coach reaches the athlete.
    const first = await coach.op(room, { k: "add", ann: line("first", 0.5) }, { opId: "coach-op-first" });
    assert.deepEqual(first, { t: "ack", seq: 2, dup: false });
    await until(() => seenByAthlete.seqs.length === 1, "the athlete receives seq 2");
    assert.deepEqual(seenByAthlete.seqs, [2]);
    assert.deepEqual(seenByAthlete.opIds, ["coach-op-first"]);
    const got = seenByAthlete.anns.get("first")!;
    assert.equal(got.author, "coach-1");
    assert.deepEqual(got.shape, { k: "line", a: [0.5, Math.fround(0.1)], b: [0.5, Math.fround(0.9)] });

    // The coach keeps committing while the athlete's link is cut twice.
    const total = 40;
    const acks: number[] = [];
    for (let i = 0; i < total; i++) {
      acks.push((await coach.op(room, { k: "add", ann: line(`s-${i}`, (i + 1) / 50) })).seq);
      if (i === 10 || i === 25) proxy.cut();
      await sleep(5);
    }
    assert.deepEqual(acks, range(3, 2 + total));
    await until(() => seenByAthlete.seqs.at(-1) === 2 + total, "the athlete catches up", 15_000);
    assert.ok(proxy.links_made >= 3, `the athlete reconnected (${proxy.links_made} links)`);
    assert.deepEqual(seenByAthlete.seqs, range(2, 2 + total), "every seq once, in order");
    assert.equal(seenByAthlete.anns.size, 1 + total);

    // Offline: the athlete's link is cut and new links refused; an op made
    // now is queued, then delivered exactly once after the reconnect.
    proxy.block = true;
    proxy.cut();
    await until(() => athlete.state !== "open", "the athlete sees the loss");
    const offline = athlete.op(room, { k: "add", ann: line("from-offline", 0.25) }, { opId: "ana-offline-1" });
    // and another coach op meanwhile, which the athlete must also get once
    const meanwhile = await coach.op(room, { k: "delete", id: "s-0" });
    assert.equal(meanwhile.seq, 3 + total);
    await sleep(300);
    assert.equal(athlete.queued, 1);
    assert.notEqual(athlete.state, "open");
    proxy.block = false;
    const ack = await offline;
    assert.deepEqual(ack, { t: "ack", seq: 4 + total, dup: false });
    await until(() => seenByAthlete.seqs.at(-1) === 4 + total, "the athlete applies its own op");
    await until(() => seenByCoach.seqs.at(-1) === 4 + total, "the coach receives the athlete's op");
    assert.deepEqual(seenByAthlete.seqs, range(2, 4 + total));
    assert.deepEqual(seenByCoach.seqs, range(2, 4 + total));
    assert.equal(seenByCoach.opIds.filter((o) => o === "ana-offline-1").length, 1);
    assert.equal(seenByCoach.anns.get("from-offline")?.author, "ana");
    assert.equal(seenByAthlete.anns.has("s-0"), false);
    assert.deepEqual([...seenByAthlete.anns.keys()].sort(), [...seenByCoach.anns.keys()].sort());

    // Resending the same op id is answered as a duplicate, not applied again.
    const again = await athlete.op(room, { k: "add", ann: line("from-offline", 0.25) }, { opId: "ana-offline-1" });
    assert.deepEqual(again, { t: "ack", seq: 4 + total, dup: true });
    await sleep(100);
    assert.equal(seenByCoach.seqs.at(-1), 4 + total);

    assert.equal(errors.filter((e) => e.kind === "decode" || e.kind === "gap").length, 0);
    assert.deepEqual(decodeErrors, []);
    assert.ok(athlete.stats.connects >= 4, `${athlete.stats.connects} connects`);
    // The first join was a snapshot; every resume after a cut was a replay
    // from the last seq applied (no snapshot needed, nothing refetched).
    assert.equal(athleteJoins[0], "snapshot@1");
    assert.ok(athleteJoins.length >= 4, athleteJoins.join(" "));
    for (const j of athleteJoins.slice(1)) assert.match(j, /^replay@\d+$/);
  } catch (e) {
    if (stderr) console.error("server stderr (tail):\n" + stderr);
    throw e;
  } finally {
    await proxy.close();
  }
});

test("a chat thread and the inbox resume across cut links: every message and notice once, in order", async (t) => {
  if (!bin) {
    if (process.env.CI) assert.fail("no chalktalk binary (see the first test)");
    t.skip("no chalktalk binary");
    return;
  }
  const url = `ws://127.0.0.1:${port}/ws`;
  const proxy = new Proxy(port);
  await proxy.listen();
  try {
    const coach = client(url, "coach-2", "coach", "laptop");
    const athlete = client(`ws://127.0.0.1:${proxy.port}/ws`, "bea", "athlete", "phone");
    const msgs: number[] = [];
    const inbox: { seq: number; k: string }[] = [];
    athlete.on("msg", (_t, m) => msgs.push(m.seq));
    athlete.on("inbox", (ev) => inbox.push({ seq: ev.seq, k: ev.notice.k }));
    coach.connect();
    athlete.connect();

    const thread = await coach.createThread("direct", ["bea"]);
    assert.match(thread.id, /^d-[0-9a-f]{16}-[0-9a-f]{16}$/);
    assert.deepEqual(thread.members, ["bea", "coach-2"]);
    await athlete.openThread(thread.id);
    await coach.openThread(thread.id);

    const total = 30;
    for (let i = 1; i <= total; i++) {
      const ack = await coach.send(thread.id, `rep ${i}`, { msgId: `c2-${i}` });
      assert.deepEqual(ack, { t: "ack", seq: i, dup: false });
      if (i === 8 || i === 20) proxy.cut();
      await sleep(5);
    }
    await until(() => msgs.at(-1) === total, "every message", 15_000);
    assert.deepEqual(msgs, range(1, total));
    assert.equal(athlete.threadSeq(thread.id), total);

    // While the athlete is away and not viewing anywhere, messages become
    // new_message notices in its inbox; after the reconnect the inbox
    // replays from inbox_since: each notice once.
    proxy.block = true;
    proxy.cut();
    await until(() => athlete.state !== "open", "offline");
    await sleep(200); // the server sees the reset and stops counting the athlete as a viewer
    for (let i = total + 1; i <= total + 3; i++) await coach.send(thread.id, `away ${i}`);
    proxy.block = false;
    await until(() => msgs.at(-1) === total + 3, "the messages sent while away", 15_000);
    assert.deepEqual(msgs, range(1, total + 3));
    await sleep(200);
    const seqs = inbox.map((n) => n.seq);
    assert.deepEqual(seqs, range(1, seqs.length), `inbox ${JSON.stringify(inbox)}`);
    assert.equal(inbox[0]!.k, "added_to_thread");
    // at least the three sent while the athlete was away
    assert.ok(inbox.filter((n) => n.k === "new_message").length >= 3, JSON.stringify(inbox));
    assert.equal(athlete.inboxSeq, seqs.length);
    assert.deepEqual(decodeErrors, []);
  } finally {
    await proxy.close();
  }
});

test("a token the server refuses (4001) is replaced through refreshToken before reconnecting", async (t) => {
  if (!bin) {
    if (process.env.CI) assert.fail("no chalktalk binary (see the first test)");
    t.skip("no chalktalk binary");
    return;
  }
  let refreshed = 0;
  const c = new ChalktalkClient({
    url: `ws://127.0.0.1:${port}/ws`,
    device: "d-4001",
    token: signToken("not-the-server-secret-not-the-server-secret", "coach-3", "coach"),
    refreshToken: async () => {
      refreshed++;
      return signToken(SECRET, "coach-3", "coach");
    },
    WebSocket: WebSocket as unknown as WebSocketCtor,
    backoff: { initialMs: 20, maxMs: 100, factor: 2, jitter: 0 },
  });
  clients.push(c);
  const closes: number[] = [];
  c.on("close", (code) => closes.push(code));
  c.connect();
  await until(() => c.state === "open", "welcomed with the refreshed token", 10_000);
  assert.deepEqual(closes, [4001]);
  assert.equal(refreshed, 1);
  assert.equal(c.welcome?.user, "coach-3");
});
