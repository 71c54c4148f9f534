// A fake WebSocket and a scriptable fake server for the unit tests. Frames
// cross it encoded (the client's bytes are decoded with the checked client
// decoder, the server's frames are encoded like the server does).
import {
  decodeClientFrame,
  encodeServerFrame,
  type ClientFrame,
  type ServerFrame,
  type WebSocketCtor,
  type WebSocketLike,
} from "../src/index.js";

export const LIMITS = {
  max_frame_bytes: 65536,
  max_points_per_batch: 256,
  max_points_per_stroke: 4096,
  max_text_bytes: 4000,
  max_label_bytes: 280,
  max_attachments: 10,
  frames_per_sec: 200,
  frame_burst: 400,
  max_members: 64,
  max_history_page: 200,
};

export class FakeSocket implements WebSocketLike {
  binaryType = "blob";
  readyState = 0;
  onopen: ((ev: unknown) => void) | null = null;
  onmessage: ((ev: { data: unknown }) => void) | null = null;
  onclose: ((ev: { code: number; reason: string }) => void) | null = null;
  onerror: ((ev: unknown) => void) | null = null;
  /** Every frame the client sent on this socket, decoded. */
  readonly sent: ClientFrame[] = [];
  closedByClient: { code?: number; reason?: string } | null = null;

  constructor(
    readonly server: FakeServer,
    readonly url: string,
    readonly protocols?: string | string[],
  ) {
    server.sockets.push(this);
    setTimeout(() => {
      if (server.refuse) return this.drop(1006, "refused");
      this.readyState = 1;
      this.onopen?.({});
    }, 1);
  }

  send(data: Uint8Array): void {
    if (this.readyState !== 1) throw new Error("not open");
    const f = decodeClientFrame(data);
    this.sent.push(f);
    this.server.handle(this, f);
  }

  close(code?: number, reason?: string): void {
    this.closedByClient = { code, reason };
    this.readyState = 3;
  }

  /** Server side: sends a frame to the client. */
  push(f: ServerFrame): void {
    this.pushBytes(encodeServerFrame(f));
  }

  pushBytes(b: Uint8Array): void {
    this.pushData(b.slice().buffer);
  }

  /** Queues a message for the client: delivered asynchronously, in order,
   * like a real socket (never inside the client's own send call). */
  pushData(data: unknown): void {
    this.queue.push(data);
    if (this.queue.length === 1) setTimeout(() => this.deliver(), 0);
  }

  private queue: unknown[] = [];

  private deliver(): void {
    const q = this.queue;
    this.queue = [];
    for (const data of q) {
      // As an ArrayBuffer, like a browser with binaryType "arraybuffer".
      if (this.readyState === 1) this.onmessage?.({ data });
    }
  }

  /** Resolves once everything pushed so far was delivered. */
  async flushed(): Promise<void> {
    while (this.queue.length) await new Promise((r) => setTimeout(r, 1));
  }

  /** Server side: the connection ends with this close code. */
  drop(code = 1006, reason = ""): void {
    this.readyState = 3;
    this.queue = [];
    this.onclose?.({ code, reason });
  }

  /** Messages of type t sent on this socket. */
  of<T extends ClientFrame["m"]["t"]>(t: T): (ClientFrame & { m: Extract<ClientFrame["m"], { t: T }> })[] {
    return this.sent.filter((f) => f.m.t === t) as never;
  }
}

export class FakeServer {
  readonly sockets: FakeSocket[] = [];
  refuse = false;
  heartbeatMs = 15000;
  /** Answer hello with welcome (or with this error code and close). */
  helloError: { code: string; close: number } | null = null;
  /** Answer ping with pong. */
  answerPing = true;
  /** Called for every frame after the built-in handling (hello, ping). */
  onFrame: (s: FakeSocket, f: ClientFrame) => void = () => {};
  readonly ctor: WebSocketCtor;

  constructor() {
    const server = this;
    this.ctor = class extends FakeSocket {
      constructor(url: string, protocols?: string | string[]) {
        super(server, url, protocols);
      }
    };
  }

  get last(): FakeSocket {
    const s = this.sockets[this.sockets.length - 1];
    if (!s) throw new Error("no socket yet");
    return s;
  }

  handle(s: FakeSocket, f: ClientFrame): void {
    if (f.m.t === "hello") {
      if (this.helloError) {
        s.push({ t: "err", id: f.id, code: this.helloError.code, msg: "refused" });
        const close = this.helloError.close;
        setTimeout(() => s.drop(close, this.helloError?.code ?? ""), 1);
        return;
      }
      s.push({
        t: "welcome",
        v: 1,
        session: `s-${this.sockets.length}`,
        user: "coach-1",
        role: "coach",
        heartbeat_ms: this.heartbeatMs,
        server_ms: Date.now(),
        limits: LIMITS,
      });
      return;
    }
    if (f.m.t === "ping" && this.answerPing) {
      s.push({ t: "ok", id: f.id, r: { t: "pong", server_ms: Date.now() } });
      return;
    }
    this.onFrame(s, f);
  }
}

export function roomEvent(seq: number, opId = `op-${seq}`): Extract<ServerFrame, { t: "room" }>["ev"] {
  return {
    seq,
    by: "coach-1",
    op_id: opId,
    at_ms: 1700000000000 + seq,
    op: { k: "delete", id: `a-${seq}` },
    target: null,
    effects: [{ k: "remove", id: `a-${seq}` }],
  };
}

export function snapshot(seq: number) {
  return {
    seq,
    video_id: "v-1",
    owner: "coach-1",
    aspect: 1.5,
    fps: 30,
    members: ["coach-1"],
    annotations: [],
    playback: { playing: false, position_ms: 0, rate: 1, at_server_ms: 0, leader: "coach-1" },
  };
}

export function message(seq: number) {
  return { seq, id: `m-${seq}`, from: "ana", at_ms: 1700000000000 + seq, text: `hi ${seq}`, attachments: [], reply_to: null };
}
