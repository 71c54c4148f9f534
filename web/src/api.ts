// REST side of the app: sign-up/in (TOTP), tokens kept in localStorage
// with ONE refresh in flight at a time (refresh tokens rotate and a reused
// one revokes the whole session), JSON calls with clear errors, and the
// resumable upload loop (docs/PROTOCOL.md, "Accounts and sessions" and
// "HTTP uploads and media links").

export class ApiError extends Error {
  constructor(
    public status: number,
    public code: string,
    message: string,
    public body: Record<string, unknown> = {},
  ) {
    super(message);
  }
}

export interface Tokens {
  access_token: string;
  refresh_token: string;
  expires_in: number;
  session: string;
  mfa: "ok" | "enrollment_required";
}

export interface Me {
  id: string;
  email: string;
  role: "coach" | "athlete" | "admin";
  plan: string;
  mfa: { enabled: boolean; required: boolean; pending: boolean };
}

const KEY = "chalktalk.auth";

export function deviceId(): string {
  let d = localStorage.getItem("chalktalk.device");
  if (!d) {
    const b = new Uint8Array(6);
    crypto.getRandomValues(b);
    d = "web-" + Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
    localStorage.setItem("chalktalk.device", d);
  }
  return d;
}

export function loadTokens(): Tokens | null {
  try {
    const t = JSON.parse(localStorage.getItem(KEY) ?? "null");
    return t && typeof t.access_token === "string" ? t : null;
  } catch {
    return null;
  }
}

export function saveTokens(t: Tokens | null): void {
  if (t) localStorage.setItem(KEY, JSON.stringify(t));
  else localStorage.removeItem(KEY);
}

/** A readable message for an error of any kind. */
export function describe(e: unknown): string {
  if (e instanceof ApiError) {
    const fields = e.body.fields as Record<string, string> | undefined;
    const extra = fields
      ? " (" + Object.entries(fields).map(([k, v]) => `${k}: ${v}`).join(", ") + ")"
      : "";
    return e.message + extra;
  }
  if (e && typeof e === "object" && "message" in e) {
    const m = String((e as { message: unknown }).message);
    const kind = (e as { kind?: string; code?: string }).code ?? (e as { kind?: string }).kind;
    return kind ? `${m} (${kind})` : m;
  }
  return String(e);
}

async function parse(res: Response): Promise<unknown> {
  const text = await res.text();
  let body: unknown = null;
  if (text) {
    try {
      body = JSON.parse(text);
    } catch {
      body = { message: text.slice(0, 200) };
    }
  }
  if (!res.ok) {
    const b = (body ?? {}) as Record<string, unknown>;
    const code = typeof b.error === "string" ? b.error : `http_${res.status}`;
    const msg =
      typeof b.message === "string" && b.message ? b.message : `${res.status} ${res.statusText}`;
    throw new ApiError(res.status, code, msg, b);
  }
  return body;
}

