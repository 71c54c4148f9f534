// The operators' dashboard (`/ops`, served by every node) in real headless
// Chromium against three `chalktalk serve` processes forming a cluster on
// 127.0.0.1: it shows the three nodes up, shows one going down within the
// heartbeat timeout after SIGSTOP and coming back after SIGCONT (live, no
// reload), tells where a room lives, and refuses a non-admin.

import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn, execFileSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

import { createRequire } from "node:module";

import { findBinary, freePort, launch, missing, sleep, artifacts, repoRoot } from "./harness.mjs";

// The TypeScript client, built by its own tests (scripts/test.sh runs them
// first), and the `ws` package it is tested with.
const clientPkg = join(repoRoot, "clients", "js");
const { ChalktalkClient } = await import(join(clientPkg, "dist", "src", "index.js"));
const WebSocket = createRequire(join(clientPkg, "package.json"))("ws");

const why = missing();
const skip = why && !process.env.CI ? why : false;
if (why && process.env.CI) throw new Error(`browser tests cannot run: ${why}`);

const SECRET = "ops-e2e-secret-ops-e2e-secret-012345";
const COOKIE = "ops-e2e-cluster-cookie";

async function waitHttp(port, child) {
  for (let i = 0; i < 600; i++) {
    if (child.exitCode !== null) throw new Error(`node exited with ${child.exitCode}`);
    try {
      const r = await fetch(`http://127.0.0.1:${port}/health`);
      if (r.ok) return;
    } catch {}
    await sleep(50);
  }
  throw new Error(`node on ${port} did not answer /health`);
}

/** Starts node `name`; a node that exits while starting (its port taken
 * meanwhile by someone's outgoing connection: the ports are picked before
 * the nodes bind them) is started again, twice at most, and the error names
 * its last log lines. */
async function startNode(name, http, cluster, seeds) {
  for (let attempt = 1; ; attempt++) {
    const node = spawnNode(name, http, cluster, seeds);
    try {
      await waitHttp(http, node.child);
      return node;
    } catch (e) {
      node.stop();
      if (attempt >= 3) throw new Error(`${name}: ${e.message}; its log:\n${node.log()}`);
      await sleep(500);
    }
  }
}

function spawnNode(name, http, cluster, seeds) {
  const dir = mkdtempSync(join(tmpdir(), `chalktalk-ops-${name}-`));
  let log = "";
  const child = spawn(findBinary(), ["serve"], {
    env: {
      ...process.env,
      CHALKTALK_LISTEN: `127.0.0.1:${http}`,
      CHALKTALK_DATA_DIR: dir,
      CHALKTALK_JWT_SECRET: SECRET,
      CHALKTALK_LOG: "warn",
      CHALKTALK_NODE_NAME: name,
      CHALKTALK_CLUSTER_LISTEN: `127.0.0.1:${cluster}`,
      CHALKTALK_CLUSTER_SEEDS: seeds.map((p) => `127.0.0.1:${p}`).join(","),
      CHALKTALK_CLUSTER_COOKIE: COOKIE,
      CHALKTALK_CLUSTER_HEARTBEAT_MS: "200",
      CHALKTALK_CLUSTER_SUSPECT_MS: "700",
      CHALKTALK_CLUSTER_DOWN_MS: "1500",
    },
    stdio: ["ignore", "ignore", "pipe"],
  });
  child.stderr.on("data", (d) => (log = (log + d).slice(-8000)));
  return {
    name, http, child, log: () => log,
    stop() { child.kill("SIGKILL"); rmSync(dir, { recursive: true, force: true }); },
  };
}

function token(user, role) {
  return execFileSync(findBinary(), ["token", "--user", user, "--role", role, "--ttl", "600"], {
    env: { ...process.env, CHALKTALK_JWT_SECRET: SECRET, CHALKTALK_DATA_DIR: tmpdir() },
  }).toString().trim();
}

/** The statuses the page shows, by node name. */
async function shown(page) {
  return page.$$eval("#nodes tr", (rows) => Object.fromEntries(rows.map((r) => [r.dataset.node, r.dataset.status])));
}

async function until(page, want, ms, what) {
  const start = Date.now();
  let last;
  while (Date.now() - start < ms) {
    last = await shown(page);
    if (want(last)) return Date.now() - start;
    await sleep(50);
  }
  throw new Error(`${what} not shown within ${ms} ms; last: ${JSON.stringify(last)}`);
}

