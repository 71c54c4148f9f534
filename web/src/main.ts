// The chalktalk browser app (issue 11): sign-up / sign-in (TOTP), home
// (videos with upload and processing progress, coach–athlete links, review
// rooms) and the review workspace (workspace.ts). Client-side routes:
// `/` (home or sign-in) and `/app/room/{id}`; the server answers
// index.html for both (server/src/webapp.rs).

import { ChalktalkClient, type Asset, type MediaProgress } from "@chalktalk/client";
import {
  ApiError,
  describe,
  deviceId,
  register,
  Session,
  signIn,
  signInMfa,
  uploadVideo,
  type Me,
  type Tokens,
} from "./api.js";
import { clear, h, rand, toast } from "./ui.js";
import { Workspace } from "./workspace.js";

const session = new Session();
let me: Me | null = null;
let client: ChalktalkClient | null = null;
let workspace: Workspace | null = null;
let route = 0; // bumps on every navigation: late async renders check it
const root = document.getElementById("app")!;

interface Relationship {
  coach: string;
  athlete: string;
  state: string;
}
interface Review {
  room: string;
  video_id: string;
  owner: string;
  created_ms: number;
}

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
        me: me.id,
        room: decodeURIComponent(m[1]),
        root,
        back: () => go("/"),
      });
      await workspace.open();
      return;
    }
    await renderHome(my);
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
function knownRooms(): Review[] {
  try {
    return JSON.parse(localStorage.getItem(roomsKey()) ?? "[]");
  } catch {
    return [];
  }
}
function rememberRoom(r: Review): void {
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

async function renderHome(my: number): Promise<void> {
  const u = me!;
  const [videos, rels] = await Promise.all([
    session.call<{ videos: Asset[] }>("GET", "/api/v1/videos"),
    session.call<{ relationships: Relationship[] }>("GET", "/api/v1/relationships").catch(() => ({ relationships: [] })),
  ]);
  const reviews = new Map<string, Review>();
  for (const r of knownRooms()) reviews.set(r.room, r);
  const lists = await Promise.all(
    videos.videos.map((v) =>
      session.call<{ reviews: Review[] }>("GET", `/api/v1/videos/${v.id}/reviews`).catch(() => ({ reviews: [] as Review[] })),
    ),
  );
  for (const l of lists) for (const r of l.reviews) reviews.set(r.room, r);
  if (my !== route) return;

  clear(root);
  const header = h(
    "header",
    { class: "topbar" },
    h("div", { class: "brand" }, "chalktalk"),
    h("div", { class: "who" }, h("span", {}, u.email), " · ", h("span", {}, u.role), " · ", h("code", { "data-testid": "my-id", title: "Your user id (give it to your coach)" }, u.id)),
    h("button", { class: "btn ghost", type: "button", onclick: () => void doSignOut() }, "Sign out"),
  );

  // Videos + upload
  const progress = h("progress", { max: 100, value: 0, "aria-label": "Upload progress", hidden: true });
  const upText = h("span", { class: "muted", "aria-live": "polite" });
  const file = h("input", { type: "file", accept: "video/*", "aria-label": "Choose a video to upload", "data-testid": "upload" });
  file.addEventListener("change", async () => {
    const f = file.files?.[0];
    if (!f) return;
    progress.hidden = false;
    file.disabled = true;
    try {
      const asset = await uploadVideo(session, f, (p) => {
        const pct = p.size ? Math.floor((p.sent / p.size) * 100) : 100;
        progress.value = pct;
        upText.textContent = `Uploading ${f.name}: ${pct}%`;
      });
      upText.textContent = `Uploaded ${f.name}: processing…`;
      toast("Upload complete: processing");
      void asset;
      if (my === route) void render();
    } catch (x) {
      upText.textContent = `Upload failed: ${describe(x)}`;
      toast(`Upload failed: ${describe(x)}`, "error");
    } finally {
      file.disabled = false;
    }
  });
  const grid = h("ul", { class: "videos", "data-testid": "videos" });
  if (videos.videos.length === 0) grid.append(h("li", { class: "muted" }, "No videos yet: upload one."));
  for (const v of videos.videos) grid.append(videoCard(v, [...reviews.values()].filter((r) => r.video_id === v.id)));

  // Review rooms not tied to a listed video (invitations)
  const listed = new Set(videos.videos.map((v) => v.id));
  const other = [...reviews.values()].filter((r) => !listed.has(r.video_id));
  const roomsSection = h(
    "section",
    { class: "card" },
    h("h2", {}, "Review rooms"),
    other.length === 0 && reviews.size === 0
      ? h("p", { class: "muted" }, u.role === "athlete" ? "When your coach invites you to a review it shows here." : "Open a review from a video.")
      : h(
          "ul",
          { class: "rooms", "data-testid": "rooms" },
          [...reviews.values()].map((r) =>
            h("li", {}, h("a", { href: `/app/room/${r.room}`, class: "btn", "data-room": r.room, onclick: link }, `Open review ${r.room.slice(0, 10)}…`), h("span", { class: "muted" }, ` of ${r.video_id} by ${r.owner}`)),
          ),
        ),
  );

  root.append(
    header,
    h(
      "main",
      { class: "home" },
      h("section", { class: "card" }, h("h2", {}, "My videos"), h("div", { class: "row upload" }, file, progress, upText), grid),
      roomsSection,
      relationshipsSection(rels.relationships),
    ),
  );

  // Live processing progress for the listed videos.
  const off = client!.on("media", (p: MediaProgress) => {
    const el = root.querySelector<HTMLElement>(`[data-asset="${p.asset}"] .vstage`);
    if (!el) return;
    el.textContent = p.stage === "transcoding" ? `processing ${Math.round(p.percent)}%` : p.stage;
    const bar = root.querySelector<HTMLProgressElement>(`[data-asset="${p.asset}"] progress`);
    if (bar) bar.value = p.percent;
    if (p.stage === "ready" || p.stage === "failed") {
      off();
      if (my === route) void render();
    }
  });
  const unwatch = () => {
    if (my !== route) {
      off();
      window.removeEventListener("popstate", unwatch);
    }
  };
  window.addEventListener("popstate", unwatch);
}

function link(e: Event): void {
  const a = e.currentTarget as HTMLAnchorElement;
  e.preventDefault();
  go(a.getAttribute("href")!);
}

function videoCard(v: Asset, rooms: Review[]): HTMLElement {
  const poster = h("div", { class: "poster", "aria-hidden": "true" });
  const stage = h("span", { class: "vstage" }, v.stage === "failed" ? `failed: ${v.error?.message ?? ""}` : v.stage);
  const bar = h("progress", { max: 100, value: v.stage === "ready" ? 100 : 0, "aria-label": `Processing of ${v.filename}` });
  if (v.stage === "ready" && client) {
    client
      .mediaLink(v.id)
      .then((l) => {
        if (l.base && l.asset.info?.poster) {
          poster.append(h("img", { src: l.base + l.asset.info.poster, alt: "", loading: "lazy" }));
        }
      })
      .catch(() => {});
  }
  const owned = v.owner === me?.id;
  const canReview = me?.role === "coach" || me?.role === "admin";
  const dur = v.info ? ` · ${(v.info.duration_ms / 1000).toFixed(1)} s` : "";
  return h(
    "li",
    { class: "video", "data-asset": v.id },
    poster,
    h("div", { class: "meta" }, h("strong", {}, v.filename), h("span", { class: "muted" }, `${owned ? "mine" : `by ${v.owner}`}${dur}`), stage, v.stage === "ready" || v.stage === "failed" ? null : bar),
    h(
      "div",
      { class: "row" },
      rooms.map((r) => h("a", { class: "btn", href: `/app/room/${r.room}`, onclick: link, "data-room": r.room }, "Open review")),
      canReview
        ? h(
            "button",
            {
              class: "btn primary",
              type: "button",
              "data-action": "new-review",
              onclick: async (e: Event) => {
                const b = e.currentTarget as HTMLButtonElement;
                b.disabled = true;
                try {
                  const aspect = v.info && v.info.height ? v.info.width / v.info.height : undefined;
                  const fps = v.info?.fps || undefined;
                  const room = await client!.createRoom(v.id, { aspect, fps });
                  rememberRoom({ room, video_id: v.id, owner: me!.id, created_ms: Date.now() });
                  go(`/app/room/${room}`);
                } catch (x) {
                  toast(`Could not open a review: ${describe(x)}`, "error");
                  b.disabled = false;
                }
              },
            },
            "New review",
          )
        : null,
    ),
  );
}

function relationshipsSection(rels: Relationship[]): HTMLElement {
  const u = me!;
  const coach = u.role === "coach" || u.role === "admin";
  const list = h("ul", { class: "rels", "data-testid": "relationships" });
  for (const r of rels) {
    const other = coach ? r.athlete : r.coach;
    const act = async (what: string) => {
      try {
        await session.call("POST", `/api/v1/relationships/${r.coach}/${r.athlete}/${what}`);
        void render();
      } catch (x) {
        toast(describe(x), "error");
      }
    };
    list.append(
      h(
        "li",
        { "data-state": r.state },
        h("code", {}, other),
        ` · ${r.state}`,
        !coach && r.state === "invited" ? h("button", { class: "btn primary", type: "button", onclick: () => act("accept") }, "Accept") : null,
        !coach && r.state === "invited" ? h("button", { class: "btn ghost", type: "button", onclick: () => act("decline") }, "Decline") : null,
        r.state === "active" ? h("button", { class: "btn ghost", type: "button", onclick: () => act("end") }, "End") : null,
      ),
    );
  }
  if (rels.length === 0) list.append(h("li", { class: "muted" }, coach ? "No athletes yet." : "No coach yet: give your coach your user id."));
  const input = h("input", { type: "text", placeholder: "athlete user id (u-…)", "aria-label": "Athlete user id", required: true });
  const form = coach
    ? h(
        "form",
        {
          class: "row",
          onsubmit: async (e: Event) => {
            e.preventDefault();
            try {
              await session.call("POST", "/api/v1/relationships", { athlete: input.value.trim() });
              toast("Invitation sent");
              void render();
            } catch (x) {
              toast(describe(x), "error");
            }
          },
        },
        input,
        h("button", { class: "btn", type: "submit" }, "Invite athlete"),
      )
    : null;
  return h("section", { class: "card" }, h("h2", {}, coach ? "My athletes" : "My coach"), list, form);
}

// Keep the id generator referenced for future drafts (ids of new ops are the client's).
void rand;

void render();
