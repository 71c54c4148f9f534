// The home screen: my videos (upload with progress, processing live), my
// review rooms (GET /api/v1/me/rooms), my chat threads with unread counts
// and last message (GET /api/v1/me/threads, kept live by `new_message`
// notices), a form to start a chat, my coach/athletes, and my uploads with
// the storage they use against my quota (GET /api/v1/me/assets) and delete
// with an inline confirmation (DELETE /api/v1/assets/{id}).

import type { Asset, ChalktalkClient, MediaProgress, Message, ThreadInfo } from "@chalktalk/client";
import { describe, uploadVideo, type Me, type Session } from "./api.js";
import { devicesSection } from "./devices.js";
import { clear, h, toast } from "./ui.js";

/** How "my uploads" names each kind of asset. */
const KIND_LABEL: Record<Asset["kind"], string> = { video: "video", voice_over: "voice-over", document: "document" };

export interface Room {
  room: string;
  video_id: string;
  owner: string;
  created_ms: number;
  head?: number;
  last_activity_ms?: number;
}

export interface ThreadRow {
  thread: ThreadInfo;
  read: number;
  delivered: number;
  unread: number;
  last: Message | null;
  last_ms: number;
}

interface Relationship {
  coach: string;
  athlete: string;
  state: string;
}

interface MyAsset {
  asset: Asset;
  files: number;
  stored_bytes: number;
}

export interface HomeDeps {
  session: Session;
  me: Me;
  client: ChalktalkClient;
  root: HTMLElement;
  go: (path: string) => void;
  render: () => void;
  signOut: () => void;
  current: () => boolean;
  /** Rooms known from invitations before the membership index has them. */
  knownRooms: () => Room[];
  rememberRoom: (r: Room) => void;
}

/** The ready videos I can see, for attaching one to a chat message. */
export function libraryOf(session: Session): () => Promise<{ id: string; filename: string }[]> {
  return () =>
    session
      .call<{ videos: Asset[] }>("GET", "/api/v1/videos")
      .then((r) => r.videos.filter((v) => v.stage === "ready").map((v) => ({ id: v.id, filename: v.filename })));
}

export function threadName(t: ThreadInfo, me: string): string {
  if (t.room) return `Review chat · ${t.room}`;
  if (t.title) return t.title;
  const others = t.members.filter((m) => m !== me);
  return others.join(", ") || "Notes to self";
}

export function lastText(m: Message | null, me: string): string {
  if (!m) return "No messages yet";
  const who = m.from === me ? "you" : m.from;
  if (m.edit?.k === "delete") return `${who}: (deleted a message)`;
  if (m.edit?.k === "edit") return `${who} (edited): ${m.text}`;
  return `${who}: ${m.text || "(attachment)"}`;
}

