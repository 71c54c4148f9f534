// The wire types of protocol version 1 (docs/PROTOCOL.md §5, §6; the Rust
// definitions in protocol/src/). Field order in each struct below is the
// server's declaration order: it is what the encoder writes. Types are
// inferred from the schemas, and the schemas are checked against
// protocol/vectors.json byte for byte by the tests.

import {
  arr,
  bool,
  check,
  dflt,
  f32,
  f64,
  type Infer,
  int,
  oneOf,
  opt,
  skip,
  str,
  struct,
  tagged,
  tuple,
  uint,
} from "./schema.js";
import { decode, DecodeError, encodeWith } from "./msgpack.js";

export const PROTOCOL_VERSION = 1;
export const SUBPROTOCOL = "chalktalk.v1";

// --- enum-valued strings ---------------------------------------------------
export const RoleS = oneOf("coach", "athlete", "admin");
export const ActivityS = oneOf("watching", "drawing", "recording", "idle");
export const ThreadKindS = oneOf("direct", "group", "room");
export const MediaKindS = oneOf("video", "voice_over", "document");
export const MediaStageS = oneOf(
  "queued",
  "validating",
  "transcoding",
  "publishing",
  "ready",
  "failed",
  "cancelled",
);
export const ErrorCodeS = oneOf(
  "bad_frame",
  "unknown_type",
  "invalid",
  "invalid_coordinates",
  "too_many_points",
  "text_too_long",
  "hello_required",
  "unsupported_version",
  "unauthorized",
  "token_expired",
  "forbidden",
  "not_member",
  "not_found",
  "conflict",
  "rate_limited",
  "overloaded",
  "unavailable",
  "internal",
);

// --- annotations (annotation.rs) -------------------------------------------
/** `[x, y]`, normalized frame coordinates in 0..=1, float32 on the wire. */
export const PointS = tuple(f32, f32);
export const TimeRangeS = struct({ from_ms: uint, to_ms: uint });
export const DEFAULT_STYLE = { color: 0xff3b30ff, width: 0.004 };
export const StyleS = struct({ color: uint, width: f32 });
export const ShapeS = tagged("k", {
  stroke: { points: arr(PointS) },
  line: { a: PointS, b: PointS },
  arrow: { a: PointS, b: PointS },
  ellipse: { c: PointS, rx: f32, ry: f32 },
  rect: { a: PointS, b: PointS },
  angle: { a: PointS, v: PointS, b: PointS, deg: f32 },
  voice_over: { asset: str },
  text: { at: PointS, text: str, size: f32 },
});
export const AnnotationS = struct({
  id: str,
  author: dflt(str, () => ""),
  t_ms: uint,
  dur_ms: opt(uint),
  style: dflt(StyleS, () => ({ ...DEFAULT_STYLE })),
  shape: ShapeS,
});

// --- rooms (room.rs, stroke.rs) --------------------------------------------
export const RoomOpS = tagged("k", {
  add: { ann: AnnotationS },
  update: { ann: AnnotationS },
  delete: { id: str },
  undo: {},
  redo: {},
  clear: { range: opt(TimeRangeS) },
  play: { position_ms: f64 },
  pause: { position_ms: f64 },
  seek: { position_ms: f64 },
  rate: { rate: f32 },
  step: { frames: int },
  hand_over: { to: str },
  invite: { user: str },
  leave: {},
  remove: { user: str },
});
export const PlaybackStateS = struct({
  playing: bool,
  position_ms: f64,
  rate: f32,
  at_server_ms: uint,
  leader: str,
});
export const EffectS = tagged("k", {
  put: { ann: AnnotationS },
  remove: { id: str },
  playback: { state: PlaybackStateS },
  member: { user: str },
  unmember: { user: str },
});
export const RoomEventS = struct({
  seq: uint,
  by: str,
  op_id: str,
  at_ms: uint,
  op: RoomOpS,
  target: opt(uint),
  effects: arr(EffectS),
});
export const PresenceEntryS = struct({
  user: str,
  device: str,
  activity: ActivityS,
  connected: bool,
});
export const LiveEventS = tagged("k", {
  points: {
    user: str,
    stroke: str,
    batch: uint,
    t_ms: uint,
    style: StyleS,
    points: arr(PointS),
  },
  pointer: { user: str, at: opt(PointS) },
  presence: { members: arr(PresenceEntryS) },
});
export const RoomSnapshotS = struct({
  seq: uint,
  video_id: str,
  owner: str,
  aspect: f32,
  fps: f32,
  members: arr(str),
  annotations: arr(AnnotationS),
  playback: PlaybackStateS,
});
export const JoinModeS = tagged("k", {
  replay: { since: uint, head: uint },
  snapshot: { snapshot: RoomSnapshotS },
  paged: { snapshot: RoomSnapshotS, annotations: uint, pages: uint },
});

