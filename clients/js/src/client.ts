// The chalktalk client: one WebSocket speaking MessagePack (PROTOCOL.md).
//
// - hello first, with the token and the inbox seq (§2, §9);
// - requests paired with replies by id, each with a timeout (§4);
// - `ping` every heartbeat_ms, a connection silent for too long is
//   treated as dead, the pongs give the server clock offset (§3);
// - reconnect with exponential backoff and jitter; after each welcome every
//   joined room (`join_room since`), open thread (`open_thread since`) and
//   the inbox (`inbox_since`) resume from the last seq applied: events are
//   delivered in seq order, already-seen seqs are dropped, a `resync` or a
//   snapshot join hands a snapshot to the app (§7.5, §7.6, §8.2);
// - durable requests (`op`, `send`, `mark`) go through an ordered queue:
//   kept while offline and on a lost connection, resent in order with the
//   same `op_id` / `msg_id` (§7.8, §8.3), retried on timeouts and on
//   `overloaded` / `unavailable` / `internal`;
// - the token is refreshed before it expires through a callback, and on
//   close 4002 (and 4001) before reconnecting (§11).

import { backoffDelay, DEFAULT_BACKOFF, type BackoffOptions } from "./backoff.js";
import { Emitter } from "./emitter.js";
import { DecodeError, EncodeError } from "./msgpack.js";
import {
  CloseCode,
  decodeServerFrame,
  encodeClientFrame,
  PROTOCOL_VERSION,
  SUBPROTOCOL,
  type Activity,
  type Attachment,
  type ClientMsg,
  type Cursor,
  type Frame,
  type InboxEvent,
  type JoinMode,
  type LiveEvent,
  type MediaProgress,
  type Message,
  type Msg,
  type Point,
  type PresenceEntry,
  type Reply,
  type ReplyOf,
  type RoomEvent,
  type RoomOp,
  type RoomSnapshot,
  type Style,
  type ThreadInfo,
  type ThreadLive,
  type Welcome,
} from "./protocol.js";

// --- the WebSocket we need (browsers' global one, or the `ws` package) ----

export interface WebSocketLike {
  binaryType: string;
  readonly readyState: number;
  onopen: ((ev: unknown) => void) | null;
  onmessage: ((ev: { data: unknown }) => void) | null;
  onclose: ((ev: { code: number; reason: string }) => void) | null;
  onerror: ((ev: unknown) => void) | null;
  send(data: Uint8Array): void;
  close(code?: number, reason?: string): void;
}

export type WebSocketCtor = new (url: string, protocols?: string | string[]) => WebSocketLike;

// --- errors ----------------------------------------------------------------

export type ErrorKind =
  /** The server answered `err` (code in `code`). */
  | "server"
  /** No reply within the request timeout. */
  | "timeout"
  /** The connection was lost before a (non-idempotent) request was answered:
   * its outcome is unknown. */
  | "connection_lost"
  /** `close()` was called, or the client gave up (see `fatal`). */
  | "closed"
  /** A frame from the server could not be decoded. The frame is skipped. */
  | "decode"
  /** A frame could not be encoded (bad arguments) or is too big. */
  | "encode"
  /** A seq jumped: the client resumes (room, thread) or reports it (inbox). */
  | "gap"
  /** The token callback failed. */
  | "auth"
  /** A close code that must not be retried (4000, 4001 without a token
   * callback, 4003): the client stops. */
  | "fatal"
  /** The offline queue is full. */
  | "queue_full";

export class ChalktalkError extends Error {
  override name = "ChalktalkError";
  constructor(
    readonly kind: ErrorKind,
    message: string,
    /** The protocol error code (`not_member`, ...) for kind "server". */
    readonly code?: string,
    /** The WebSocket close code, when a close caused it. */
    readonly closeCode?: number,
  ) {
    super(message);
  }
}

// --- options and events ------------------------------------------------------

export interface ClientOptions {
  /** `ws://host:port/ws` or `wss://...`. */
  url: string;
  /** Stable per-device id (`valid_id`). */
  device: string;
  /** The access token. Optional when `refreshToken` is given. */
  token?: string;
  /** Returns a fresh access token (e.g. `POST /api/v1/auth/refresh`).
   * Called before the current one expires, on close 4002 and 4001, and
   * before connecting when there is no valid token. */
  refreshToken?: () => Promise<string>;
  /** Refresh this long before `exp` (default 60 s, at most half the
   * token's remaining life). */
  refreshBeforeMs?: number;
  /** The WebSocket constructor (default: the global `WebSocket`). In Node
   * 20 pass the `ws` package's. */
  WebSocket?: WebSocketCtor;
  /** Last inbox seq this device saw (persist it from the `inbox` events);
   * 0 on a new device. Absent: no replay on the first connection. */
  inboxSince?: number | null;
  /** Request timeout in ms (default 10 000). */
  requestTimeoutMs?: number;
  /** How long to wait for `welcome` after the socket opens (default 10 000). */
  welcomeTimeoutMs?: number;
  /** The connection counts as dead after this long without any frame
   * (default 2 × heartbeat_ms + requestTimeoutMs). */
  deadAfterMs?: number;
  /** Overrides the ping interval (default: welcome.heartbeat_ms). */
  pingEveryMs?: number;
  /** Reconnect backoff (default 250 ms doubling to 30 s, half jitter). */
  backoff?: Partial<BackoffOptions>;
  /** Attempts of one durable request (timeouts and retryable errors)
   * before its promise rejects (default 5). */
  maxAttempts?: number;
  /** Most durable requests kept while offline (default 1000). */
  maxQueue?: number;
  /** Random source in [0, 1) (tests). */
  random?: () => number;
  /** Prefix of generated op ids and msg ids (default: device + random). */
  idPrefix?: string;
}

export type ConnState = "idle" | "connecting" | "open" | "reconnecting" | "closed";

export interface JoinResult {
  room: string;
  /** The mode the server chose; a paged snapshot is already complete. */
  mode: "replay" | "snapshot" | "paged";
  presence: PresenceEntry[];
  /** The last seq applied after the join. */
  seq: number;
}

