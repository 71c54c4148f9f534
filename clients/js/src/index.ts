// @chalktalk/client: the TypeScript client of the chalktalk protocol.
export * from "./protocol.js";
export { ChalktalkClient, ChalktalkError, tokenExpiryMs } from "./client.js";
export type {
  ClientEvents,
  ClientOptions,
  ConnState,
  ErrorKind,
  JoinResult,
  WebSocketCtor,
  WebSocketLike,
} from "./client.js";
export { backoffDelay, DEFAULT_BACKOFF, type BackoffOptions } from "./backoff.js";
export { decode, encodeWith, DecodeError, EncodeError } from "./msgpack.js";
export { check, type Infer, type Schema } from "./schema.js";