// --- chat (chat.rs) ---------------------------------------------------------
export const AttachmentS = struct({
  kind: oneOf("video", "image", "audio", "file", "review"),
  ref_id: str,
  name: opt(str),
});
export const MsgEditS = tagged("k", {
  edit: { of: uint },
  delete: { of: uint },
});
export const MessageS = struct({
  seq: uint,
  id: str,
  from: str,
  at_ms: uint,
  text: str,
  attachments: dflt(arr(AttachmentS), () => []),
  reply_to: opt(uint),
  edit: opt(MsgEditS),
});
export const CursorS = struct({ user: str, delivered: uint, read: uint });
export const ThreadInfoS = struct({
  id: str,
  kind: ThreadKindS,
  title: opt(str),
  created_by: str,
  members: arr(str),
  head: uint,
  room: skip(str),
});
export const ThreadLiveS = tagged("k", {
  typing: { user: str, on: bool },
  cursor: { cursor: CursorS },
});

// --- media (media.rs) -------------------------------------------------------
export const RenditionS = struct({
  name: str,
  width: uint,
  height: uint,
  video_kbps: uint,
  mp4: str,
  playlist: str,
  copied: bool,
});
export const MediaInfoS = struct({
  duration_ms: uint,
  width: uint,
  height: uint,
  fps: f32,
  rotation: uint,
  renditions: arr(RenditionS),
  master: opt(str),
  poster: opt(str),
  sprite: opt(str),
  sprite_vtt: opt(str),
  proxy: opt(str),
  audio: opt(str),
  loudness_lufs: opt(f32),
  file: skip(str),
  mime: skip(str),
});
export const MediaFailureS = struct({ code: str, message: str });
export const AssetS = struct({
  id: str,
  kind: MediaKindS,
  owner: str,
  stage: MediaStageS,
  filename: str,
  size: uint,
  created_ms: uint,
  room: opt(str),
  at_ms: opt(f64),
  info: opt(MediaInfoS),
  error: opt(MediaFailureS),
});
const mediaProgressFields = {
  asset: str,
  kind: MediaKindS,
  stage: MediaStageS,
  percent: f32,
  playable: bool,
  info: opt(MediaInfoS),
  error: opt(MediaFailureS),
};

// --- limits (limits.rs) -----------------------------------------------------
export const LimitsS = struct({
  max_frame_bytes: uint,
  max_points_per_batch: uint,
  max_points_per_stroke: uint,
  max_text_bytes: uint,
  max_label_bytes: uint,
  max_attachments: uint,
  frames_per_sec: uint,
  frame_burst: uint,
  max_members: uint,
  max_history_page: uint,
});