export interface ClientEvents {
  state: [ConnState];
  welcome: [Welcome];
  /** A durable room event, in seq order, each seq once. */
  room: [string, RoomEvent];
  /** Replace what you hold for this room by this snapshot (first join,
   * resume too far behind, after resync). Events with higher seqs follow. */
  snapshot: [string, RoomSnapshot];
  /** A join (first or resumed) completed. */
  joined: [JoinResult];
  live: [string, LiveEvent];
  /** A chat message, in seq order per thread, each seq once. */
  msg: [string, Message];
  thread_opened: [ThreadInfo, Cursor[]];
  thread_live: [string, ThreadLive];
  /** An inbox notice, in seq order, each seq once: persist `seq` and pass
   * it as `inboxSince` next time. */
  inbox: [InboxEvent];
  media: [MediaProgress];
  resync: [string, string];
  /** Never thrown: decode failures, unpaired `err` frames, gaps, fatal closes. */
  error: [ChalktalkError];
  close: [number, string];
}

// --- internal state ---------------------------------------------------------

interface Pending {
  id: number;
  onOk: (r: Reply) => void;
  onErr: (code: string, msg: string) => void;
  onLost: () => void;
  onTimeout: () => void;
  timer: ReturnType<typeof setTimeout> | undefined;
  sentAt: number;
}

interface Durable {
  msg: Msg<"op"> | Msg<"send"> | Msg<"edit_message"> | Msg<"delete_message"> | Msg<"mark">;
  resolve: (r: Reply) => void;
  reject: (e: ChalktalkError) => void;
  attempts: number;
  state: "queued" | "sent" | "waiting";
}

interface Waiting {
  msg: ClientMsg;
  resolve: (r: Reply) => void;
  reject: (e: ChalktalkError) => void;
  timer: ReturnType<typeof setTimeout>;
}

type RoomPhase = "out" | "joining" | "paging" | "in";

interface RoomState {
  last: number | null;
  phase: RoomPhase;
  /** Events that arrived while joining or paging. */
  buffer: RoomEvent[];
  waiters: { resolve: (j: JoinResult) => void; reject: (e: ChalktalkError) => void }[];
  retry: number;
  /** The last completed join on the current connection. */
  joined?: JoinResult;
}

type ThreadPhase = "out" | "opening" | "filling" | "in";

interface ThreadState {
  last: number | null;
  phase: ThreadPhase;
  buffer: Message[];
  waiters: { resolve: (t: ThreadInfo) => void; reject: (e: ChalktalkError) => void }[];
  retry: number;
  /** The thread as the last thread_opened described it. */
  info?: ThreadInfo;
}

interface Conn {
  ws: WebSocketLike;
  welcomed: boolean;
  helloId: number;
  helloErr: string | null;
  timers: ReturnType<typeof setTimeout>[];
  pingTimer: ReturnType<typeof setInterval> | undefined;
  lastRecv: number;
}

const RETRYABLE = new Set(["overloaded", "unavailable", "internal"]);
const NOT_RETRYABLE_JOIN = new Set(["not_member", "forbidden", "not_found", "invalid"]);

/** The `exp` claim of a JWT in ms, or null. */
export function tokenExpiryMs(token: string): number | null {
  const part = token.split(".")[1];
  if (!part) return null;
  try {
    const b64 = part.replace(/-/g, "+").replace(/_/g, "/");
    const json = JSON.parse(atob(b64 + "===".slice((b64.length + 3) % 4)));
    return typeof json.exp === "number" ? json.exp * 1000 : null;
  } catch {
    return null;
  }
}

function toBytes(data: unknown): Uint8Array | null {
  if (data instanceof Uint8Array) return data;
  if (data instanceof ArrayBuffer) return new Uint8Array(data);
  if (ArrayBuffer.isView(data)) return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  if (Array.isArray(data) && data.every((d) => d instanceof Uint8Array)) {
    const n = data.reduce((a: number, d: Uint8Array) => a + d.length, 0);
    const out = new Uint8Array(n);
    let o = 0;
    for (const d of data as Uint8Array[]) {
      out.set(d, o);
      o += d.length;
    }
    return out;
  }
  return null;
}

export class ChalktalkClient extends Emitter<ClientEvents> {
  private readonly opts: ClientOptions;
  private readonly WS: WebSocketCtor;
  private readonly backoff: BackoffOptions;
  private readonly random: () => number;
  private readonly timeoutMs: number;
  private readonly maxAttempts: number;
  private readonly maxQueue: number;
  private readonly idPrefix: string;

  private stateValue: ConnState = "idle";
  private conn: Conn | null = null;
  private token: string | null;
  private refreshTimer: ReturnType<typeof setTimeout> | undefined;
  private reconnectTimer: ReturnType<typeof setTimeout> | undefined;
  private attempt = 0;
  private authFailures = 0;
  private stopped = false;
  private nextIdValue = 1;
  private idCounter = 0;

  private pending = new Map<number, Pending>();
  private durable: Durable[] = [];
  private waiting: Waiting[] = [];
  private rooms = new Map<string, RoomState>();
  private threads = new Map<string, ThreadState>();
  private inboxLast: number | null;

  private bestRtt = Infinity;
  private clockOffset = 0;

  /** The last welcome (limits, heartbeat, user, role). */
  welcome: Welcome | null = null;
  /** Counters, for tests and diagnostics. */
  readonly stats = { connects: 0, duplicatesDropped: 0, decodeErrors: 0, resent: 0 };

  constructor(opts: ClientOptions) {
    super();
    this.opts = opts;
    const WS =
      opts.WebSocket ?? (globalThis as unknown as { WebSocket?: WebSocketCtor }).WebSocket;
    if (!WS) throw new Error("no WebSocket: pass options.WebSocket (e.g. the `ws` package in Node)");
    this.WS = WS;
    this.backoff = { ...DEFAULT_BACKOFF, ...opts.backoff };
    this.random = opts.random ?? Math.random;
    this.timeoutMs = opts.requestTimeoutMs ?? 10_000;
    this.maxAttempts = opts.maxAttempts ?? 5;
    this.maxQueue = opts.maxQueue ?? 1000;
    this.token = opts.token ?? null;
    this.inboxLast = opts.inboxSince ?? null;
    const rand = Math.floor(this.random() * 0x7fffffff).toString(36);
    this.idPrefix = opts.idPrefix ?? `${opts.device.slice(0, 40)}.${rand}`;
  }

