// The chalktalk browser app (issue 11): routes, sign-up / sign-in (TOTP),
// the WebSocket client, then the home (home.ts), a chat thread (chat.ts)
// or the review workspace (workspace.ts). Client-side routes: `/` (home or
// sign-in), `/app/room/{id}` and `/app/thread/{id}`; the server answers
// index.html for all of them (server/src/webapp.rs).

import { ChalktalkClient } from "@chalktalk/client";
import {
  ApiError,
  describe,
  deviceId,
  register,
  Session,
  signIn,
  signInMfa,
  type Me,
  type Tokens,
} from "./api.js";
import { ThreadPage } from "./chat.js";
import { renderHome, type Room } from "./home.js";
import { clear, h, toast } from "./ui.js";
import { Workspace } from "./workspace.js";

const session = new Session();
let me: Me | null = null;
let client: ChalktalkClient | null = null;
let workspace: Workspace | null = null;
let page: ThreadPage | null = null;
let route = 0; // bumps on every navigation: late async renders check it
const root = document.getElementById("app")!;


// --- navigation ----------------------------------------------------------------

function go(path: string, replace = false): void {
  if (replace) history.replaceState(null, "", path);
  else history.pushState(null, "", path);
  void render();
}
window.addEventListener("popstate", () => void render());

async function render(): Promise<void> {
  const my = ++route;
  workspace?.close();
  workspace = null;
  page?.close();
  page = null;
  try {
    if (!session.signedIn) return renderSignIn();
    if (!me) {
      const m = await session.call<Me>("GET", "/api/v1/me");
      if (my !== route) return;
      if (!m || typeof m.id !== "string" || !m.mfa) throw new ApiError(0, "bad_answer", "the server's answer about your account was not understood");
      me = m;
    }
    if (me.mfa.required && !me.mfa.enabled) return renderEnroll();
    ensureClient();
    const m = location.pathname.match(/^\/app\/room\/([^/]+)$/);
    if (m) {
      workspace = new Workspace({
        client: client!,
        session,
        me: me.id,
        room: decodeURIComponent(m[1]),
        root,
        back: () => go("/"),
      });
      await workspace.open();
      return;
    }
    const t = location.pathname.match(/^\/app\/thread\/([^/]+)$/);
    if (t) {
      page = new ThreadPage({ client: client!, session, me: me!.id, thread: decodeURIComponent(t[1]), root, back: () => go("/") });
      await page.open();
      return;
    }
    await renderHome(homeDeps(my));
  } catch (e) {
    if (my !== route) return;
    if (e instanceof ApiError && e.status === 401) {
      signOutLocal();
      return renderSignIn(describe(e));
    }
    clear(root);
    root.append(
      h(
        "div",
        { class: "card narrow" },
        h("h1", {}, "Something went wrong"),
        h("p", { role: "alert", class: "error" }, describe(e)),
        h("button", { class: "btn", type: "button", onclick: () => void render() }, "Try again"),
        " ",
        h("button", { class: "btn ghost", type: "button", onclick: () => void doSignOut() }, "Sign out"),
      ),
    );
  }
}

function signOutLocal(): void {
  client?.close();
  client = null;
  me = null;
  session.set(null);
}

async function doSignOut(): Promise<void> {
  client?.close();
  client = null;
  me = null;
  await session.signOut();
  go("/", true);
}

session.onSignedOut = () => {
  client?.close();
  client = null;
  me = null;
  toast("Your session ended: sign in again", "error");
  go("/", true);
};

function ensureClient(): void {
  if (client || !me) return;
  const proto = location.protocol === "https:" ? "wss:" : "ws:";
  const key = `chalktalk.inbox.${me.id}`;
  client = new ChalktalkClient({
    url: `${proto}//${location.host}/ws`,
    device: deviceId(),
    token: session.tokens?.access_token,
    refreshToken: () => session.refresh(),
    inboxSince: Number(localStorage.getItem(key) ?? 0),
  });
  client.on("inbox", (ev) => {
    localStorage.setItem(key, String(ev.seq));
    const n = ev.notice;
    if (n.k === "invited") {
      rememberRoom({ room: n.room, video_id: n.video_id, owner: n.by, created_ms: ev.at_ms });
      toast(`${n.by} invited you to a review`);
      if (location.pathname === "/") void render();
    } else if (n.k === "removed") {
      localStorage.setItem(roomsKey(), JSON.stringify(knownRooms().filter((r) => r.room !== n.room)));
      toast(`${n.by} removed you from a review`);
      if (location.pathname === "/") void render();
    } else if (n.k === "media") {
      if (location.pathname === "/") void render();
    }
  });
  client.on("error", (e) => {
    if (e.kind === "fatal" || e.kind === "auth") toast(`Connection: ${describe(e)}`, "error");
  });
  client.connect();
}

// Rooms I was invited to (inbox notices) or created, kept per user.
function roomsKey(): string {
  return `chalktalk.rooms.${me?.id}`;
}
function knownRooms(): Room[] {
  try {
    return JSON.parse(localStorage.getItem(roomsKey()) ?? "[]");
  } catch {
    return [];
  }
}
function rememberRoom(r: Room): void {
  const list = knownRooms().filter((x) => x.room !== r.room);
  list.unshift(r);
  localStorage.setItem(roomsKey(), JSON.stringify(list.slice(0, 50)));
}

// --- sign-in / sign-up ---------------------------------------------------------

function field(label: string, input: HTMLInputElement | HTMLSelectElement): HTMLElement {
  return h("label", { class: "field" }, h("span", {}, label), input);
}