// --- client messages (frame.rs ClientMsg) -----------------------------------
export const ClientMsgS = tagged("t", {
  hello: { v: arr(uint), token: opt(str), device: str, inbox_since: opt(uint) },
  ping: {},
  media_link: { asset: str },
  cancel_media: { asset: str },
  create_room: { video_id: str, aspect: opt(f32), fps: opt(f32) },
  join_room: { room: str, since: opt(uint) },
  leave_room: { room: str },
  snapshot_page: { room: str, seq: uint, page: uint },
  activity: { room: str, activity: ActivityS },
  points: {
    room: str,
    stroke: str,
    batch: uint,
    t_ms: uint,
    style: dflt(StyleS, () => ({ ...DEFAULT_STYLE })),
    points: arr(PointS),
  },
  pointer: { room: str, at: opt(PointS) },
  op: { room: str, op_id: str, op: RoomOpS },
  create_thread: { kind: ThreadKindS, members: arr(str), title: opt(str) },
  room_thread: { room: str },
  open_thread: { thread: str, since: opt(uint) },
  close_thread: { thread: str },
  send: {
    thread: str,
    msg_id: str,
    text: str,
    attachments: dflt(arr(AttachmentS), () => []),
    reply_to: opt(uint),
  },
  edit_message: { thread: str, msg_id: str, of: uint, text: str },
  delete_message: { thread: str, msg_id: str, of: uint },
  typing: { thread: str, on: bool },
  mark: { thread: str, delivered: opt(uint), read: opt(uint) },
  history: { thread: str, before: opt(uint), limit: uint },
  debug_panic: { room: str },
});
export const ClientFrameS = struct({ id: uint, m: ClientMsgS });

// --- replies and server frames (frame.rs Reply, ServerFrame) ---------------
export const ReplyS = tagged("t", {
  done: {},
  media_link: { asset: AssetS, base: opt(str), expires_ms: uint },
  pong: { server_ms: uint },
  room_created: { room: str },
  joined: { room: str, mode: JoinModeS, presence: arr(PresenceEntryS) },
  snapshot_page: {
    room: str,
    seq: uint,
    page: uint,
    pages: uint,
    annotations: arr(AnnotationS),
  },
  ack: { seq: uint, dup: bool },
  thread_created: { thread: ThreadInfoS },
  thread_opened: { thread: ThreadInfoS, since: uint, cursors: arr(CursorS) },
  history: { messages: arr(MessageS), more: bool },
});
export const NoticeS = tagged("k", {
  invited: { room: str, video_id: str, by: str },
  media: { asset: str, kind: MediaKindS, stage: MediaStageS, error: opt(MediaFailureS) },
  added_to_thread: { thread: str, by: str },
  new_message: { thread: str, seq: uint, from: str, preview: str },
  removed: { room: str, by: str },
});
export const ServerFrameS = tagged("t", {
  welcome: {
    v: uint,
    session: str,
    user: str,
    role: RoleS,
    heartbeat_ms: uint,
    server_ms: uint,
    limits: LimitsS,
  },
  ok: { id: uint, r: ReplyS },
  err: { id: uint, code: str, msg: str },
  room: { room: str, ev: RoomEventS },
  live: { room: str, ev: LiveEventS },
  msg: { thread: str, msg: MessageS },
  thread_live: { thread: str, ev: ThreadLiveS },
  inbox: { seq: uint, at_ms: uint, notice: NoticeS },
  media: mediaProgressFields,
  resync: { room: str, reason: str },
});