  // --- public API: connection ------------------------------------------------

  get state(): ConnState {
    return this.stateValue;
  }

  /** The last inbox seq delivered (persist it). */
  get inboxSeq(): number | null {
    return this.inboxLast;
  }

  /** The last seq applied in a room, or null. */
  roomSeq(room: string): number | null {
    return this.rooms.get(room)?.last ?? null;
  }

  /** The last message seq delivered for a thread, or null. */
  threadSeq(thread: string): number | null {
    return this.threads.get(thread)?.last ?? null;
  }

  /** Durable requests not acknowledged yet (queued or in flight). */
  get queued(): number {
    return this.durable.length;
  }

  /** The server clock (ms since the epoch) estimated from pongs (§3, §7.10). */
  serverNow(): number {
    return Date.now() + this.clockOffset;
  }

  /** Opens the connection (and keeps it open until `close()`). */
  connect(): void {
    if (this.stateValue !== "idle" && this.stateValue !== "closed") return;
    this.stopped = false;
    void this.open();
  }

  /** Closes for good: no reconnect; queued and pending requests reject. */
  close(): void {
    this.stopped = true;
    clearTimeout(this.reconnectTimer);
    clearTimeout(this.refreshTimer);
    const c = this.conn;
    if (c) {
      this.teardown(c);
      try {
        c.ws.close(CloseCode.NORMAL, "bye");
      } catch {
        /* already closed */
      }
    }
    this.failEverything(new ChalktalkError("closed", "the client was closed"));
    this.setState("closed");
  }

  /** Drops the current socket without a close handshake and reconnects, as
   * after a network loss (for tests and "retry now" buttons). */
  reconnectNow(): void {
    const c = this.conn;
    if (c) {
      try {
        c.ws.close(4000 + 999, "client reconnect");
      } catch {
        /* ignore */
      }
      this.lost(c, CloseCode.ABNORMAL, "reconnect requested", 0);
    } else if (this.stateValue === "reconnecting") {
      clearTimeout(this.reconnectTimer);
      void this.open();
    }
  }

  // --- public API: rooms ---------------------------------------------------------

  /** Joins a room and keeps it joined across reconnects. `since`: the last
   * seq you applied earlier (e.g. persisted); otherwise what this client
   * saw, else a snapshot. Resolves when the join (and paging) is complete. */
  joinRoom(room: string, opts: { since?: number | null } = {}): Promise<JoinResult> {
    let st = this.rooms.get(room);
    if (!st) {
      st = { last: opts.since ?? null, phase: "out", buffer: [], waiters: [], retry: 0 };
      this.rooms.set(room, st);
    } else if (opts.since !== undefined && opts.since !== null) {
      st.last = st.last === null ? opts.since : Math.max(st.last, opts.since);
    }
    const s = st;
    return new Promise((resolve, reject) => {
      if (s.phase === "in" && s.joined) return resolve({ ...s.joined, seq: s.last ?? 0 });
      s.waiters.push({ resolve, reject });
      if (this.isOpen() && s.phase === "out") this.sendJoin(room);
    });
  }

  /** Leaves a room (no more events, no resume). */
  async leaveRoom(room: string): Promise<void> {
    const st = this.rooms.get(room);
    this.rooms.delete(room);
    st?.waiters.forEach((w) => w.reject(new ChalktalkError("closed", `left room ${room}`)));
    if (this.isOpen() && st && st.phase !== "out") await this.request({ t: "leave_room", room });
  }

  /** A durable room op, acknowledged once stored. Kept (and resent with the
   * same op id) across disconnects; resolves with `{seq, dup}`. */
  op(room: string, op: RoomOp, opts: { opId?: string } = {}): Promise<ReplyOf<"ack">> {
    const op_id = opts.opId ?? this.newId("op");
    return this.enqueue({ t: "op", room, op_id, op }) as Promise<ReplyOf<"ack">>;
  }

  /** Live stroke points (ephemeral): sent only while joined; false otherwise. */
  points(
    room: string,
    stroke: string,
    batch: number,
    t_ms: number,
    points: Point[],
    style?: Style,
  ): boolean {
    return this.sendEphemeral(room, { t: "points", room, stroke, batch, t_ms, style, points });
  }

  pointer(room: string, at: Point | null): boolean {
    return this.sendEphemeral(room, { t: "pointer", room, at });
  }

  activity(room: string, activity: Activity): boolean {
    return this.sendEphemeral(room, { t: "activity", room, activity });
  }

  createRoom(video_id: string, opts: { aspect?: number; fps?: number } = {}): Promise<string> {
    return this.request({ t: "create_room", video_id, aspect: opts.aspect, fps: opts.fps }).then(
      (r) => (r as ReplyOf<"room_created">).room,
    );
  }

  // --- public API: threads ---------------------------------------------------

  /** Opens a thread and keeps it open across reconnects; missing messages
   * (more than the server's catch-up) are fetched with `history`. */
  openThread(thread: string, opts: { since?: number | null } = {}): Promise<ThreadInfo> {
    let st = this.threads.get(thread);
    if (!st) {
      st = { last: opts.since ?? null, phase: "out", buffer: [], waiters: [], retry: 0 };
      this.threads.set(thread, st);
    }
    const s = st;
    return new Promise((resolve, reject) => {
      if (s.phase === "in" && s.info) return resolve(s.info);
      s.waiters.push({ resolve, reject });
      if (this.isOpen() && s.phase === "out") this.sendOpen(thread);
    });
  }

  async closeThread(thread: string): Promise<void> {
    const st = this.threads.get(thread);
    this.threads.delete(thread);
    st?.waiters.forEach((w) => w.reject(new ChalktalkError("closed", `closed thread ${thread}`)));
    if (this.isOpen() && st && st.phase !== "out") await this.request({ t: "close_thread", thread });
  }

