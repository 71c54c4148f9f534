// Shared by the tests: paths, hex, HS256 tokens.
import { createHmac } from "node:crypto";
import { existsSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

/** The repository root: the nearest ancestor holding protocol/vectors.json. */
export function repoRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    if (existsSync(join(dir, "protocol", "vectors.json"))) return dir;
    const up = resolve(dir, "..");
    if (up === dir) throw new Error("protocol/vectors.json not found above the test");
    dir = up;
  }
}

export function hex(b: Uint8Array): string {
  return Buffer.from(b).toString("hex");
}

export function fromHex(s: string): Uint8Array {
  return new Uint8Array(Buffer.from(s, "hex"));
}

const b64url = (b: Buffer | string) => Buffer.from(b).toString("base64url");

/** An access token as PROTOCOL.md §2 describes it (HS256, iss = aud =
 * "chalktalk"), signed with `secret`. */
export function signToken(
  secret: string,
  sub: string,
  role: "coach" | "athlete" | "admin",
  ttlSec = 900,
  nowSec = Math.floor(Date.now() / 1000),
): string {
  const header = b64url(JSON.stringify({ alg: "HS256", typ: "JWT" }));
  const claims = b64url(
    JSON.stringify({ sub, role, iat: nowSec, exp: nowSec + ttlSec, iss: "chalktalk", aud: "chalktalk" }),
  );
  const sig = b64url(createHmac("sha256", secret).update(`${header}.${claims}`).digest());
  return `${header}.${claims}.${sig}`;
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Waits until `cond()` is true, polling; throws with `what` after `ms`. */
export async function until(cond: () => boolean, what: string, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(5);
  }
}
