// Steps shared by the browser tests: a browser context per user (errors
// collected), sign-up through the app's own forms (TOTP enrolment for a
// coach), a normalized overlay point in page coordinates, and the whole
// set-up of a review: an athlete and their coach, the athlete's uploaded
// clip (`clip`: seconds, width, height, rotation) processed, a room on it opened by the coach with the athlete
// invited and in it (`opts.player`: see newUser). The athlete is made a paid one (an admin's plan
// change, with a dev admin token) so they may chat with their coach
// outside the room too, unless `opts.free`.

import { devToken, makeClip, totp, until } from "./harness.mjs";

export const PASSWORD = "correct horse battery staple";

/** A browser context and page; `player: "mp4"` makes the workspace play
 * the MP4 renditions instead of HLS through hls.js. */
export async function newUser(browser, base, viewport, { player } = {}) {
  const ctx = await browser.newContext({ viewport, baseURL: base });
  if (player) await ctx.addInitScript((p) => localStorage.setItem("chalktalk.player", p), player);
  const page = await ctx.newPage();
  const errors = [];
  page.on("pageerror", (e) => errors.push(String(e)));
  page.on("console", (m) => m.type() === "error" && errors.push(`${m.text()} ${m.location()?.url ?? ""}`));
  return { ctx, page, errors };
}

export async function signUp(page, email, role) {
  await page.goto("/");
  await page.getByRole("button", { name: "Create an account" }).click();
  await page.getByLabel("Email").fill(email);
  await page.getByLabel("Password (12+ characters)").fill(PASSWORD);
  await page.getByLabel("I am a").selectOption(role);
  await page.getByRole("button", { name: "Sign up" }).click();
}

/** A coach signs up and turns TOTP on; resolves with their user id. */
export async function signUpCoach(page, email) {
  await signUp(page, email, "coach");
  const secret = await page.getByTestId("totp-secret").textContent();
  await page.getByLabel("6-digit code").fill(totp(secret));
  await page.getByRole("button", { name: "Confirm" }).click();
  await page.getByRole("button", { name: "Continue" }).click();
  return page.getByTestId("my-id").textContent();
}

/** Normalized overlay point → page coordinates. */
export async function at(page, x, y) {
  await page.locator('[data-testid="overlay"]').scrollIntoViewIfNeeded();
  const box = await page.locator('[data-testid="overlay"]').boundingBox();
  return [box.x + x * box.width, box.y + y * box.height];
}

/** An admin's plan change (dev admin token): `user` becomes a paid athlete. */
export async function makePaid(server, user) {
  const res = await fetch(`${server.base}/api/v1/admin/users/${user}/plan`, {
    method: "PUT",
    headers: { Authorization: `Bearer ${devToken("admin-web-e2e", "admin")}`, "Content-Type": "application/json" },
    body: JSON.stringify({ role: "athlete", tier: "paid" }),
  });
  if (!res.ok) throw new Error(`making ${user} paid: ${res.status} ${await res.text()}`);
}

/** An admin's grant (dev admin token): `athlete` may see `video`. */
export async function grant(server, athlete, video) {
  const res = await fetch(`${server.base}/api/v1/admin/grants`, {
    method: "POST",
    headers: { Authorization: `Bearer ${devToken("admin-web-e2e", "admin")}`, "Content-Type": "application/json" },
    body: JSON.stringify({ athlete, video }),
  });
  if (!res.ok) throw new Error(`granting ${video} to ${athlete}: ${res.status} ${await res.text()}`);
}

/** Athlete + coach linked, the athlete's clip processed, a room on it
 * with both in the workspace. Returns {coach, athlete, coachId,
 * athleteId, room}. */
export async function setUpReview(browser, server, tag, clip = [6, 640, 360], opts = {}) {
  const athlete = await newUser(browser, server.base, { width: 1280, height: 800 }, opts);
  const coach = await newUser(browser, server.base, { width: 1280, height: 800 }, opts);
  await signUp(athlete.page, `athlete-${tag}@example.test`, "athlete");
  const athleteId = await athlete.page.getByTestId("my-id").textContent();
  // A paid athlete: free ones message nobody outside a room's own chat
  // (PROTOCOL.md, Permissions).
  if (!opts.free) await makePaid(server, athleteId);
  const coachId = await signUpCoach(coach.page, `coach-${tag}@example.test`);
  await coach.page.getByLabel("Athlete user id").fill(athleteId);
  await coach.page.getByRole("button", { name: "Invite athlete" }).click();
  await coach.page.locator('[data-testid="relationships"] li[data-state="invited"]').waitFor();
  await athlete.page.reload();
  await athlete.page.getByRole("button", { name: "Accept" }).click();
  await athlete.page.locator('[data-testid="relationships"] li[data-state="active"]').waitFor();
  await athlete.page.getByTestId("upload").setInputFiles(makeClip(server.dir, ...clip));
  await athlete.page.locator("[data-asset] .vstage", { hasText: "ready" }).waitFor({ timeout: 150_000 });
  await coach.page.reload();
  await coach.page.getByRole("button", { name: "New review" }).click();
  await coach.page.waitForURL(/\/app\/room\//);
  const room = coach.page.url().split("/app/room/")[1];
  await coach.page.getByLabel("User id to invite").fill(athleteId);
  await coach.page.getByRole("button", { name: "Invite", exact: true }).click();
  await athlete.page.locator(`a[data-room="${room}"]`).first().click({ timeout: 20_000 });
  await athlete.page.waitForURL(/\/app\/room\//);
  for (const u of [coach, athlete]) {
    await until("the video to load", () => u.page.evaluate(() => document.querySelector("video")?.readyState >= 1), 20_000);
    await until("two people present", () => u.page.locator(".avatars .avatar").count().then((n) => n === 2));
  }
  return { coach, athlete, coachId, athleteId, room };
}