  /** A durable chat message (idempotent by msg id, kept while offline). */
  send(
    thread: string,
    text: string,
    opts: { msgId?: string; attachments?: Attachment[]; replyTo?: number } = {},
  ): Promise<ReplyOf<"ack">> {
    const msg_id = opts.msgId ?? this.newId("m");
    return this.enqueue({
      t: "send",
      thread,
      msg_id,
      text,
      attachments: opts.attachments ?? [],
      reply_to: opts.replyTo ?? null,
    }) as Promise<ReplyOf<"ack">>;
  }

  /** Replaces the text of your own message `of` (durable, idempotent by
   * msg id, kept while offline); arrives as a `msg` with `edit`. */
  editMessage(
    thread: string,
    of: number,
    text: string,
    opts: { msgId?: string } = {},
  ): Promise<ReplyOf<"ack">> {
    const msg_id = opts.msgId ?? this.newId("m");
    return this.enqueue({ t: "edit_message", thread, msg_id, of, text }) as Promise<
      ReplyOf<"ack">
    >;
  }

  /** Deletes your own message `of` (durable, idempotent by msg id). */
  deleteMessage(thread: string, of: number, opts: { msgId?: string } = {}): Promise<ReplyOf<"ack">> {
    const msg_id = opts.msgId ?? this.newId("m");
    return this.enqueue({ t: "delete_message", thread, msg_id, of }) as Promise<ReplyOf<"ack">>;
  }

  /** Moves this user's cursor (durable, monotonic: safe to resend). */
  async mark(thread: string, c: { delivered?: number; read?: number }): Promise<void> {
    await this.enqueue({ t: "mark", thread, delivered: c.delivered ?? null, read: c.read ?? null });
  }

  typing(thread: string, on: boolean): boolean {
    if (!this.isOpen()) return false;
    return this.sendFrame(0, { t: "typing", thread, on });
  }

  createThread(kind: "direct" | "group", members: string[], title?: string): Promise<ThreadInfo> {
    return this.request({ t: "create_thread", kind, members, title: title ?? null }).then(
      (r) => (r as ReplyOf<"thread_created">).thread,
    );
  }

  /** The review room's own chat thread (members of the room only). */
  roomThread(room: string): Promise<ThreadInfo> {
    return this.request({ t: "room_thread", room }).then((r) => (r as ReplyOf<"thread_created">).thread);
  }

  history(thread: string, limit: number, before?: number): Promise<ReplyOf<"history">> {
    return this.request({ t: "history", thread, limit, before: before ?? null }) as Promise<
      ReplyOf<"history">
    >;
  }

  mediaLink(asset: string): Promise<ReplyOf<"media_link">> {
    return this.request({ t: "media_link", asset }) as Promise<ReplyOf<"media_link">>;
  }

  cancelMedia(asset: string): Promise<void> {
    return this.request({ t: "cancel_media", asset }).then(() => undefined);
  }

  /** Any request, paired by id. Sent once: while offline it waits for the
   * connection (up to the timeout); a connection lost before the reply
   * rejects with "connection_lost" (outcome unknown). Use `op`, `send` and
   * `mark` for what must survive reconnects. */
  request(m: ClientMsg): Promise<Reply> {
    return new Promise((resolve, reject) => {
      if (this.stopped || this.stateValue === "closed") {
        reject(new ChalktalkError("closed", "the client is closed"));
        return;
      }
      if (this.isOpen()) {
        this.sendRequest(m, resolve, reject);
        return;
      }
      const w: Waiting = {
        msg: m,
        resolve,
        reject,
        timer: setTimeout(() => {
          this.waiting = this.waiting.filter((x) => x !== w);
          reject(new ChalktalkError("timeout", `not connected within ${this.timeoutMs} ms (${m.t})`));
        }, this.timeoutMs),
      };
      this.waiting.push(w);
    });
  }

  // --- connection lifecycle ------------------------------------------------------

  private setState(s: ConnState): void {
    if (this.stateValue === s) return;
    this.stateValue = s;
    this.emit("state", s);
  }

  private isOpen(): boolean {
    return this.conn !== null && this.conn.welcomed;
  }

  private async open(): Promise<void> {
    if (this.stopped) return;
    this.setState(this.stats.connects === 0 ? "connecting" : "reconnecting");
    if (!(await this.ensureToken())) return;
    if (this.stopped) return;
    let ws: WebSocketLike;
    try {
      ws = new this.WS(this.opts.url, [SUBPROTOCOL]);
    } catch (e) {
      this.emit("error", new ChalktalkError("connection_lost", `cannot open: ${String(e)}`));
      this.scheduleReconnect();
      return;
    }
    ws.binaryType = "arraybuffer";
    const c: Conn = {
      ws,
      welcomed: false,
      helloId: 0,
      helloErr: null,
      timers: [],
      pingTimer: undefined,
      lastRecv: Date.now(),
    };
    this.conn = c;
    ws.onopen = () => this.onOpen(c);
    ws.onmessage = (ev) => this.onMessage(c, ev.data);
    ws.onclose = (ev) => this.lost(c, ev.code, ev.reason ?? "");
    ws.onerror = () => {
      /* the close event follows */
    };
  }

  private onOpen(c: Conn): void {
    if (this.conn !== c) return;
    c.helloId = this.nextId();
    const hello: ClientMsg = {
      t: "hello",
      v: [PROTOCOL_VERSION],
      token: this.token,
      device: this.opts.device,
      inbox_since: this.inboxLast,
    };
    this.sendRaw(c, c.helloId, hello);
    c.timers.push(
      setTimeout(() => {
        if (this.conn === c && !c.welcomed) {
          try {
            c.ws.close(4000 + 998, "no welcome");
          } catch {
            /* ignore */
          }
          this.lost(c, CloseCode.ABNORMAL, "no welcome in time");
        }
      }, this.opts.welcomeTimeoutMs ?? 10_000),
    );
  }