// --- the types --------------------------------------------------------------
export type Role = Infer<typeof RoleS>;
export type Activity = Infer<typeof ActivityS>;
export type ThreadKind = Infer<typeof ThreadKindS>;
export type MediaKind = Infer<typeof MediaKindS>;
export type MediaStage = Infer<typeof MediaStageS>;
export type ErrorCode = Infer<typeof ErrorCodeS>;
export type Point = Infer<typeof PointS>;
export type TimeRange = Infer<typeof TimeRangeS>;
export type Style = Infer<typeof StyleS>;
export type Shape = Infer<typeof ShapeS>;
export type Annotation = Infer<typeof AnnotationS>;
export type RoomOp = Infer<typeof RoomOpS>;
export type PlaybackState = Infer<typeof PlaybackStateS>;
export type Effect = Infer<typeof EffectS>;
export type RoomEvent = Infer<typeof RoomEventS>;
export type PresenceEntry = Infer<typeof PresenceEntryS>;
export type LiveEvent = Infer<typeof LiveEventS>;
export type RoomSnapshot = Infer<typeof RoomSnapshotS>;
export type JoinMode = Infer<typeof JoinModeS>;
export type Attachment = Infer<typeof AttachmentS>;
export type Message = Infer<typeof MessageS>;
export type MsgEdit = Infer<typeof MsgEditS>;
export type Cursor = Infer<typeof CursorS>;
export type ThreadInfo = Infer<typeof ThreadInfoS>;
export type ThreadLive = Infer<typeof ThreadLiveS>;
export type Rendition = Infer<typeof RenditionS>;
export type MediaInfo = Infer<typeof MediaInfoS>;
export type MediaFailure = Infer<typeof MediaFailureS>;
export type Asset = Infer<typeof AssetS>;
export type Limits = Infer<typeof LimitsS>;
export type ClientMsg = Infer<typeof ClientMsgS>;
export type ClientFrame = Infer<typeof ClientFrameS>;
export type Reply = Infer<typeof ReplyS>;
export type Notice = Infer<typeof NoticeS>;
export type ServerFrame = Infer<typeof ServerFrameS>;

/** One server frame variant by its tag, e.g. `Frame<"room">`. */
export type Frame<T extends ServerFrame["t"]> = Extract<ServerFrame, { t: T }>;
/** One client message variant by its tag, e.g. `Msg<"op">`. */
export type Msg<T extends ClientMsg["t"]> = Extract<ClientMsg, { t: T }>;
/** One reply variant by its tag, e.g. `ReplyOf<"ack">`. */
export type ReplyOf<T extends Reply["t"]> = Extract<Reply, { t: T }>;
export type Welcome = Frame<"welcome">;
export type MediaProgress = Frame<"media">;
export type InboxEvent = Frame<"inbox">;

/** Close codes (§11). */
export const CloseCode = {
  NORMAL: 1000,
  GOING_AWAY: 1001,
  ABNORMAL: 1006,
  TOO_BIG: 1009,
  INTERNAL: 1011,
  HELLO_REQUIRED: 4000,
  UNAUTHORIZED: 4001,
  TOKEN_EXPIRED: 4002,
  UNSUPPORTED_VERSION: 4003,
  SLOW_CONSUMER: 4008,
  FLOOD: 4009,
  IDLE: 4010,
} as const;

// --- encoding and decoding --------------------------------------------------
export function encodeClientFrame(frame: ClientFrame): Uint8Array {
  return encodeWith(ClientFrameS, frame);
}

/** The server's encoding of a frame (for tests, fakes and tools). */
export function encodeServerFrame(frame: ServerFrame): Uint8Array {
  return encodeWith(ServerFrameS, frame);
}

/** Decodes and checks a server frame. Throws DecodeError with the first
 * problems found when the bytes are not a well-formed frame of a known type. */
export function decodeServerFrame(bytes: Uint8Array): ServerFrame {
  const v = decode(bytes);
  const problems = check(ServerFrameS, v);
  if (problems.length) {
    throw new DecodeError(`not a valid server frame: ${problems.slice(0, 3).join("; ")}`);
  }
  return v as ServerFrame;
}

/** Decodes and checks a client frame (for fakes and tools). */
export function decodeClientFrame(bytes: Uint8Array): ClientFrame {
  const v = decode(bytes);
  const problems = check(ClientFrameS, v);
  if (problems.length) {
    throw new DecodeError(`not a valid client frame: ${problems.slice(0, 3).join("; ")}`);
  }
  return v as ClientFrame;
}

/** `valid_id` of the protocol: 1-64 bytes of `[A-Za-z0-9_.:@-]`. */
export function validId(s: string): boolean {
  return /^[A-Za-z0-9_.:@-]{1,64}$/.test(s);
}