export function fmtBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KB`;
  if (n < 1024 ** 3) return `${(n / 1024 / 1024).toFixed(1)} MB`;
  return `${(n / 1024 ** 3).toFixed(2)} GB`;
}

export async function renderHome(d: HomeDeps): Promise<void> {
  const { session, me: u, client, root } = d;
  const [videos, rels, mine, threads, assets] = await Promise.all([
    session.call<{ videos: Asset[] }>("GET", "/api/v1/videos"),
    session.call<{ relationships: Relationship[] }>("GET", "/api/v1/relationships").catch(() => ({ relationships: [] })),
    session.call<{ rooms: Room[] }>("GET", "/api/v1/me/rooms"),
    session.call<{ threads: ThreadRow[] }>("GET", "/api/v1/me/threads"),
    session.call<{ assets: MyAsset[]; used_bytes: number; quota_bytes: number | null }>("GET", "/api/v1/me/assets"),
  ]);
  if (!d.current()) return;
  const rooms = new Map<string, Room>();
  for (const r of mine.rooms) rooms.set(r.room, r);
  // Invitations seen in the inbox a moment before the index lists them.
  for (const r of d.knownRooms()) if (!rooms.has(r.room) && Date.now() - r.created_ms < 60_000) rooms.set(r.room, r);

  clear(root);
  const header = h(
    "header",
    { class: "topbar" },
    h("div", { class: "brand" }, "chalktalk"),
    h("div", { class: "who" }, h("span", {}, u.email), " · ", h("span", {}, u.role), " · ", h("code", { "data-testid": "my-id", title: "Your user id (give it to your coach)" }, u.id)),
    h("button", { class: "btn ghost", type: "button", onclick: () => d.signOut() }, "Sign out"),
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
      await uploadVideo(session, f, (p) => {
        const pct = p.size ? Math.floor((p.sent / p.size) * 100) : 100;
        progress.value = pct;
        upText.textContent = `Uploading ${f.name}: ${pct}%`;
      });
      upText.textContent = `Uploaded ${f.name}: processing…`;
      toast("Upload complete: processing");
      if (d.current()) d.render();
    } catch (x) {
      upText.textContent = `Upload failed: ${describe(x)}`;
      toast(`Upload failed: ${describe(x)}`, "error");
    } finally {
      file.disabled = false;
    }
  });
  const grid = h("ul", { class: "videos", "data-testid": "videos" });
  if (videos.videos.length === 0) grid.append(h("li", { class: "muted" }, "No videos yet: upload one."));
  for (const v of videos.videos) grid.append(videoCard(d, v, [...rooms.values()].filter((r) => r.video_id === v.id)));

  const roomsSection = h(
    "section",
    { class: "card" },
    h("h2", {}, "Review rooms"),
    rooms.size === 0
      ? h("p", { class: "muted" }, u.role === "athlete" ? "When your coach invites you to a review it shows here." : "Open a review from a video.")
      : h(
          "ul",
          { class: "rooms", "data-testid": "rooms" },
          [...rooms.values()].map((r) =>
            h(
              "li",
              {},
              h("a", { href: `/app/room/${r.room}`, class: "btn", "data-room": r.room, onclick: link(d) }, `Open review ${r.room.slice(0, 10)}…`),
              h("span", { class: "muted" }, ` of ${r.video_id} by ${r.owner === u.id ? "you" : r.owner}${r.last_activity_ms ? ` · active ${ago(r.last_activity_ms)}` : ""}`),
            ),
          ),
        ),
  );

  const threadList = h("ul", { class: "threads", "data-testid": "threads" });
  fillThreads(d, threadList, threads.threads);

  root.append(
    header,
    h(
      "main",
      { class: "home" },
      h("section", { class: "card" }, h("h2", {}, "My videos"), h("div", { class: "row upload" }, file, progress, upText), grid),
      roomsSection,
      h("section", { class: "card" }, h("h2", {}, "Chats"), threadList, newChatForm(d)),
      relationshipsSection(d, rels.relationships),
      assetsSection(d, assets),
      devicesSection(session),
    ),
  );

  // Live: processing progress of the listed videos, and unread counts.
  const offMedia = client.on("media", (p: MediaProgress) => {
    if (!d.current()) return offMedia();
    const el = root.querySelector<HTMLElement>(`[data-asset="${p.asset}"] .vstage`);
    if (!el) return;
    el.textContent = p.stage === "transcoding" ? `processing ${Math.round(p.percent)}%` : p.stage;
    const bar = root.querySelector<HTMLProgressElement>(`[data-asset="${p.asset}"] progress`);
    if (bar) bar.value = p.percent;
    if (p.stage === "ready" || p.stage === "failed") {
      offMedia();
      d.render();
    }
  });
  const offInbox = client.on("inbox", (ev) => {
    if (!d.current()) return offInbox();
    const n = ev.notice;
    if (n.k === "new_message" || n.k === "added_to_thread") {
      void session
        .call<{ threads: ThreadRow[] }>("GET", "/api/v1/me/threads")
        .then((r) => d.current() && fillThreads(d, threadList, r.threads))
        .catch(() => {});
    }
  });
}

function ago(ms: number): string {
  const s = Math.max(0, (Date.now() - ms) / 1000);
  if (s < 60) return "just now";
  if (s < 3600) return `${Math.floor(s / 60)} min ago`;
  if (s < 86400) return `${Math.floor(s / 3600)} h ago`;
  return new Date(ms).toLocaleDateString();
}

function link(d: HomeDeps) {
  return (e: Event) => {
    const a = e.currentTarget as HTMLAnchorElement;
    e.preventDefault();
    d.go(a.getAttribute("href")!);
  };
}

function fillThreads(d: HomeDeps, list: HTMLElement, rows: ThreadRow[]): void {
  clear(list);
  if (rows.length === 0) list.append(h("li", { class: "muted" }, "No chats yet."));
  for (const r of rows) {
    const name = threadName(r.thread, d.me.id);
    list.append(
      h(
        "li",
        { "data-thread": r.thread.id, "data-unread": r.unread },
        h(
          "a",
          { class: "btn thread", href: `/app/thread/${r.thread.id}`, onclick: link(d), "aria-label": `${name}${r.unread ? `, ${r.unread} unread` : ""}` },
          h("span", { class: "tname" }, name),
          r.unread > 0 ? h("span", { class: "badge", "data-testid": "unread" }, String(r.unread)) : null,
        ),
        h("span", { class: "muted last" }, `${lastText(r.last, d.me.id)} · ${ago(r.last_ms)}`),
      ),
    );
  }
}

function newChatForm(d: HomeDeps): HTMLElement {
  const who = h("input", { type: "text", placeholder: "user ids, comma-separated (u-…)", "aria-label": "Chat with (user ids)", required: true });
  const title = h("input", { type: "text", placeholder: "group title (optional)", "aria-label": "Group title", maxlength: 200 });
  return h(
    "form",
    {
      class: "row",
      onsubmit: async (e: Event) => {
        e.preventDefault();
        const ids = who.value.split(/[\s,]+/).filter(Boolean).filter((x) => x !== d.me.id);
        if (ids.length === 0) return;
        try {
          const kind = ids.length === 1 && !title.value.trim() ? "direct" : "group";
          const t = await d.client.createThread(kind, [d.me.id, ...ids], title.value.trim() || undefined);
          d.go(`/app/thread/${t.id}`);
        } catch (x) {
          toast(`Could not start the chat: ${describe(x)}`, "error");
        }
      },
    },
    who,
    title,
    h("button", { class: "btn", type: "submit" }, "Start chat"),
  );
}

function videoCard(d: HomeDeps, v: Asset, rooms: Room[]): HTMLElement {
  const me = d.me;
  const poster = h("div", { class: "poster", "aria-hidden": "true" });
  const stage = h("span", { class: "vstage" }, v.stage === "failed" ? `failed: ${v.error?.message ?? ""}` : v.stage);
  const bar = h("progress", { max: 100, value: v.stage === "ready" ? 100 : 0, "aria-label": `Processing of ${v.filename}` });
  if (v.stage === "ready") {
    d.client
      .mediaLink(v.id)
      .then((l) => {
        if (l.base && l.asset.info?.poster) poster.append(h("img", { src: l.base + l.asset.info.poster, alt: "", loading: "lazy" }));
      })
      .catch(() => {});
  }
  const owned = v.owner === me.id;
  const canReview = me.role === "coach" || me.role === "admin";
  const dur = v.info ? ` · ${(v.info.duration_ms / 1000).toFixed(1)} s` : "";
  return h(
    "li",
    { class: "video", "data-asset": v.id },
    poster,
    h("div", { class: "meta" }, h("strong", {}, v.filename), h("span", { class: "muted" }, `${owned ? "mine" : `by ${v.owner}`}${dur}`), stage, v.stage === "ready" || v.stage === "failed" ? null : bar),
    h(
      "div",
      { class: "row" },
      rooms.map((r) => h("a", { class: "btn", href: `/app/room/${r.room}`, onclick: link(d), "data-room": r.room }, "Open review")),
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
                  const room = await d.client.createRoom(v.id, { aspect, fps });
                  d.rememberRoom({ room, video_id: v.id, owner: me.id, created_ms: Date.now() });
                  d.go(`/app/room/${room}`);
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

function relationshipsSection(d: HomeDeps, rels: Relationship[]): HTMLElement {
  const u = d.me;
  const coach = u.role === "coach" || u.role === "admin";
  const list = h("ul", { class: "rels", "data-testid": "relationships" });
  for (const r of rels) {
    const other = coach ? r.athlete : r.coach;
    const act = async (what: string) => {
      try {
        await d.session.call("POST", `/api/v1/relationships/${r.coach}/${r.athlete}/${what}`);
        d.render();
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
              await d.session.call("POST", "/api/v1/relationships", { athlete: input.value.trim() });
              toast("Invitation sent");
              d.render();
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

function assetsSection(d: HomeDeps, a: { assets: MyAsset[]; used_bytes: number; quota_bytes: number | null }): HTMLElement {
  const quota = a.quota_bytes;
  const pct = quota ? Math.min(100, (a.used_bytes / quota) * 100) : 0;
  const usage = h(
    "p",
    { class: "usage", "data-testid": "storage" },
    quota ? `${fmtBytes(a.used_bytes)} of ${fmtBytes(quota)} used (${pct.toFixed(pct < 1 ? 2 : 0)}%)` : `${fmtBytes(a.used_bytes)} used (no quota)`,
  );
  const meter = quota ? h("meter", { min: 0, max: quota, value: a.used_bytes, "aria-label": "Storage used" }) : null;
  const list = h("ul", { class: "assets", "data-testid": "assets" });
  if (a.assets.length === 0) list.append(h("li", { class: "muted" }, "Nothing uploaded yet."));
  for (const x of a.assets) {
    const row = h("div", { class: "row" });
    const confirmRow = () => {
      clear(row);
      row.append(
        h("span", { class: "error" }, `Delete ${x.asset.filename} and its ${x.files} files for good?`),
        h(
          "button",
          {
            class: "btn danger",
            type: "button",
            onclick: async () => {
              try {
                const r = await d.session.call<{ freed_bytes: number }>("DELETE", `/api/v1/assets/${x.asset.id}`);
                toast(`Deleted ${x.asset.filename}: ${fmtBytes(r.freed_bytes)} freed`);
                d.render();
              } catch (e) {
                toast(`Not deleted: ${describe(e)}`, "error");
                plainRow();
              }
            },
          },
          "Yes, delete",
        ),
        h("button", { class: "btn ghost", type: "button", onclick: () => plainRow() }, "Cancel"),
      );
    };
    const plainRow = () => {
      clear(row);
      row.append(h("button", { class: "btn ghost", type: "button", "aria-label": `Delete ${x.asset.filename}`, onclick: confirmRow }, "Delete"));
    };
    plainRow();
    list.append(
      h(
        "li",
        { "data-asset-row": x.asset.id },
        h("div", {}, h("strong", {}, x.asset.filename), h("span", { class: "muted" }, ` · ${KIND_LABEL[x.asset.kind]} · ${x.asset.stage} · ${fmtBytes(x.stored_bytes)} stored in ${x.files} files`)),
        row,
      ),
    );
  }
  return h("section", { class: "card" }, h("h2", {}, "My uploads and storage"), usage, meter, list);
}