  private onMessage(c: Conn, data: unknown): void {
    if (this.conn !== c) return;
    c.lastRecv = Date.now();
    const bytes = toBytes(data);
    if (!bytes) {
      this.stats.decodeErrors++;
      this.emit(
        "error",
        new ChalktalkError("decode", `non-binary message from the server (${typeof data}); skipped`),
      );
      return;
    }
    let frame;
    try {
      frame = decodeServerFrame(bytes);
    } catch (e) {
      this.stats.decodeErrors++;
      const msg = e instanceof DecodeError ? e.message : String(e);
      this.emit("error", new ChalktalkError("decode", `${msg}; frame of ${bytes.length} bytes skipped`));
      return;
    }
    try {
      this.handleFrame(c, frame);
    } catch (e) {
      // A bug in our own handling must not take the connection down.
      this.emit("error", new ChalktalkError("decode", `while handling a ${frame.t} frame: ${String(e)}`));
    }
  }

  private handleFrame(c: Conn, f: Frame<any>): void {
    if (!c.welcomed) {
      if (f.t === "welcome") return this.onWelcome(c, f);
      if (f.t === "err") c.helloErr = f.code;
      return; // welcome is always the first frame of an accepted connection
    }
    switch (f.t) {
      case "ok":
      case "err": {
        const p = this.pending.get(f.id);
        if (!p || f.id === 0) {
          if (f.t === "err")
            this.emit("error", new ChalktalkError("server", `${f.code}: ${f.msg} (id ${f.id})`, f.code));
          return;
        }
        this.pending.delete(f.id);
        clearTimeout(p.timer);
        if (f.t === "ok") {
          if (f.r.t === "pong") this.onPong(p, f.r.server_ms);
          p.onOk(f.r);
        } else p.onErr(f.code, f.msg);
        return;
      }
      case "room":
        return this.onRoomEvent(f.room, f.ev);
      case "live":
        return this.emit("live", f.room, f.ev);
      case "msg":
        return this.onMsg(f.thread, f.msg);
      case "thread_live":
        return this.emit("thread_live", f.thread, f.ev);
      case "inbox":
        return this.onInbox(f as InboxEvent);
      case "media":
        return this.emit("media", f as MediaProgress);
      case "resync":
        return this.onResync(f.room, f.reason);
      case "welcome":
        return; // a second welcome cannot happen; ignore
    }
  }

  private onWelcome(c: Conn, w: Welcome): void {
    c.welcomed = true;
    this.welcome = w;
    this.stats.connects++;
    this.attempt = 0;
    this.authFailures = 0;
    if (this.bestRtt === Infinity) this.clockOffset = w.server_ms - Date.now();
    const every = this.opts.pingEveryMs ?? w.heartbeat_ms;
    const dead = this.opts.deadAfterMs ?? 2 * w.heartbeat_ms + this.timeoutMs;
    c.pingTimer = setInterval(() => {
      if (this.conn !== c) return;
      if (Date.now() - c.lastRecv > dead) {
        try {
          c.ws.close(4000 + 997, "dead");
        } catch {
          /* ignore */
        }
        this.lost(c, CloseCode.ABNORMAL, `nothing received for ${dead} ms`);
        return;
      }
      this.sendRequest({ t: "ping" }, () => {}, () => {});
    }, every);
    this.setState("open");
    this.emit("welcome", w);
    // Resume: rooms, threads, then the durable queue in order, then the
    // requests that waited for the connection. The server handles one
    // connection's frames in order, so joins are in place before the ops.
    for (const [room, st] of this.rooms) if (st.phase === "out") this.sendJoin(room);
    for (const [thread, st] of this.threads) if (st.phase === "out") this.sendOpen(thread);
    this.flushDurable();
    const waiting = this.waiting;
    this.waiting = [];
    for (const w2 of waiting) {
      clearTimeout(w2.timer);
      this.sendRequest(w2.msg, w2.resolve, w2.reject);
    }
  }

  private onPong(p: Pending, serverMs: number): void {
    const now = Date.now();
    const rtt = now - p.sentAt;
    if (rtt <= this.bestRtt) {
      this.bestRtt = rtt;
      this.clockOffset = serverMs - (p.sentAt + now) / 2;
    }
  }

  /** The connection `c` is gone (close event, dead, no welcome). */
  private lost(c: Conn, code: number, reason: string, delayOverride?: number): void {
    if (this.conn !== c) return;
    this.teardown(c);
    this.emit("close", code, reason);
    // Requests in flight: durable ones go back to the queue, others reject.
    const pending = [...this.pending.values()];
    this.pending.clear();
    for (const p of pending) {
      clearTimeout(p.timer);
      p.onLost();
    }
    for (const st of this.rooms.values()) {
      st.phase = "out";
      st.buffer = [];
    }
    for (const st of this.threads.values()) {
      st.phase = "out";
      st.buffer = [];
    }
    if (this.stopped) return;
    const expired = code === CloseCode.TOKEN_EXPIRED || c.helloErr === "token_expired";
    const unauthorized = code === CloseCode.UNAUTHORIZED || c.helloErr === "unauthorized";
    if (code === CloseCode.HELLO_REQUIRED || code === CloseCode.UNSUPPORTED_VERSION) {
      return this.fatal(code, `closed ${code} (${reason}): not retrying`);
    }
    if (expired || unauthorized) {
      if (!this.opts.refreshToken || ++this.authFailures > 3) {
        return this.fatal(code, `closed ${code} (${reason}): the token was refused`);
      }
      this.token = null; // ensureToken() refreshes before the next hello
      if (expired && this.authFailures === 1) return this.scheduleReconnect(0);
    }
    const min = code === CloseCode.FLOOD ? 5_000 : 0;
    this.scheduleReconnect(delayOverride ?? Math.max(min, this.nextBackoff()));
  }

  private teardown(c: Conn): void {
    c.ws.onopen = c.ws.onmessage = c.ws.onclose = null;
    c.ws.onerror = () => {};
    c.timers.forEach(clearTimeout);
    clearInterval(c.pingTimer);
    if (this.conn === c) this.conn = null;
  }

  private nextBackoff(): number {
    return backoffDelay(this.attempt++, this.backoff, this.random);
  }

