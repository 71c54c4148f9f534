// Playing the review's video in real headless Chromium against a real
// `chalktalk serve`: a landscape 720p H.264 upload whose top rendition the
// server copies (no re-encode). Chromium has no native HLS, so the
// workspace plays the HLS master through hls.js: the video advances, and
// the quality switch moves hls.js to another level. Then the MP4 fallback
// (`chalktalk.player` = "mp4") plays the COPIED 720p file from a seek past
// its second keyframe: the defect of a copied open-GOP source (a
// PIPELINE_ERROR_DECODE 0.6 s in) must not come back. Screenshot in
// web/test-artifacts/.

import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { artifacts, launch, missing, sleep, startServer, until } from "./harness.mjs";
import { setUpReview } from "./flows.mjs";

const why = missing();
if (why && process.env.CI) throw new Error(`browser tests cannot run: ${why}`);
const skip = why ? `skipped: ${why}` : false;

let server;
let browser;
let r; // {coach, athlete, coachId, athleteId, room}

before(async () => {
  if (skip) return;
  server = await startServer();
  browser = await launch();
});

after(async () => {
  await browser?.close();
  await server?.stop();
});

const video = (page) =>
  page.evaluate(() => {
    const v = document.querySelector("video");
    if (!v) return {};
    return {
      t: v.currentTime,
      h: v.videoHeight,
      err: v.error && `${v.error.code} ${v.error.message}`,
      src: v.currentSrc,
      player: v.dataset.player,
      level: v.dataset.level,
      copied: v.dataset.copied,
      ready: v.readyState,
    };
  });

/** The coach (leader) seeks to `ms` and plays. */
async function seekAndPlay(page, ms) {
  const dur = await page.evaluate(() => window.chalktalkWorkspace.durationMs());
  await page.getByLabel("Seek").evaluate((el, v) => {
    el.value = String(v);
    el.dispatchEvent(new Event("change"));
  }, Math.round((ms / dur) * 1000));
  await page.getByRole("button", { name: "Play (Space)" }).click();
}

/** Asserts the page's video gets past `s` seconds with no error. */
async function playsPast(page, s, what) {
  await until(`${what} past ${s} s`, async () => {
    const v = await video(page);
    assert.equal(v.err, null, `${what}: ${v.err}`);
    return v.t > s;
  }, 20_000, 100);
}

test("hls.js: the workspace plays the HLS master and switches levels", { skip, timeout: 300_000 }, async () => {
  r = await setUpReview(browser, server, "media", [6, 1280, 720]);
  const ap = r.athlete.page;
  const cp = r.coach.page;
  for (const p of [ap, cp]) {
    const v = await video(p);
    assert.equal(v.player, "hls.js");
    assert.match(v.src, /^blob:/, "Media Source Extensions, not a file");
  }
  const q = ap.getByLabel("Video quality");
  assert.deepEqual(await q.locator("option").allTextContents(), ["Auto", "720p (1280×720)", "480p (854×480)"]);
  await seekAndPlay(cp, 600);
  await playsPast(ap, 2.0, "the athlete's video through hls.js");
  await playsPast(cp, 2.0, "the coach's video through hls.js");
  await ap.screenshot({ path: join(artifacts, "media-hlsjs-1280.png") });

  // The athlete picks 480p: hls.js switches level, the video goes on.
  await q.selectOption("480p");
  await until("hls.js on the 480p level", async () => {
    const v = await video(ap);
    return v.level === "480p" && v.h === 480;
  }, 20_000, 100);
  const t0 = (await video(ap)).t;
  await sleep(600);
  const v1 = await video(ap);
  assert.equal(v1.err, null);
  assert.ok(v1.t > t0 || v1.t > 5.5, `still playing after the switch (${t0} → ${v1.t})`);
  assert.equal(await ap.evaluate(() => localStorage.getItem("chalktalk.quality")), "480p");
  await cp.getByRole("button", { name: "Pause (Space)" }).click();
  // Back to 720p, playing again from 1 s.
  await seekAndPlay(cp, 1000);
  await q.selectOption("720p");
  await until("hls.js on the 720p level", async () => {
    const v = await video(ap);
    return v.level === "720p" && v.h === 720;
  }, 20_000, 100);
  await cp.getByRole("button", { name: "Pause (Space)" }).click();
});

test("the copied 720p MP4 plays from a seek past its second keyframe", { skip, timeout: 120_000 }, async () => {
  assert.ok(r, "needs the first test's room");
  const ap = r.athlete.page;
  const cp = r.coach.page;
  await ap.evaluate(() => {
    localStorage.setItem("chalktalk.player", "mp4");
    localStorage.removeItem("chalktalk.quality");
  });
  await ap.reload();
  await until("the MP4 loaded", () => video(ap).then((v) => v.player === "mp4" && v.ready >= 1), 20_000);
  const v = await video(ap);
  assert.match(v.src, /mp4\/720p\.mp4/);
  assert.equal(v.copied, "true", "the server copied the 720p rendition from the upload");
  // 0.6 s and 1.0 s: just after the keyframes where a copied open-GOP
  // source failed (frame 16 of 30 fps).
  for (const ms of [600, 1000]) {
    await seekAndPlay(cp, ms);
    await playsPast(ap, ms / 1000 + 2, "the copied 720p MP4");
    const after = await video(ap);
    assert.match(after.src, /mp4\/720p\.mp4/, "no fallback to another rendition");
    assert.equal(await ap.locator(".status", { hasText: "cannot be played" }).count(), 0);
    await cp.getByRole("button", { name: "Pause (Space)" }).click();
  }
});