test("the ops dashboard: three nodes, one frozen and back, a room's owner, admins only", { skip, timeout: 120_000 }, async () => {
  const https = [await freePort(), await freePort(), await freePort()];
  const clusters = [await freePort(), await freePort(), await freePort()];
  const nodes = [];
  const browser = await launch();
  try {
    for (let i = 0; i < 3; i++) {
      nodes.push(await startNode(`n${i + 1}`, https[i], clusters[i], clusters.filter((_, j) => j !== i)));
    }
    const admin = token("ops-admin", "admin");
    const ctx = await browser.newContext({ viewport: { width: 1440, height: 900 } });
    const page = await ctx.newPage();
    const errors = [];
    page.on("pageerror", (e) => errors.push(String(e)));
    await page.goto(`http://127.0.0.1:${https[0]}/ops`);
    // No session in this origin: the page asks for a token.
    await page.waitForSelector("#auth:not([hidden])");
    await page.fill("#token", admin);
    await page.click("#token-form button");

    await until(page, (s) => s.n1 === "up" && s.n2 === "up" && s.n3 === "up", 20_000, "three nodes up");
    const cells = await page.$$eval('#nodes tr[data-node="n2"] td', (tds) => tds.map((t) => t.textContent));
    assert.equal(cells[2], `127.0.0.1:${https[1]}`, "n2's HTTP address");
    assert.match(cells[6], /ms$/, "n2's round trip is measured");
    await page.screenshot({ path: join(artifacts, "ops-dashboard.png"), fullPage: true });

    // n3 freezes: the page shows it down within the timeout, live.
    const reloads = [];
    page.on("framenavigated", (f) => f === page.mainFrame() && reloads.push(f.url()));
    process.kill(nodes[2].child.pid, "SIGSTOP");
    const downIn = await until(page, (s) => s.n3 === "down", 1500 + 2500, "n3 down");
    console.log(`n3 shown down ${downIn} ms after SIGSTOP (down after 1500 ms of silence)`);
    const events = await page.$$eval("#events li", (lis) => lis.map((l) => `${l.dataset.node}:${l.dataset.to}`));
    assert.ok(events.includes("n3:down"), `a membership event for n3 going down: ${events}`);
    await page.screenshot({ path: join(artifacts, "ops-dashboard-n3-down.png"), fullPage: true });
    process.kill(nodes[2].child.pid, "SIGCONT");
    await until(page, (s) => s.n3 === "up", 5_000, "n3 up again");
    assert.deepEqual(reloads, [], "updated without reloading");

    // Where a room lives: the node where it was first used (n2 here). The
    // nodes of this test keep their own embedded stores (the leases live in
    // the store, so in a deployment, where the nodes share one, every
    // node's dashboard answers the same): ask n2's dashboard.
    const coach = token("coach-1", "coach");
    const c = new ChalktalkClient({
      url: `ws://127.0.0.1:${https[1]}/ws`,
      device: "ops-test",
      token: coach,
      WebSocket,
      inboxSince: 0,
      requestTimeoutMs: 5000,
    });
    c.connect();
    try {
      const room = await c.createRoom("video-ops");
      await c.joinRoom(room);
      const p2 = await ctx.newPage();
      await p2.goto(`http://127.0.0.1:${https[1]}/ops`);
      await p2.fill("#token", admin);
      await p2.click("#token-form button");
      await until(p2, (s) => s.n2 === "up", 5_000, "n2's own dashboard");
      await p2.fill("#room", room);
      await p2.click("#where-form button");
      await p2
        .waitForFunction(() => document.getElementById("where").dataset.owner === "n2", null, { timeout: 10_000 })
        .catch(async (e) => {
          throw new Error(`placement of ${room} not shown as n2: "${await p2.textContent("#where")}" (${e.message})`);
        });
      assert.match(await p2.textContent("#where"), /node n2 · epoch 1 · fence 1/);
      await p2.close();
    } finally {
      c.close();
    }

    // A coach gets the page but no data.
    const other = await ctx.newPage();
    await other.goto(`http://127.0.0.1:${https[0]}/ops`);
    await other.waitForSelector("#auth:not([hidden])");
    await other.fill("#token", coach);
    await other.click("#token-form button");
    await other.waitForFunction(() => /Admins only/.test(document.getElementById("state").textContent));
    assert.equal(await other.$$eval("#nodes tr", (r) => r.length), 0, "no node data for a coach");
    assert.deepEqual(errors, []);
  } finally {
    await browser.close();
    for (const n of nodes) {
      try { process.kill(n.child.pid, "SIGCONT"); } catch {}
      n.stop();
    }
  }
});