  private scheduleReconnect(delay = this.nextBackoff()): void {
    this.setState("reconnecting");
    clearTimeout(this.reconnectTimer);
    this.reconnectTimer = setTimeout(() => void this.open(), delay);
  }

  private fatal(code: number, message: string): void {
    const e = new ChalktalkError("fatal", message, undefined, code);
    this.stopped = true;
    clearTimeout(this.refreshTimer);
    this.emit("error", e);
    this.failEverything(e);
    this.setState("closed");
  }

  private failEverything(e: ChalktalkError): void {
    const durable = this.durable;
    this.durable = [];
    durable.forEach((d) => d.reject(e));
    const waiting = this.waiting;
    this.waiting = [];
    waiting.forEach((w) => {
      clearTimeout(w.timer);
      w.reject(e);
    });
    const pending = [...this.pending.values()];
    this.pending.clear();
    pending.forEach((p) => {
      clearTimeout(p.timer);
      p.onLost();
    });
    for (const st of this.rooms.values()) st.waiters.splice(0).forEach((w) => w.reject(e));
    for (const st of this.threads.values()) st.waiters.splice(0).forEach((w) => w.reject(e));
  }

  // --- tokens ---------------------------------------------------------------------

  /** Makes sure a usable token is at hand; false when the client stopped. */
  private async ensureToken(): Promise<boolean> {
    const exp = this.token ? tokenExpiryMs(this.token) : null;
    const usable = this.token !== null && (exp === null || exp - Date.now() > 5_000);
    if (usable) {
      this.scheduleRefresh();
      return true;
    }
    if (!this.opts.refreshToken) {
      if (this.token !== null) return true; // let the server decide
      this.fatal(CloseCode.UNAUTHORIZED, "no token and no refreshToken callback");
      return false;
    }
    try {
      this.token = await this.opts.refreshToken();
    } catch (e) {
      this.emit("error", new ChalktalkError("auth", `token refresh failed: ${String(e)}`));
      if (!this.stopped) this.scheduleReconnect();
      return false;
    }
    this.scheduleRefresh();
    return true;
  }

  private scheduleRefresh(): void {
    clearTimeout(this.refreshTimer);
    if (!this.opts.refreshToken || !this.token) return;
    const exp = tokenExpiryMs(this.token);
    if (exp === null) return;
    const left = exp - Date.now();
    const want = this.opts.refreshBeforeMs ?? 60_000;
    const before = want < left ? want : left / 2;
    this.refreshTimer = setTimeout(async () => {
      if (this.stopped) return;
      try {
        this.token = await this.opts.refreshToken!();
        this.scheduleRefresh();
      } catch (e) {
        this.emit("error", new ChalktalkError("auth", `token refresh failed: ${String(e)}`));
        this.refreshTimer = setTimeout(() => this.scheduleRefresh(), 5_000);
      }
    }, Math.max(0, left - before));
  }

  // --- sending ---------------------------------------------------------------------

  private nextId(): number {
    for (;;) {
      const id = this.nextIdValue;
      this.nextIdValue = id >= 0xffffffff ? 1 : id + 1;
      if (!this.pending.has(id)) return id;
    }
  }

  private newId(kind: string): string {
    return `${this.idPrefix}.${kind}${++this.idCounter}`;
  }

  private sendRaw(c: Conn, id: number, m: ClientMsg): boolean {
    let bytes: Uint8Array;
    try {
      bytes = encodeClientFrame({ id, m });
    } catch (e) {
      throw new ChalktalkError("encode", e instanceof EncodeError ? e.message : String(e));
    }
    const max = this.welcome?.limits.max_frame_bytes ?? 65536;
    if (bytes.length > max)
      throw new ChalktalkError("encode", `${m.t} frame of ${bytes.length} bytes; at most ${max}`);
    try {
      c.ws.send(bytes);
      return true;
    } catch {
      return false;
    }
  }

  private sendFrame(id: number, m: ClientMsg): boolean {
    if (!this.conn || !this.conn.welcomed) return false;
    return this.sendRaw(this.conn, id, m);
  }

  private sendEphemeral(room: string, m: ClientMsg): boolean {
    if (!this.isOpen() || this.rooms.get(room)?.phase !== "in") return false;
    return this.sendFrame(0, m);
  }

  /** Sends a request now (the connection is open) and wires its callbacks. */
  private track(
    m: ClientMsg,
    h: { onOk: Pending["onOk"]; onErr: Pending["onErr"]; onLost: Pending["onLost"]; onTimeout: Pending["onTimeout"] },
  ): void {
    const id = this.nextId();
    const p: Pending = { id, ...h, timer: undefined, sentAt: Date.now() };
    this.pending.set(id, p);
    p.timer = setTimeout(() => {
      if (this.pending.get(id) !== p) return;
      this.pending.delete(id);
      p.onTimeout();
    }, this.timeoutMs);
    let sent = false;
    try {
      sent = this.sendFrame(id, m);
    } catch (e) {
      this.pending.delete(id);
      clearTimeout(p.timer);
      throw e;
    }
    if (!sent) {
      // The socket is closing: treat as lost; its close event follows.
      this.pending.delete(id);
      clearTimeout(p.timer);
      p.onLost();
    }
  }

  private sendRequest(m: ClientMsg, resolve: (r: Reply) => void, reject: (e: ChalktalkError) => void): void {
    try {
      this.track(m, {
        onOk: resolve,
        onErr: (code, msg) => reject(new ChalktalkError("server", `${code}: ${msg}`, code)),
        onLost: () =>
          reject(new ChalktalkError("connection_lost", `connection lost before the reply to ${m.t}`)),
        onTimeout: () => reject(new ChalktalkError("timeout", `no reply to ${m.t} within ${this.timeoutMs} ms`)),
      });
    } catch (e) {
      reject(e instanceof ChalktalkError ? e : new ChalktalkError("encode", String(e)));
    }
  }

  // --- the durable queue -----------------------------------------------------------

