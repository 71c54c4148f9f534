// Test harness of the browser tests: a real `chalktalk serve` on 127.0.0.1
// (temp data dir, the built app from web/dist), a loopback TCP proxy that
// can cut one browser's network (Chromium's offline emulation leaves open
// WebSockets alone), headless Debian Chromium through playwright-core, TOTP
// codes, and canvas pixel probes.
//
// The binary: $CHALKTALK_BIN, else $CARGO_TARGET_DIR/debug/chalktalk, else
// target/debug/chalktalk of the repository; `chalktalk-media` must be
// beside it (uploads are processed by it). Missing: the tests fail when CI
// is set, and are skipped otherwise. Chromium: $CHROMIUM_PATH, else
// /usr/bin/chromium.

import { spawn, execFileSync } from "node:child_process";
import { createHmac } from "node:crypto";
import { existsSync, mkdirSync, mkdtempSync, rmSync } from "node:fs";
import net from "node:net";
import { tmpdir } from "node:os";
import { dirname, isAbsolute, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

export const webDir = resolve(dirname(fileURLToPath(import.meta.url)), "..");
export const repoRoot = resolve(webDir, "..");
export const artifacts = join(webDir, "test-artifacts");

export function findBinary() {
  const target = process.env.CARGO_TARGET_DIR;
  const candidates = [
    process.env.CHALKTALK_BIN,
    target && join(isAbsolute(target) ? target : resolve(repoRoot, target), "debug", "chalktalk"),
    join(repoRoot, "target", "debug", "chalktalk"),
  ].filter(Boolean);
  for (const c of candidates) if (existsSync(c)) return c;
  return null;
}

export const chromiumPath = process.env.CHROMIUM_PATH || "/usr/bin/chromium";

/** Why the tests cannot run here (null: they can). */
export function missing() {
  const bin = findBinary();
  if (!bin) return "no chalktalk binary (build it with `cargo build -p chalktalk -p chalktalk-media` or set CHALKTALK_BIN)";
  if (!existsSync(join(dirname(bin), "chalktalk-media"))) return `no chalktalk-media beside ${bin}`;
  if (!existsSync(chromiumPath)) return `no Chromium at ${chromiumPath} (scripts/install-deps.sh --test installs it)`;
  if (!existsSync(join(webDir, "dist", "index.html"))) return "web/dist is not built (npm run build)";
  return null;
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

export function freePort() {
  return new Promise((res, rej) => {
    const s = net.createServer();
    s.on("error", rej);
    s.listen(0, "127.0.0.1", () => {
      const port = s.address().port;
      s.close(() => res(port));
    });
  });
}

async function waitForPort(port, child, ms = 30_000) {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (child.exitCode !== null) throw new Error(`chalktalk serve exited with ${child.exitCode}`);
    const ok = await new Promise((res) => {
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

/** Starts `chalktalk serve`; returns {base, port, dir, stop, log}
 * (`stop` is async). */
export async function startServer() {
  const bin = findBinary();
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), "chalktalk-web-e2e-"));
  let log = "";
  const child = spawn(bin, ["serve"], {
    env: {
      ...process.env,
      CHALKTALK_LISTEN: `127.0.0.1:${port}`,
      CHALKTALK_DATA_DIR: dir,
      CHALKTALK_WEB_DIR: join(webDir, "dist"),
      CHALKTALK_JWT_SECRET: JWT_SECRET,
      CHALKTALK_LOG: "warn",
      CHALKTALK_PRESENCE_GRACE_MS: "2000",
    },
    stdio: ["ignore", "ignore", "pipe"],
  });
  child.stderr.on("data", (d) => {
    log = (log + d.toString()).slice(-8000);
  });
  await waitForPort(port, child);
  return {
    base: `http://127.0.0.1:${port}`,
    port,
    dir,
    log: () => log,
    /** Stops the server (SIGTERM, SIGKILL after 5 s), then removes its data
     * dir, retrying while a media worker it started may still be writing. */
    async stop() {
      if (child.exitCode === null) {
        const exited = new Promise((res) => child.once("exit", res));
        child.kill("SIGTERM");
        const t = setTimeout(() => child.kill("SIGKILL"), 5000);
        await exited;
        clearTimeout(t);
      }
      rmSync(dir, { recursive: true, force: true, maxRetries: 10, retryDelay: 200 });
    },
  };
}

export const JWT_SECRET = "web-e2e-secret-web-e2e-secret-0123456";

/** An access token minted by `chalktalk token` with the test server's
 * secret (e.g. a dev admin for the admin routes). */
export function devToken(user, role) {
  return execFileSync(findBinary(), ["token", "--user", user, "--role", role], {
    env: { ...process.env, CHALKTALK_JWT_SECRET: JWT_SECRET },
  })
    .toString()
    .trim();
}

/** A short H.264/AAC clip made by the repository's own tool. */
export function makeClip(dir, seconds = 6, width = 640, height = 360, rotation = 0) {
  const bin = findBinary();
  const out = join(dir, `clip-${width}x${height}${rotation ? `-r${rotation}` : ""}.mp4`);
  execFileSync(join(dirname(bin), "chalktalk-media"), [
    "sample", "--out", out, "--seconds", String(seconds), "--width", String(width), "--height", String(height),
    "--rotation", String(rotation),
  ]);
  return out;
}

/** A loopback TCP proxy: `cut()` drops every open link (no close frames:
 * what a lost network looks like) and `block` refuses new ones. */
export class Proxy {
  constructor(target) {
    this.target = target;
    this.links = new Set();
    this.block = false;
    this.server = net.createServer((client) => {
      if (this.block) return void client.destroy();
      const up = net.connect(this.target, "127.0.0.1");
      up.setNoDelay(true);
      client.setNoDelay(true);
      this.links.add(client);
      this.links.add(up);
      const drop = () => {
        client.destroy();
        up.destroy();
        this.links.delete(client);
        this.links.delete(up);
      };
      client.on("error", drop).on("close", drop);
      up.on("error", drop).on("close", drop);
      client.pipe(up);
      up.pipe(client);
    });
  }
  listen() {
    return new Promise((res) =>
      this.server.listen(0, "127.0.0.1", () => {
        this.port = this.server.address().port;
        res(this.port);
      }),
    );
  }
  cut() {
    for (const s of this.links) s.destroy();
    this.links.clear();
  }
  close() {
    this.cut();
    this.server.close();
  }
}

/** Headless Chromium with the project's flags, plus `extra` (e.g. the
 * fake microphone: --use-fake-device-for-media-stream
 * --use-fake-ui-for-media-stream). */
export async function launch(extra = []) {
  const { chromium } = await import("playwright-core");
  mkdirSync(artifacts, { recursive: true });
  return chromium.launch({
    executablePath: chromiumPath,
    headless: true,
    // playwright-core gives each launch a fresh temporary profile
    // (--user-data-dir) of its own.
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-background-networking",
      "--disable-component-update",
      "--no-first-run",
      "--disable-quic",
      "--disable-sync",
      "--autoplay-policy=no-user-gesture-required",
      ...extra,
    ],
  });
}

function base32(s) {
  const alpha = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
  let bits = 0;
  let value = 0;
  const out = [];
  for (const ch of s.replace(/=+$/, "").toUpperCase()) {
    const i = alpha.indexOf(ch);
    if (i < 0) continue;
    value = (value << 5) | i;
    bits += 5;
    if (bits >= 8) {
      out.push((value >>> (bits - 8)) & 255);
      bits -= 8;
    }
  }
  return Buffer.from(out);
}

/** RFC 6238 (SHA-1, 6 digits, 30 s) for `secret` (base32), `step` steps from now. */
export function totp(secret, step = 0) {
  const counter = Math.floor(Date.now() / 30_000) + step;
  const msg = Buffer.alloc(8);
  msg.writeBigUInt64BE(BigInt(counter));
  const mac = createHmac("sha1", base32(secret)).update(msg).digest();
  const o = mac[mac.length - 1] & 15;
  const n = ((mac.readUInt32BE(o) & 0x7fffffff) % 1_000_000).toString();
  return n.padStart(6, "0");
}

/** In the page: how many pixels of the overlay canvas within `r` canvas
 * pixels of the normalized point (x, y) match `kind` (`red`: the default
 * pen colour; `white`: label text). */
export function probe(page, x, y, kind = "red", r = 4) {
  return page.evaluate(
    ([x, y, kind, r]) => {
      const c = document.querySelector('[data-testid="overlay"]');
      if (!c) return -1;
      const ctx = c.getContext("2d");
      const cx = Math.round(x * c.width);
      const cy = Math.round(y * c.height);
      const x0 = Math.max(0, cx - r);
      const y0 = Math.max(0, cy - r);
      const d = ctx.getImageData(x0, y0, 2 * r + 1, 2 * r + 1).data;
      let n = 0;
      for (let i = 0; i < d.length; i += 4) {
        const [R, G, B, A] = [d[i], d[i + 1], d[i + 2], d[i + 3]];
        if (kind === "red" ? A > 150 && R > 180 && G < 120 && B < 120 : A > 150 && R > 200 && G > 200 && B > 200) n++;
      }
      return n;
    },
    [x, y, kind, r],
  );
}

/** Waits until `fn()` is truthy (polls). */
export async function until(what, fn, ms = 10_000, every = 25) {
  const end = Date.now() + ms;
  let last;
  while (Date.now() < end) {
    last = await fn();
    if (last) return last;
    await sleep(every);
  }
  throw new Error(`timed out after ${ms} ms waiting for ${what} (last: ${JSON.stringify(last)})`);
}
