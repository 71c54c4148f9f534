// A room opened while its video is still processing, in real headless
// Chromium against a real `chalktalk serve`: the coach (a member who is
// not the uploader, so their `media` frames come through the room) opens
// the review before the athlete's clip is ready, plays the early info
// once it is playable, and switches to the full info (every rendition)
// when the asset becomes ready, without a reload.

import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { launch, makeClip, missing, sleep, startServer } from "./harness.mjs";
import { newUser, signUp, signUpCoach } from "./flows.mjs";

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

test("a member who opened the room while the video was processing gets the full playlist when it is ready", { skip, timeout: 300_000 }, async () => {
  const athlete = await newUser(browser, server.base, { width: 1280, height: 800 });
  const coach = await newUser(browser, server.base, { width: 1280, height: 800 });
  await signUp(athlete.page, "athlete-early@example.test", "athlete");
  const athleteId = await athlete.page.getByTestId("my-id").textContent();
  await signUpCoach(coach.page, "coach-early@example.test");
  await coach.page.getByLabel("Athlete user id").fill(athleteId);
  await coach.page.getByRole("button", { name: "Invite athlete" }).click();
  await coach.page.locator('[data-testid="relationships"] li[data-state="invited"]').waitFor();
  await athlete.page.reload();
  await athlete.page.getByRole("button", { name: "Accept" }).click();
  await athlete.page.locator('[data-testid="relationships"] li[data-state="active"]').waitFor();

  // A 30 s 720p clip: long enough to open the room before it is ready.
  await athlete.page.getByTestId("upload").setInputFiles(makeClip(server.dir, 30, 1280, 720));
  await athlete.page.locator("[data-asset] .vstage").waitFor({ timeout: 60_000 });
  await coach.page.reload();
  const stage = coach.page.locator("[data-asset] .vstage");
  await stage.waitFor({ timeout: 20_000 });
  assert.notEqual(await stage.textContent(), "ready", "still processing when the room opens");
  await coach.page.getByRole("button", { name: "New review" }).click();
  await coach.page.waitForURL(/\/app\/room\//);

  // Early first (once playable), then the full info in its place.
  const cp = coach.page;
  const seen = [];
  const deadline = Date.now() + 240_000;
  let last = null;
  while (Date.now() < deadline) {
    last = await cp.evaluate(() => {
      const v = document.querySelector("video");
      return { early: v?.dataset.early ?? null, ready: v?.readyState ?? 0, options: document.querySelectorAll("select.quality option").length };
    });
    if (last.ready >= 1 && last.early && seen.at(-1) !== last.early) seen.push(last.early);
    if (last.early === "false" && last.ready >= 1) break;
    await sleep(100);
  }
  assert.deepEqual(seen, ["true", "false"], `played early, then the full info (last: ${JSON.stringify(last)})`);
  assert.ok(last.options >= 3, `every rendition offered once ready (${last.options} options)`);
  // The new file loads without error (the workspace keeps it on the
  // room's shared clock, paused here).
  await sleep(1000);
  const v = await cp.evaluate(() => {
    const el = document.querySelector("video");
    return { error: el.error?.message ?? null, ready: el.readyState, duration: el.duration };
  });
  assert.equal(v.error, null);
  assert.ok(v.ready >= 1 && v.duration > 25, `the full video is loaded (${JSON.stringify(v)})`);
  for (const u of [coach, athlete]) assert.deepEqual(u.errors.filter((e) => !/favicon/.test(e)), []);
});