  private enqueue(msg: Durable["msg"]): Promise<Reply> {
    return new Promise((resolve, reject) => {
      if (this.stopped || this.stateValue === "closed") {
        reject(new ChalktalkError("closed", "the client is closed"));
        return;
      }
      try {
        encodeClientFrame({ id: 0, m: msg }); // refuse bad arguments now, not at flush
      } catch (e) {
        reject(new ChalktalkError("encode", e instanceof Error ? e.message : String(e)));
        return;
      }
      if (this.durable.length >= this.maxQueue) {
        reject(new ChalktalkError("queue_full", `${this.durable.length} requests already queued`));
        return;
      }
      this.durable.push({ msg, resolve, reject, attempts: 0, state: "queued" });
      if (this.isOpen()) this.flushDurable();
    });
  }

  /** Sends every queued durable request, in queue order. */
  private flushDurable(): void {
    // A copy: replies may complete (and remove) entries while we send.
    for (const d of [...this.durable]) {
      if (!this.isOpen()) return;
      if (d.state === "queued" && this.durable.includes(d)) this.sendDurable(d);
    }
  }

  private sendDurable(d: Durable): void {
    d.state = "sent";
    if (d.attempts++ > 0) this.stats.resent++;
    const done = () => {
      const i = this.durable.indexOf(d);
      if (i >= 0) this.durable.splice(i, 1);
    };
    const retry = (why: ChalktalkError) => {
      if (d.attempts >= this.maxAttempts) {
        done();
        d.reject(why);
        return;
      }
      d.state = "waiting";
      setTimeout(() => {
        if (!this.durable.includes(d) || d.state !== "waiting") return;
        d.state = "queued";
        if (this.isOpen()) this.sendDurable(d);
      }, backoffDelay(d.attempts - 1, this.backoff, this.random));
    };
    const handlers: Parameters<ChalktalkClient["track"]>[1] = {
      onOk: (r) => {
        done();
        d.resolve(r);
      },
      onErr: (code, msg) => {
        const e = new ChalktalkError("server", `${code}: ${msg}`, code);
        if (RETRYABLE.has(code)) retry(e);
        else {
          done();
          d.reject(e);
        }
      },
      // Back in the queue; resent in order after the next welcome.
      onLost: () => {
        d.state = "queued";
        d.attempts = Math.max(0, d.attempts - 1);
      },
      onTimeout: () => retry(new ChalktalkError("timeout", `no ack for ${d.msg.t} within ${this.timeoutMs} ms`)),
    };
    try {
      this.track(d.msg, handlers);
    } catch (e) {
      // Cannot be sent at all (e.g. larger than welcome.limits allow).
      done();
      d.reject(e instanceof ChalktalkError ? e : new ChalktalkError("encode", String(e)));
    }
  }

  // --- rooms: join, catch-up, dedup ------------------------------------------------

  private sendJoin(room: string): void {
    const st = this.rooms.get(room);
    if (!st || !this.isOpen()) return;
    st.phase = "joining";
    st.buffer = [];
    const failed = (e: ChalktalkError, retryable: boolean) => {
      if (this.rooms.get(room) !== st) return;
      st.phase = "out";
      if (!retryable || st.retry >= this.maxAttempts) {
        this.rooms.delete(room);
        st.waiters.splice(0).forEach((w) => w.reject(e));
        this.emit("error", e);
        return;
      }
      const delay = backoffDelay(st.retry++, this.backoff, this.random);
      setTimeout(() => {
        if (this.rooms.get(room) === st && st.phase === "out" && this.isOpen()) this.sendJoin(room);
      }, delay);
    };
    this.track(
      { t: "join_room", room, since: st.last },
      {
        onOk: (r) => {
          if (this.rooms.get(room) !== st || r.t !== "joined") return;
          st.retry = 0;
          this.onJoined(room, st, r.mode, r.presence);
        },
        onErr: (code, msg) =>
          failed(
            new ChalktalkError("server", `join_room ${room}: ${code}: ${msg}`, code),
            !NOT_RETRYABLE_JOIN.has(code),
          ),
        onLost: () => {
          if (this.rooms.get(room) === st) st.phase = "out";
        },
        onTimeout: () => failed(new ChalktalkError("timeout", `join_room ${room}: no reply`), true),
      },
    );
  }

  private onJoined(room: string, st: RoomState, mode: JoinMode, presence: PresenceEntry[]): void {
    const finish = (kind: JoinResult["mode"]) => {
      st.phase = "in";
      const buffered = st.buffer;
      st.buffer = [];
      for (const ev of buffered) this.onRoomEvent(room, ev);
      const res: JoinResult = { room, mode: kind, presence, seq: st.last ?? 0 };
      st.joined = res;
      this.emit("joined", res);
      this.emit("live", room, { k: "presence", members: presence });
      st.waiters.splice(0).forEach((w) => w.resolve(res));
    };
    if (mode.k === "replay") {
      // Events since+1..=head follow as room frames.
      if (st.last === null || st.last < mode.since) st.last = mode.since;
      return finish("replay");
    }
    if (mode.k === "snapshot") {
      this.applySnapshot(room, st, mode.snapshot);
      return finish("snapshot");
    }
    // Paged: fetch every page, one at a time; events meanwhile are buffered.
    st.phase = "paging";
    const snapshot = mode.snapshot;
    const annotations: RoomSnapshot["annotations"] = [];
    const page = (n: number) => {
      if (n >= mode.pages) {
        this.applySnapshot(room, st, { ...snapshot, annotations });
        return finish("paged");
      }
      this.track(
        { t: "snapshot_page", room, seq: snapshot.seq, page: n },
        {
          onOk: (r) => {
            if (this.rooms.get(room) !== st || st.phase !== "paging" || r.t !== "snapshot_page") return;
            annotations.push(...r.annotations);
            page(n + 1);
          },
          // Paging failed: join again (a new snapshot or a replay).
          onErr: () => {
            if (this.rooms.get(room) === st && this.isOpen()) this.sendJoin(room);
          },
          onLost: () => {},
          onTimeout: () => {
            if (this.rooms.get(room) === st && this.isOpen()) this.sendJoin(room);
          },
        },
      );
    };
    page(0);
  }

