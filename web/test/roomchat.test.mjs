// A review room of three in real headless Chromium against a real
// `chalktalk serve`: the coach, the free athlete whose clip the room shows
// and a paid athlete invited afterwards (granted the video by an admin)
// all find the room's own chat thread (kind `room`) and write in it, and
// everyone sees every message live, the free athlete's included.

import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { launch, missing, startServer, until } from "./harness.mjs";
import { grant, makePaid, newUser, setUpReview, signUp } from "./flows.mjs";

const why = missing();
if (why && process.env.CI) throw new Error(`browser tests cannot run: ${why}`);
const skip = why ? `skipped: ${why}` : false;

let server;
let browser;

before(async () => {
  if (skip) return;
  server = await startServer();
  browser = await launch();
});

after(async () => {
  await browser?.close();
  await server?.stop();
});

const msg = (page, text) => page.locator('[data-testid="messages"] li.msg', { hasText: text });

test("a room of three: the coach and both athletes (one free) write in the room's chat", { skip, timeout: 300_000 }, async () => {
  const r = await setUpReview(browser, server, "trio", [4, 640, 360], { free: true });
  const cp = r.coach.page;
  const fp = r.athlete.page;
  const video = await cp.evaluate(() => window.chalktalkWorkspace.videoId());
  // A paid athlete who may see the free athlete's clip (an admin's grant).
  const third = await newUser(browser, server.base, { width: 1280, height: 800 });
  const pp = third.page;
  await signUp(pp, "athlete-trio-paid@example.test", "athlete");
  const paidId = await pp.getByTestId("my-id").textContent();
  await makePaid(server, paidId);
  await grant(server, paidId, video);
  await cp.getByLabel("User id to invite").fill(paidId);
  await cp.getByRole("button", { name: "Invite", exact: true }).click();
  await pp.locator(`a[data-room="${r.room}"]`).first().click({ timeout: 20_000 });
  await pp.waitForURL(/\/app\/room\//);
  await until("the video to load", () => pp.evaluate(() => document.querySelector("video")?.readyState >= 1), 20_000);

  // One thread, the room's, for all three.
  const pages = [cp, fp, pp];
  for (const p of pages) await p.getByTestId("chat-input").waitFor({ timeout: 15_000 });
  const threads = await Promise.all(pages.map((p) => p.evaluate(() => window.chalktalkWorkspace.chatThread())));
  assert.equal(threads[0], `rt-${r.room}`);
  assert.deepEqual(threads, [threads[0], threads[0], threads[0]]);

  const said = [
    [fp, "From the free athlete: my knee hurts at 0:02"],
    [pp, "From the paid athlete: same here"],
    [cp, "From the coach: let's look at it"],
  ];
  for (const [p, text] of said) {
    await p.getByTestId("chat-input").fill(text);
    await p.getByTestId("chat-input").press("Enter");
    await msg(p, text).waitFor({ timeout: 5000 });
  }
  for (const p of pages) {
    for (const [, text] of said) await msg(p, text).waitFor({ timeout: 5000 });
  }
  // Nothing was refused on the way.
  for (const p of pages) assert.equal(await p.locator(".chathost .error").count(), 0);
  for (const u of [r.coach, r.athlete, third]) assert.deepEqual(u.errors.filter((e) => !/favicon/.test(e)), []);
});
