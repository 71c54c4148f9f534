// The home's Devices card in real headless Chromium against a real
// `chalktalk serve`: one account signed in from three browser contexts
// (three devices); the first lists all three with itself marked, signs
// one out (asked twice), then every other one; the signed-out devices are
// back at the sign-in form on their next request. Screenshot in
// web/test-artifacts/.

import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { artifacts, launch, missing, startServer, until } from "./harness.mjs";
import { newUser, PASSWORD, signUp } from "./flows.mjs";

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

const EMAIL = "devices@example.test";

async function signIn(page) {
  await page.goto("/");
  await page.getByLabel("Email").fill(EMAIL);
  await page.getByLabel("Password (12+ characters)").fill(PASSWORD);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.getByTestId("my-id").waitFor();
}

/** Back at the sign-in form after the next authenticated request. */
async function signedOut(page) {
  await page.reload();
  await page.getByRole("button", { name: "Sign in" }).waitFor({ timeout: 10_000 });
  assert.equal(await page.getByTestId("my-id").count(), 0);
}

test("devices: list, sign one out, sign out all others", { skip, timeout: 120_000 }, async () => {
  const a = await newUser(browser, server.base, { width: 1280, height: 900 });
  await signUp(a.page, EMAIL, "athlete");
  await a.page.getByTestId("my-id").waitFor();
  const b = await newUser(browser, server.base, { width: 390, height: 844 });
  const c = await newUser(browser, server.base, { width: 1280, height: 800 });
  await signIn(b.page);
  await signIn(c.page);
  const [devB, devC] = await Promise.all([b, c].map((u) => u.page.evaluate(() => localStorage.getItem("chalktalk.device"))));

  await a.page.reload();
  const rows = a.page.locator('[data-testid="devices"] li');
  await until("three devices listed", () => rows.count().then((n) => n === 3));
  const mine = a.page.locator('[data-testid="devices"] li[data-current="true"]');
  assert.equal(await mine.count(), 1);
  assert.match(await mine.textContent(), /this device/);
  assert.equal(await mine.getByRole("button").count(), 0, "no sign-out button on this device");
  await a.page.getByRole("region", { name: "Devices" }).screenshot({ path: join(artifacts, "devices-1280.png") });

  // Sign B out: the first press asks, the second does it.
  const rowB = a.page.locator('[data-testid="devices"] li', { hasText: devB });
  await rowB.getByRole("button", { name: `Sign out ${devB}` }).click();
  await rowB.getByRole("button", { name: /press again to confirm/ }).click();
  await until("two devices left", () => rows.count().then((n) => n === 2));
  assert.equal(await a.page.locator('[data-testid="devices"] li', { hasText: devB }).count(), 0);
  await signedOut(b.page);
  // C is still signed in.
  await c.page.reload();
  await c.page.getByTestId("my-id").waitFor();

  // B signs in again; then every other device is signed out at once.
  await signIn(b.page);
  await a.page.reload();
  await until("three devices again", () => rows.count().then((n) => n === 3));
  const others = a.page.getByRole("button", { name: "Sign out all other devices" });
  await others.click();
  await a.page.getByRole("button", { name: /Sign out all other devices: press again/ }).click();
  await until("only this device", () => rows.count().then((n) => n === 1));
  await a.page.getByText("Only this device is signed in.").waitFor();
  assert.ok(await others.isHidden());
  await signedOut(b.page);
  await signedOut(c.page);
  assert.equal(devC.startsWith("web-"), true);
  // This device is still signed in.
  await a.page.reload();
  await a.page.getByTestId("my-id").waitFor();
  for (const u of [a, b, c]) assert.deepEqual(u.errors.filter((e) => !/401|Failed to load resource/.test(e)), []);
});