  private applySnapshot(room: string, st: RoomState, snapshot: RoomSnapshot): void {
    st.last = snapshot.seq;
    // Buffered events the snapshot already holds are dropped by onRoomEvent.
    this.emit("snapshot", room, snapshot);
  }

  private onRoomEvent(room: string, ev: RoomEvent): void {
    const st = this.rooms.get(room);
    if (!st) return; // left
    if (st.phase === "joining" || st.phase === "paging") {
      st.buffer.push(ev);
      return;
    }
    if (st.phase === "out") return; // a stale frame of a room we rejoin
    if (st.last !== null && ev.seq <= st.last) {
      this.stats.duplicatesDropped++;
      return;
    }
    if (st.last !== null && ev.seq > st.last + 1) {
      this.emit(
        "error",
        new ChalktalkError("gap", `room ${room}: seq ${ev.seq} after ${st.last}; joining again`),
      );
      this.sendJoin(room);
      return;
    }
    st.last = ev.seq;
    this.emit("room", room, ev);
  }

  private onResync(room: string, reason: string): void {
    const st = this.rooms.get(room);
    this.emit("resync", room, reason);
    if (!st) return;
    st.phase = "out";
    if (this.isOpen()) this.sendJoin(room);
  }

  // --- threads: open, catch-up, fill, dedup ----------------------------------------

  private sendOpen(thread: string): void {
    const st = this.threads.get(thread);
    if (!st || !this.isOpen()) return;
    st.phase = "opening";
    st.buffer = [];
    const failed = (e: ChalktalkError, retryable: boolean) => {
      if (this.threads.get(thread) !== st) return;
      st.phase = "out";
      if (!retryable || st.retry >= this.maxAttempts) {
        this.threads.delete(thread);
        st.waiters.splice(0).forEach((w) => w.reject(e));
        this.emit("error", e);
        return;
      }
      setTimeout(() => {
        if (this.threads.get(thread) === st && st.phase === "out" && this.isOpen()) this.sendOpen(thread);
      }, backoffDelay(st.retry++, this.backoff, this.random));
    };
    this.track(
      { t: "open_thread", thread, since: st.last },
      {
        onOk: (r) => {
          if (this.threads.get(thread) !== st || r.t !== "thread_opened") return;
          st.retry = 0;
          st.info = r.thread;
          this.emit("thread_opened", r.thread, r.cursors);
          const done = () => st.waiters.splice(0).forEach((w) => w.resolve(r.thread));
          if (st.last === null || r.since <= st.last) {
            if (st.last === null) st.last = r.since;
            this.drainThread(thread, st);
            done();
          } else {
            // The server's catch-up starts after what we have: fetch the
            // messages in between with history first.
            this.fillThread(thread, st, st.last + 1, r.since, done);
          }
        },
        onErr: (code, msg) =>
          failed(
            new ChalktalkError("server", `open_thread ${thread}: ${code}: ${msg}`, code),
            !NOT_RETRYABLE_JOIN.has(code),
          ),
        onLost: () => {
          if (this.threads.get(thread) === st) st.phase = "out";
        },
        onTimeout: () => failed(new ChalktalkError("timeout", `open_thread ${thread}: no reply`), true),
      },
    );
  }

  /** Fetches messages from..=to with `history` (pages of up to 200, newest
   * first), delivers them, then what was buffered meanwhile. */
  private fillThread(thread: string, st: ThreadState, from: number, to: number, done?: () => void): void {
    st.phase = "filling";
    const got: Message[] = [];
    const step = (before: number) => {
      this.track(
        { t: "history", thread, before, limit: Math.min(200, before - from) },
        {
          onOk: (r) => {
            if (this.threads.get(thread) !== st || st.phase !== "filling" || r.t !== "history") return;
            got.unshift(...r.messages);
            const first = r.messages[0]?.seq;
            if (first !== undefined && first > from && r.more) return step(first);
            for (const m of got) if (m.seq >= from && m.seq <= to) this.deliverMsg(thread, st, m);
            this.drainThread(thread, st);
            done?.();
          },
          onErr: () => {
            // Open again: the resume logic starts over from st.last.
            if (this.threads.get(thread) === st && this.isOpen()) this.sendOpen(thread);
          },
          onLost: () => {},
          onTimeout: () => {
            if (this.threads.get(thread) === st && this.isOpen()) this.sendOpen(thread);
          },
        },
      );
    };
    step(to + 1);
  }

  private drainThread(thread: string, st: ThreadState): void {
    st.phase = "in";
    const buffered = st.buffer;
    st.buffer = [];
    for (const m of buffered) this.onMsg(thread, m);
  }

  private deliverMsg(thread: string, st: ThreadState, m: Message): void {
    if (st.last !== null && m.seq <= st.last) {
      this.stats.duplicatesDropped++;
      return;
    }
    st.last = m.seq;
    this.emit("msg", thread, m);
  }

  private onMsg(thread: string, m: Message): void {
    const st = this.threads.get(thread);
    if (!st || st.phase === "out") return;
    if (st.phase === "opening" || st.phase === "filling") {
      st.buffer.push(m);
      return;
    }
    if (st.last !== null && m.seq > st.last + 1) {
      this.emit(
        "error",
        new ChalktalkError("gap", `thread ${thread}: seq ${m.seq} after ${st.last}; fetching history`),
      );
      st.buffer.push(m);
      this.fillThread(thread, st, st.last + 1, m.seq - 1);
      return;
    }
    this.deliverMsg(thread, st, m);
  }

  // --- inbox ---------------------------------------------------------------------

  private onInbox(ev: InboxEvent): void {
    if (this.inboxLast !== null && ev.seq <= this.inboxLast) {
      this.stats.duplicatesDropped++;
      return;
    }
    if (this.inboxLast !== null && ev.seq > this.inboxLast + 1) {
      // The server replays at most 500 notices and has no way to ask for
      // more (PROTOCOL.md §15): report the hole and go on.
      this.emit(
        "error",
        new ChalktalkError("gap", `inbox: seq ${ev.seq} after ${this.inboxLast}; notices in between are lost`),
      );
    }
    this.inboxLast = ev.seq;
    this.emit("inbox", ev);
  }
}