function renderSignIn(message = ""): void {
  clear(root);
  const email = h("input", { type: "email", name: "email", autocomplete: "username", required: true });
  const password = h("input", { type: "password", name: "password", autocomplete: "current-password", required: true, minlength: 12 });
  const role = h("select", { name: "role" }, h("option", { value: "athlete" }, "Athlete"), h("option", { value: "coach" }, "Coach"));
  const roleField = field("I am a", role);
  const err = h("p", { class: "error", role: "alert" }, message);
  let mode: "signin" | "signup" = "signin";
  const submit = h("button", { class: "btn primary", type: "submit" }, "Sign in");
  const switcher = h("button", { class: "btn ghost", type: "button" }, "Create an account");
  const title = h("h1", {}, "Sign in");
  const setMode = (m: typeof mode) => {
    mode = m;
    title.textContent = m === "signin" ? "Sign in" : "Create an account";
    submit.textContent = m === "signin" ? "Sign in" : "Sign up";
    switcher.textContent = m === "signin" ? "Create an account" : "I have an account";
    roleField.hidden = m === "signin";
    password.autocomplete = m === "signin" ? "current-password" : "new-password";
  };
  switcher.addEventListener("click", () => setMode(mode === "signin" ? "signup" : "signin"));
  setMode("signin");
  const form = h(
    "form",
    { class: "card narrow", "aria-labelledby": "auth-title" },
    h("div", { class: "brand" }, "chalktalk"),
    title,
    field("Email", email),
    field("Password (12+ characters)", password),
    roleField,
    err,
    h("div", { class: "row" }, submit, switcher),
  );
  title.id = "auth-title";
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    err.textContent = "";
    submit.disabled = true;
    try {
      if (mode === "signup") await register(email.value.trim(), password.value, role.value);
      const r = await signIn(email.value.trim(), password.value);
      if (r.kind === "mfa") renderMfa(r.challenge);
      else signedIn(r.tokens);
    } catch (x) {
      err.textContent =
        mode === "signup" && x instanceof ApiError && x.status === 401
          ? "This email is already registered with another password."
          : describe(x);
    } finally {
      submit.disabled = false;
    }
  });
  root.append(form);
  email.focus();
}

function renderMfa(challenge: string): void {
  clear(root);
  const code = h("input", { type: "text", inputmode: "numeric", autocomplete: "one-time-code", name: "code", required: true });
  const err = h("p", { class: "error", role: "alert" });
  const form = h(
    "form",
    { class: "card narrow" },
    h("h1", {}, "Two-step sign-in"),
    h("p", {}, "Enter the 6-digit code from your authenticator app (or a recovery code)."),
    field("Code", code),
    err,
    h("div", { class: "row" }, h("button", { class: "btn primary", type: "submit" }, "Verify"), h("button", { class: "btn ghost", type: "button", onclick: () => renderSignIn() }, "Back")),
  );
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    err.textContent = "";
    try {
      signedIn(await signInMfa(challenge, code.value.trim()));
    } catch (x) {
      err.textContent = describe(x);
    }
  });
  root.append(form);
  code.focus();
}

function signedIn(t: Tokens): void {
  session.set(t);
  me = null;
  go(location.pathname.startsWith("/app/") ? location.pathname : "/", true);
}

/** Coaches and admins enrol TOTP before anything else (PROTOCOL.md). */
async function renderEnroll(): Promise<void> {
  clear(root);
  const err = h("p", { class: "error", role: "alert" });
  const secretBox = h("div", { class: "secret" }, "…");
  const code = h("input", { type: "text", inputmode: "numeric", autocomplete: "one-time-code", name: "code", required: true, pattern: "[0-9]{6}" });
  const form = h(
    "form",
    { class: "card narrow" },
    h("h1", {}, "Turn on two-step sign-in"),
    h("p", {}, "Coaches protect their athletes' videos with an authenticator app. Add this key to the app, then enter the code it shows."),
    secretBox,
    field("6-digit code", code),
    err,
    h("div", { class: "row" }, h("button", { class: "btn primary", type: "submit" }, "Confirm"), h("button", { class: "btn ghost", type: "button", onclick: () => void doSignOut() }, "Sign out")),
  );
  root.append(form);
  try {
    const r = await session.call<{ secret: string; otpauth_uri: string }>("POST", "/api/v1/mfa/totp/enroll");
    clear(secretBox);
    secretBox.append(h("span", {}, "Key: "), h("code", { "data-testid": "totp-secret" }, r.secret), h("br"), h("a", { href: r.otpauth_uri }, "Open in authenticator app"));
  } catch (x) {
    err.textContent = describe(x);
  }
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    err.textContent = "";
    try {
      const r = await session.call<{ recovery_codes: string[]; access_token?: string; expires_in?: number }>(
        "POST",
        "/api/v1/mfa/totp/confirm",
        { code: code.value.trim() },
      );
      if (r.access_token && session.tokens) session.set({ ...session.tokens, access_token: r.access_token, mfa: "ok" });
      clear(root);
      root.append(
        h(
          "div",
          { class: "card narrow" },
          h("h1", {}, "Two-step sign-in is on"),
          h("p", {}, "Keep these recovery codes somewhere safe: each works once if you lose your phone."),
          h("ul", { class: "codes" }, r.recovery_codes.map((c) => h("li", {}, h("code", {}, c)))),
          h("button", { class: "btn primary", type: "button", onclick: () => { me = null; go("/", true); } }, "Continue"),
        ),
      );
    } catch (x) {
      err.textContent = describe(x);
    }
  });
}

// --- home ----------------------------------------------------------------------

function homeDeps(my: number) {
  return {
    session,
    me: me!,
    client: client!,
    root,
    go,
    render: () => void render(),
    signOut: () => void doSignOut(),
    current: () => my === route,
    knownRooms,
    rememberRoom,
  };
}

void render();