async function raw(method: string, path: string, body?: unknown, token?: string): Promise<unknown> {
  const headers: Record<string, string> = {};
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (token) headers.Authorization = `Bearer ${token}`;
  let res: Response;
  try {
    res = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch {
    throw new ApiError(0, "network", "the server cannot be reached (network error)");
  }
  return parse(res);
}

export class Session {
  tokens: Tokens | null = loadTokens();
  private refreshing: Promise<string> | null = null;
  /** Called when the session is gone (refresh refused): sign in again. */
  onSignedOut: () => void = () => {};

  get signedIn(): boolean {
    return this.tokens !== null;
  }

  set(t: Tokens | null): void {
    this.tokens = t;
    saveTokens(t);
  }

  /** A fresh access token; one refresh at a time for the whole page. */
  refresh(): Promise<string> {
    if (!this.refreshing) {
      const rt = this.tokens?.refresh_token;
      this.refreshing = (async () => {
        if (!rt) throw new ApiError(401, "unauthorized", "not signed in");
        try {
          const t = checkTokens(await raw("POST", "/api/v1/auth/refresh", { refresh_token: rt }));
          this.set(t);
          return t.access_token;
        } catch (e) {
          if (e instanceof ApiError && e.status === 401) {
            this.set(null);
            this.onSignedOut();
          }
          throw e;
        }
      })().finally(() => {
        this.refreshing = null;
      });
    }
    return this.refreshing;
  }

  async access(): Promise<string> {
    if (!this.tokens) throw new ApiError(401, "unauthorized", "not signed in");
    return this.tokens.access_token;
  }

  /** An authenticated JSON call; an expired token is refreshed once. */
  async call<T>(method: string, path: string, body?: unknown): Promise<T> {
    try {
      return (await raw(method, path, body, await this.access())) as T;
    } catch (e) {
      if (e instanceof ApiError && e.code === "token_expired") {
        return (await raw(method, path, body, await this.refresh())) as T;
      }
      throw e;
    }
  }

  async signOut(): Promise<void> {
    try {
      if (this.tokens) await raw("POST", "/api/v1/auth/logout", undefined, this.tokens.access_token);
    } catch {
      // signed out locally anyway
    }
    this.set(null);
  }
}

export type SignIn =
  | { kind: "tokens"; tokens: Tokens }
  | { kind: "mfa"; challenge: string };

export async function signIn(email: string, password: string): Promise<SignIn> {
  const r = (await raw("POST", "/api/v1/auth/signin", {
    email,
    password,
    device: deviceId(),
  })) as Record<string, unknown>;
  if (r?.mfa === "required" && typeof r.challenge === "string") return { kind: "mfa", challenge: r.challenge };
  return { kind: "tokens", tokens: checkTokens(r) };
}

function checkTokens(r: unknown): Tokens {
  const t = r as Tokens | null;
  if (!t || typeof t.access_token !== "string" || typeof t.refresh_token !== "string") {
    throw new ApiError(0, "bad_answer", "the server's answer to sign-in was not understood");
  }
  return t;
}

export async function signInMfa(challenge: string, code: string): Promise<Tokens> {
  const body = /^\d{6}$/.test(code)
    ? { challenge, code, device: deviceId() }
    : { challenge, recovery_code: code, device: deviceId() };
  return checkTokens(await raw("POST", "/api/v1/auth/mfa", body));
}

export async function register(email: string, password: string, role: string): Promise<void> {
  await raw("POST", "/api/v1/auth/register", { email, password, role });
}

// --- uploads ---------------------------------------------------------------

export interface UploadProgress {
  sent: number;
  size: number;
}

function xhrPatch(
  url: string,
  token: string,
  offset: number,
  chunk: Blob,
  onProgress: (loaded: number) => void,
): Promise<{ status: number; text: string; offset: number | null }> {
  return new Promise((resolve, reject) => {
    const x = new XMLHttpRequest();
    x.open("PATCH", url);
    x.setRequestHeader("Authorization", `Bearer ${token}`);
    x.setRequestHeader("Upload-Offset", String(offset));
    x.setRequestHeader("Content-Type", "application/offset+octet-stream");
    x.upload.onprogress = (e) => onProgress(e.loaded);
    x.onload = () => {
      const o = x.getResponseHeader("Upload-Offset");
      resolve({ status: x.status, text: x.responseText, offset: o === null ? null : Number(o) });
    };
    x.onerror = () => reject(new ApiError(0, "network", "network error during upload"));
    x.ontimeout = () => reject(new ApiError(0, "network", "upload timed out"));
    x.send(chunk);
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Uploads `file` as a video with the resumable routes: chunks with upload
 * progress, resumed from the server's offset (HEAD) after a network drop.
 * Resolves with the Asset JSON of the completion. */
export function uploadVideo(
  s: Session,
  file: File,
  onProgress: (p: UploadProgress) => void,
): Promise<Record<string, unknown>> {
  return uploadFile(s, file, { kind: "video", filename: file.name || "video.mp4" }, onProgress);
}

/** What an upload is: a video, or a voice-over for `room` starting at
 * `at_ms` of its video (PROTOCOL.md, "Voice-overs"). */
export type UploadMeta =
  | { kind: "video"; filename: string }
  | { kind: "voice_over"; filename: string; room: string; at_ms: number };

/** The resumable upload loop for any kind of file. */
export async function uploadFile(
  s: Session,
  file: Blob,
  meta: UploadMeta,
  onProgress: (p: UploadProgress) => void,
): Promise<Record<string, unknown>> {
  const created = await s.call<{ id: string; offset: number; size: number; max_chunk_bytes: number }>(
    "POST",
    "/api/v1/uploads",
    {
      ...meta,
      size: file.size,
      content_type: file.type || "application/octet-stream",
    },
  );
  const url = `/api/v1/uploads/${created.id}`;
  // 4 MiB chunks (at most the server's), or a smaller size set in
  // localStorage (`chalktalk.uploadChunkBytes`, for slow links and tests).
  const forced = Number(localStorage.getItem("chalktalk.uploadChunkBytes")) || 0;
  const chunkSize = Math.min(created.max_chunk_bytes || 4 << 20, forced > 0 ? forced : 4 << 20);
  let offset = created.offset;
  let failures = 0;
  onProgress({ sent: offset, size: file.size });
  for (;;) {
    const end = Math.min(offset + chunkSize, file.size);
    try {
      const token = await s.access();
      const r = await xhrPatch(url, token, offset, file.slice(offset, end), (loaded) =>
        onProgress({ sent: offset + loaded, size: file.size }),
      );
      if (r.status === 204 && r.offset !== null) {
        offset = r.offset;
        failures = 0;
        onProgress({ sent: offset, size: file.size });
        continue;
      }
      if (r.status === 200) {
        onProgress({ sent: file.size, size: file.size });
        return JSON.parse(r.text);
      }
      let body: Record<string, unknown> = {};
      try {
        body = JSON.parse(r.text);
      } catch {
        // not JSON
      }
      const code = String(body.error ?? `http_${r.status}`);
      if (code === "token_expired") {
        await s.refresh();
        continue;
      }
      if (code === "offset_mismatch" && typeof body.offset === "number") {
        offset = body.offset;
        continue;
      }
      if (r.status === 409 || r.status >= 500) throw new ApiError(r.status, code, String(body.message ?? code), body);
      throw new ApiError(r.status, code, String(body.message ?? `upload refused (${r.status})`), body);
    } catch (e) {
      if (e instanceof ApiError && e.status >= 400 && e.status < 500 && e.status !== 409) throw e;
      failures += 1;
      if (failures > 8) throw e;
      await sleep(Math.min(500 * 2 ** failures, 10_000));
      // Where did the server get to? (HEAD: the stored offset.)
      try {
        const token = await s.access();
        const h = await fetch(url, { method: "HEAD", headers: { Authorization: `Bearer ${token}` } });
        const o = h.headers.get("Upload-Offset");
        if (h.ok && o !== null) offset = Number(o);
      } catch {
        // still offline: try again
      }
    }
  }
}
