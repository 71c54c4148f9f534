// The review workspace: the room's video (its file and quality in
// video.ts) and a canvas overlay in normalized coordinates anchored to
// video time, the drawing tools (toolbar.ts: pen streamed live with
// `points`, line, arrow, ellipse, rectangle, angle, text; select, move and
// delete of my own drawings, select.ts), undo/redo, presence,
// follow-the-leader playback (§7.10), voice-overs (voice.ts) and the
// room's chat (roomchat.ts). Everything goes through @chalktalk/client: the room state
// here is only what the server's effects say (§7.2).

import type {
  Annotation,
  ChalktalkClient,
  PlaybackState,
  Point,
  PresenceEntry,
  RoomEvent,
  RoomOp,
  RoomSnapshot,
  Style,
} from "@chalktalk/client";
import { describe, type Session } from "./api.js";
import { describeShape, paint, visibleAt, type Shape, type View } from "./draw.js";
import { RoomChat } from "./roomchat.js";
import { moved, outline, pick } from "./select.js";
import { clear, confirmButton, fmtTime, h, hue, initials, rand, toast } from "./ui.js";
import { buildToolbar, COLORS, TOOLS, type Tool } from "./toolbar.js";
import { VideoSource } from "./video.js";
import { VoiceOvers } from "./voice.js";

interface Live {
  user: string;
  style: Style;
  points: Point[];
  last: number;
}

export interface WorkspaceDeps {
  client: ChalktalkClient;
  session: Session;
  me: string;
  room: string;
  root: HTMLElement;
  back: () => void;
}

const clamp01 = (x: number) => Math.min(1, Math.max(0, x));

export class Workspace {
  private c: ChalktalkClient;
  private me: string;
  private room: string;
  private anns = new Map<string, Annotation>();
  private live = new Map<string, Live>();
  private presence: PresenceEntry[] = [];
  private members: string[] = [];
  private owner = "";
  private videoId = "";
  private aspect = 16 / 9;
  private fps = 30;
  private pb: PlaybackState | null = null;
  private tool: Tool = "pen";
  private style: Style = { color: COLORS[0].color, width: 0.006 };
  private hold: number | null = 3000;
  private offs: (() => void)[] = [];
  private timers: ReturnType<typeof setInterval>[] = [];
  private raf = 0;
  private closed = false;
  private dirty = true;
  private lastDrawnTime = -1;

  // drawing in progress
  private drag: { start: Point; cur: Point; id: string } | null = null;
  private pen: { id: string; t_ms: number; points: Point[]; pending: Point[]; batch: number } | null =
    null;
  private angle: Point[] = [];
  private hover: Point | null = null;
  // selection (the select tool): one of my annotations, maybe being moved
  private selected: string | null = null;
  private moving: { id: string; start: Point; cur: Point } | null = null;

  private voice!: VoiceOvers;
  private recBtn!: HTMLButtonElement;
  private delBtn!: HTMLButtonElement;
  private source!: VideoSource;
  private chat!: RoomChat;
  private clearBtn!: HTMLButtonElement;
  private leaveBtn!: HTMLButtonElement;

  // DOM
  private stage!: HTMLElement;
  private video!: HTMLVideoElement;
  private canvas!: HTMLCanvasElement;
  private ctx!: CanvasRenderingContext2D;
  private status!: HTMLElement;
  private avatars!: HTMLElement;
  private annList!: HTMLElement;
  private memberList!: HTMLElement;
  private toolButtons!: Map<Tool, HTMLButtonElement>;
  private playBtn!: HTMLButtonElement;
  private seek!: HTMLInputElement;
  private rateSel!: HTMLSelectElement;
  private timeLabel!: HTMLElement;
  private leaderLabel!: HTMLElement;
  private ownerPanel!: HTMLElement;
  private handSel!: HTMLSelectElement;
  private textForm!: HTMLFormElement;
  private textInput!: HTMLInputElement;
  private textAt: Point | null = null;

  constructor(private d: WorkspaceDeps) {
    this.c = d.client;
    this.me = d.me;
    this.room = d.room;
  }

  // --- lifecycle -----------------------------------------------------------

  async open(): Promise<void> {
    this.build();
    const c = this.c;
    this.offs.push(
      c.on("snapshot", (room, s) => room === this.room && this.onSnapshot(s)),
      c.on("room", (room, ev) => room === this.room && this.onEvent(ev)),
      c.on("live", (room, ev) => {
        if (room !== this.room) return;
        if (ev.k === "points") {
          if (ev.user === this.me) return;
          const key = `${ev.user}/${ev.stroke}`;
          const l = this.live.get(key) ?? { user: ev.user, style: ev.style, points: [], last: 0 };
          l.points.push(...ev.points);
          l.last = performance.now();
          this.live.set(key, l);
          this.dirty = true;
        } else if (ev.k === "presence") {
          this.presence = ev.members;
          this.renderPresence();
        }
      }),
      c.on("joined", (j) => {
        if (j.room !== this.room) return;
        this.presence = j.presence;
        this.renderPresence();
      }),
      c.on("state", (s) => this.renderConn(s)),
      c.on("resync", (room) => {
        if (room !== this.room) return;
        if (this.members.includes(this.me)) this.setStatus("catching up…");
      }),
      // Members of a room receive its video's progress: load it once
      // playable, and again from the full info once ready.
      c.on("media", (p) => {
        if (p.asset !== this.videoId) return;
        if ((p.playable || p.stage === "ready") && !this.video.currentSrc) {
          this.setStatus("");
          void this.source.load(this.videoId);
        } else if (p.stage === "ready") {
          void this.source.upgrade(this.videoId);
        }
      }),
    );
    this.renderConn(c.state);
    window.addEventListener("keydown", this.onKey);
    window.addEventListener("resize", this.onResize);
    this.timers.push(setInterval(() => this.syncPlayback(), 50));
    this.timers.push(
      setInterval(() => {
        // Live previews whose stroke never got committed (sender gone).
        const now = performance.now();
        for (const [k, l] of this.live) if (now - l.last > 4000) this.live.delete(k);
      }, 1000),
    );
    const loop = () => {
      if (this.closed) return;
      this.draw();
      this.raf = requestAnimationFrame(loop);
    };
    this.raf = requestAnimationFrame(loop);
    // Read-only probes for the browser tests and for support.
    (window as unknown as { chalktalkWorkspace: unknown }).chalktalkWorkspace = {
      expected: () => this.expected(),
      playback: () => this.pb,
      videoMs: () => this.video.currentTime * 1000,
      // The duration the seek bar maps (the asset's; an HLS stream's
      // element duration may differ by a few ms).
      durationMs: () => this.source.durationMs,
      annotations: () => [...this.anns.values()],
      liveStrokes: () => this.live.size,
      selected: () => this.selected,
      lastRecording: () => this.voice.last,
      chatThread: () => this.chat.thread(),
      videoId: () => this.videoId,
    };
    try {
      await c.joinRoom(this.room);
      this.setStatus("");
    } catch (e) {
      this.setStatus(`Could not join the room: ${describe(e)}`, true);
      return;
    }
    void this.source.load(this.videoId);
  }

  close(): void {
    this.closed = true;
    cancelAnimationFrame(this.raf);
    this.timers.forEach(clearInterval);
    this.offs.forEach((f) => f());
    window.removeEventListener("keydown", this.onKey);
    window.removeEventListener("resize", this.onResize);
    this.voice.close();
    this.chat.close();
    void this.c.leaveRoom(this.room).catch(() => {});
    this.video?.pause();
    this.source?.destroy();
  }

  // --- server state ------------------------------------------------------------

  private onSnapshot(s: RoomSnapshot): void {
    this.anns = new Map(s.annotations.map((a) => [a.id, a]));
    this.members = [...s.members];
    this.owner = s.owner;
    this.videoId = s.video_id;
    this.aspect = s.aspect > 0 ? s.aspect : 16 / 9;
    this.fps = s.fps || 30;
    this.stage.style.setProperty("--aspect", String(this.aspect));
    this.setPlayback(s.playback);
    this.renderMembers();
    this.renderList();
    this.onResize();
    this.voice.setAnnotations(this.anns.values());
    if (this.selected && !this.anns.has(this.selected)) this.select(null);
    this.dirty = true;
    this.chat.update(this.members);
  }

  private onEvent(ev: RoomEvent): void {
    for (const e of ev.effects) {
      switch (e.k) {
        case "put":
          this.anns.set(e.ann.id, e.ann);
          // The committed stroke replaces its live preview.
          this.live.delete(`${e.ann.author}/${e.ann.id}`);
          break;
        case "remove":
          this.anns.delete(e.id);
          break;
        case "playback":
          this.setPlayback(e.state);
          break;
        case "member":
          if (!this.members.includes(e.user)) this.members.push(e.user);
          this.renderMembers();
          this.chat.update(this.members);
          break;
        case "unmember":
          this.members = this.members.filter((m) => m !== e.user);
          this.renderMembers();
          this.chat.update(this.members);
          if (e.user === this.me) this.setStatus("You are no longer a member of this room.", true);
          break;
      }
    }
    this.voice.setAnnotations(this.anns.values());
    if (this.selected && !this.anns.has(this.selected)) this.select(null);
    this.renderList();
    this.dirty = true;
  }

  // --- layout ------------------------------------------------------------------

  private build(): void {
    const root = this.d.root;
    clear(root);
    this.video = h("video", {
      class: "video",
      playsinline: true,
      muted: true,
      preload: "auto",
      "aria-label": "Video under review",
    });
    this.video.muted = true;
    this.canvas = h("canvas", {
      class: "overlay",
      "aria-label": "Drawing surface over the video",
      role: "img",
      "data-testid": "overlay",
    });
    this.ctx = this.canvas.getContext("2d")!;
    this.textInput = h("input", {
      type: "text",
      maxlength: 280,
      placeholder: "Type, then Enter",
      "aria-label": "Text annotation",
    });
    this.textForm = h(
      "form",
      { class: "textform", hidden: true },
      this.textInput,
      h("button", { type: "submit", class: "btn" }, "Add"),
    );
    this.textInput.addEventListener("keydown", (e) => {
      if (e.key === "Escape") {
        this.textInput.value = "";
        this.commitText();
      }
    });
    this.textForm.addEventListener("submit", (e) => {
      e.preventDefault();
      this.commitText();
    });
    this.stage = h("div", { class: "stage" }, this.video, this.canvas, this.textForm);
    this.stage.style.setProperty("--aspect", String(this.aspect));

    this.canvas.addEventListener("pointerdown", this.onDown);
    this.canvas.addEventListener("pointermove", this.onMove);
    this.canvas.addEventListener("pointerup", this.onUp);
    this.canvas.addEventListener("pointercancel", this.onUp);
    this.canvas.addEventListener("pointerleave", () => {
      this.hover = null;
      this.dirty = true;
    });

    const bar = buildToolbar({
      setTool: (t) => this.setTool(t),
      undo: () => void this.sendOp({ k: "undo" }, "Nothing of yours to undo"),
      redo: () => void this.sendOp({ k: "redo" }, "Nothing to redo"),
      deleteSelected: () => this.deleteSelected(),
      setColor: (color) => (this.style = { ...this.style, color }),
      setHold: (ms) => (this.hold = ms),
      color: this.style.color,
    });
    const tools = bar.el;
    this.toolButtons = bar.toolButtons;
    this.delBtn = bar.delBtn;

    this.playBtn = h(
      "button",
      { class: "tool", type: "button", "aria-label": "Play (Space)", title: "Play / pause (Space)", onclick: () => this.togglePlay() },
      "▶",
    );
    this.seek = h("input", {
      type: "range",
      min: 0,
      max: 1000,
      step: 1,
      value: 0,
      class: "seek",
      "aria-label": "Seek",
    });
    this.seek.addEventListener("change", () => {
      const ms = (Number(this.seek.value) / 1000) * (this.source.durationMs || 0);
      this.sendOp({ k: "seek", position_ms: Math.round(ms) });
    });
    this.rateSel = h(
      "select",
      {
        "aria-label": "Playback speed",
        onchange: () => this.sendOp({ k: "rate", rate: Number(this.rateSel.value) }),
      },
      [0.25, 0.5, 1].map((r) => h("option", { value: r }, `${r}×`)),
    );
    this.timeLabel = h("span", { class: "time", "aria-live": "off" }, "0:00.00");
    // Quality: every member picks their own rendition (not a room op).
    this.source = new VideoSource({
      client: this.c,
      video: this.video,
      status: (t, e) => this.setStatus(t, e),
      loaded: () => this.syncPlayback(),
    });
    this.recBtn = h(
      "button",
      {
        class: "btn rec",
        type: "button",
        "aria-label": "Record a voice-over from this video time (M)",
        title: "Record a voice-over from this video time (M)",
        onclick: () => this.toggleRecord(),
      },
      "● Voice-over",
    );
    this.leaderLabel = h("span", { class: "leader" });
    const transport = h(
      "div",
      { class: "transport", role: "group", "aria-label": "Playback (the leader controls it for everyone)" },
      h("button", { class: "tool small", type: "button", "aria-label": "Previous frame (,)", title: "Previous frame (,)", onclick: () => this.sendOp({ k: "step", frames: -1 }) }, "−1f"),
      this.playBtn,
      h("button", { class: "tool small", type: "button", "aria-label": "Next frame (.)", title: "Next frame (.)", onclick: () => this.sendOp({ k: "step", frames: 1 }) }, "+1f"),
      this.seek,
      this.timeLabel,
      this.rateSel,
      this.leaderLabel,
    );
    const extras = h("div", { class: "extras" }, this.recBtn, this.source.select);

    this.status = h("div", { class: "status", role: "status" });
    this.avatars = h("ul", { class: "avatars", "aria-label": "Who is here" });
    this.annList = h("ul", { class: "annlist", "aria-label": "Annotations at this time", "data-testid": "annotations" });
    this.memberList = h("ul", { class: "members" });
    this.handSel = h("select", { "aria-label": "Hand playback control to" });
    const invite = h("input", { type: "text", placeholder: "athlete user id (u-…)", "aria-label": "User id to invite", required: true });
    this.ownerPanel = h(
      "div",
      { class: "owner" },
      h(
        "form",
        {
          class: "row",
          onsubmit: (e: Event) => {
            e.preventDefault();
            const user = invite.value.trim();
            if (!user) return;
            this.sendOp({ k: "invite", user }).then((ok) => {
              if (ok) {
                toast(`Invited ${user}`);
                invite.value = "";
              }
            });
          },
        },
        invite,
        h("button", { class: "btn", type: "submit" }, "Invite"),
      ),
    );
    const handForm = h(
      "form",
      {
        class: "row",
        onsubmit: (e: Event) => {
          e.preventDefault();
          if (this.handSel.value) this.sendOp({ k: "hand_over", to: this.handSel.value });
        },
      },
      this.handSel,
      h("button", { class: "btn", type: "submit" }, "Hand over"),
    );

    const header = h(
      "header",
      { class: "wsbar" },
      h("button", { class: "btn ghost", type: "button", onclick: () => this.d.back(), "aria-label": "Back to home" }, "← Home"),
      h("h1", {}, "Review"),
      this.avatars,
    );
    // The owner clears every drawing; a member other than the owner leaves.
    this.clearBtn = confirmButton("Clear all", "Really clear all?", "Clear every drawing of the room", () => {
      void this.sendOp({ k: "clear", range: null }).then((ok) => ok && toast("Cleared"));
    });
    this.clearBtn.hidden = true;
    this.leaveBtn = confirmButton("Leave this room", "Really leave?", "Leave this room", () => {
      void this.sendOp({ k: "leave" }).then((ok) => {
        if (ok) {
          toast("You left the room");
          this.d.back();
        }
      });
    });
    this.leaveBtn.hidden = true;
    this.chat = new RoomChat({ session: this.d.session, client: this.c, me: this.me, room: this.room });
    const side = h(
      "aside",
      { class: "side" },
      this.chat.el,
      h("section", {}, h("div", { class: "sechead" }, h("h2", {}, "On screen now"), this.clearBtn), this.annList),
      h("section", {}, h("h2", {}, "Members"), this.memberList, this.ownerPanel, handForm, this.leaveBtn),
      h(
        "section",
        { class: "keys" },
        h("h2", {}, "Keys"),
        h(
          "p",
          {},
          "V select (drag to move, Delete to delete, Esc to deselect) · P pen · L line · A arrow · E ellipse · R rectangle · G angle · T text · Ctrl+Z undo · Ctrl+Shift+Z redo · M record a voice-over · Space play/pause · , . frame step",
        ),
      ),
    );
    root.append(
      h(
        "div",
        { class: "workspace" },
        header,
        this.status,
        h("main", { class: "wsmain" }, h("div", { class: "stagecol" }, this.stage, transport, tools, extras), side),
      ),
    );
    this.setTool("pen");
    this.onResize();
    const audioHost = h("div", { hidden: true });
    root.append(audioHost);
    this.voice = new VoiceOvers({
      client: this.c,
      session: this.d.session,
      room: this.room,
      host: audioHost,
      now: () => this.nowMs(),
      status: (t) => this.setStatus(t),
    });
    this.voice.onChange = () => {
      const r = this.voice.recording;
      this.recBtn.textContent = r ? `■ Stop ${fmtTime(this.voice.elapsedMs()).slice(0, -3)}` : "● Voice-over";
      this.recBtn.classList.toggle("on", r);
      this.recBtn.setAttribute("aria-pressed", r ? "true" : "false");
      this.recBtn.setAttribute("aria-label", r ? "Stop recording the voice-over (M)" : "Record a voice-over from this video time (M)");
    };
  }

  // --- voice-overs -------------------------------------------------------------

  private toggleRecord(): void {
    if (this.voice.recording) this.voice.stop();
    else void this.voice.start();
  }

  private setStatus(text: string, error = false): void {
    this.status.textContent = text;
    this.status.className = `status${error ? " error" : ""}${text ? " show" : ""}`;
  }

  private renderConn(s: string): void {
    if (s === "open") this.setStatus("");
    else if (s === "reconnecting" || s === "connecting") this.setStatus("Offline: reconnecting… (your changes are kept and sent when back)");
  }

  private renderPresence(): void {
    clear(this.avatars);
    // One avatar per user (presence has one entry per device).
    const users = new Map<string, PresenceEntry[]>();
    for (const p of this.presence) users.set(p.user, [...(users.get(p.user) ?? []), p]);
    for (const [user, devs] of users) {
      const leader = this.pb?.leader === user;
      const connected = devs.some((d) => d.connected);
      const drawing = devs.some((d) => d.activity === "drawing");
      const who = user === this.me ? "you" : user;
      const doing = devs.map((d) => `${d.device}: ${d.connected ? d.activity : "disconnected"}`).join(", ");
      const title = `${who} (${doing})${leader ? ", leads playback" : ""}`;
      this.avatars.append(
        h(
          "li",
          {
            class: `avatar${connected ? "" : " away"}${leader ? " lead" : ""}`,
            title,
            "aria-label": title,
            style: `--h:${hue(user)}`,
            "data-user": user,
          },
          initials(user),
          drawing ? h("span", { class: "act", "aria-hidden": "true" }, "✎") : null,
          devs.length > 1 ? h("span", { class: "devs", "aria-hidden": "true" }, String(devs.length)) : null,
        ),
      );
    }
  }

  private renderMembers(): void {
    clear(this.memberList);
    clear(this.handSel);
    for (const m of this.members) {
      const tags = [m === this.me ? "you" : "", m === this.owner ? "owner" : "", m === this.pb?.leader ? "leader" : ""]
        .filter(Boolean)
        .join(", ");
      const remove =
        this.owner === this.me && m !== this.me
          ? confirmButton("Remove", "Really remove?", `Remove ${m} from the room`, () => {
              void this.sendOp({ k: "remove", user: m }).then((ok) => ok && toast(`Removed ${m}`));
            })
          : null;
      this.memberList.append(h("li", { "data-member": m }, h("code", {}, m), tags ? ` (${tags})` : "", remove ? " " : "", remove));
      if (m !== this.pb?.leader) this.handSel.append(h("option", { value: m }, m === this.me ? `${m} (you)` : m));
    }
    this.ownerPanel.hidden = this.owner !== this.me;
    this.leaveBtn.hidden = this.owner === this.me || !this.members.includes(this.me);
    this.clearBtn.hidden = this.owner !== this.me;
    const canHand = this.pb?.leader === this.me || this.owner === this.me;
    (this.handSel.parentElement as HTMLElement).hidden = !canHand || this.handSel.options.length === 0;
  }

  private renderList(): void {
    const t = this.nowMs();
    clear(this.annList);
    const vis = [...this.anns.values()].filter((a) => visibleAt(a, t));
    if (vis.length === 0) this.annList.append(h("li", { class: "muted" }, "Nothing drawn at this time"));
    for (const a of vis) {
      this.annList.append(
        h("li", { "data-id": a.id, "data-kind": a.shape.k }, describeShape(a.shape), h("span", { class: "muted" }, ` · ${fmtTime(a.t_ms)} · ${a.author === this.me ? "you" : a.author}`)),
      );
    }
  }

  private onResize = (): void => {
    const r = this.canvas.getBoundingClientRect();
    const dpr = window.devicePixelRatio || 1;
    const w = Math.max(1, Math.round(r.width * dpr));
    const hh = Math.max(1, Math.round(r.height * dpr));
    if (this.canvas.width !== w || this.canvas.height !== hh) {
      this.canvas.width = w;
      this.canvas.height = hh;
    }
    this.dirty = true;
  };

  // --- time and playback ---------------------------------------------------

  /** The video time shown, in ms. */
  private nowMs(): number {
    if (this.video && this.video.readyState > 0 && this.video.currentSrc) return this.video.currentTime * 1000;
    return this.expected();
  }

  /** Where playback should be now (§7.10). */
  private expected(): number {
    const pb = this.pb;
    if (!pb) return 0;
    let ms = pb.playing ? pb.position_ms + (this.c.serverNow() - pb.at_server_ms) * pb.rate : pb.position_ms;
    if (this.source.durationMs > 0) ms = Math.min(ms, this.source.durationMs);
    return Math.max(0, ms);
  }

  private setPlayback(pb: PlaybackState): void {
    this.pb = pb;
    const leader = pb.leader === this.me;
    this.playBtn.textContent = pb.playing ? "❚❚" : "▶";
    this.playBtn.setAttribute("aria-label", pb.playing ? "Pause (Space)" : "Play (Space)");
    this.rateSel.value = String(pb.rate);
    for (const el of this.stage.parentElement!.querySelectorAll<HTMLElement>(".transport button, .transport input, .transport select")) {
      (el as HTMLButtonElement).disabled = !leader;
    }
    this.leaderLabel.textContent = leader ? "You lead playback" : `Following ${pb.leader}`;
    this.renderMembers();
    this.renderPresence();
    this.syncPlayback();
  }

  /** Keeps the local video on the shared clock: rate, play/pause, and a
   * seek when it drifts (a small drift is absorbed by the rate). */
  private syncPlayback(): void {
    const v = this.video;
    const pb = this.pb;
    if (!pb) return;
    const exp = this.expected();
    this.timeLabel.textContent = fmtTime(exp);
    if (this.source.durationMs > 0 && document.activeElement !== this.seek) {
      this.seek.value = String(Math.round((exp / this.source.durationMs) * 1000));
    }
    if (!v.currentSrc || v.readyState < 1) return;
    const atEnd = this.source.durationMs > 0 && exp >= this.source.durationMs - 1;
    // A rendition may end a few ms before the asset's duration: past its
    // own end the element rests on its last frame. Compared with `exp`
    // itself, the clamped time would look like drift and a seek every tick
    // would keep the frame from ever being decoded.
    const end = Number.isFinite(v.duration) && v.duration > 0 ? v.duration * 1000 : Infinity;
    const target = Math.min(exp, end);
    const diff = v.currentTime * 1000 - target;
    // While a seek runs, currentTime is its target: a new seek would only
    // restart it (a slow device would never show a frame).
    const seek = () => {
      if (!v.seeking) v.currentTime = target / 1000;
    };
    if (pb.playing && !atEnd && target < end) {
      if (Math.abs(diff) > 80) {
        seek();
        v.playbackRate = pb.rate;
      } else {
        // Absorb small drift within a few hundred ms.
        const nudge = Math.max(-0.2, Math.min(0.2, -diff / 500));
        v.playbackRate = Math.max(0.0625, pb.rate * (1 + nudge));
      }
      if (v.paused) v.play().catch(() => {});
    } else {
      if (!v.paused) v.pause();
      v.playbackRate = pb.rate;
      if (Math.abs(diff) > 15) seek();
    }
    this.voice.sync(pb, v.currentTime * 1000);
    const t = Math.round(v.currentTime * 1000);
    if (t !== this.lastDrawnTime) {
      this.lastDrawnTime = t;
      this.dirty = true;
      this.renderList();
    }
  }

  private togglePlay(): void {
    if (!this.pb) return;
    const pos = Math.round(this.expected());
    if (this.pb.playing) void this.sendOp({ k: "pause", position_ms: pos });
    else {
      const start = this.source.durationMs > 0 && pos >= this.source.durationMs - 50 ? 0 : pos;
      void this.sendOp({ k: "play", position_ms: start });
    }
  }

  // --- ops -------------------------------------------------------------------

  private async sendOp(op: RoomOp, conflictText?: string): Promise<boolean> {
    try {
      await this.c.op(this.room, op);
      return true;
    } catch (e) {
      const code = (e as { code?: string }).code;
      if (code === "conflict" && conflictText) toast(conflictText);
      else toast(`Not done: ${describe(e)}`, "error");
      return false;
    }
  }

  private add(shape: Shape, id = rand("n-"), t_ms?: number): void {
    const t = Math.round(t_ms ?? this.nowMs());
    const ann: Annotation = { id, t_ms: Math.max(0, t), style: { ...this.style }, shape };
    if (this.hold !== null) ann.dur_ms = this.hold;
    // Shown at once (the server's put replaces it; a refusal removes it).
    this.anns.set(id, { ...ann, author: this.me });
    this.dirty = true;
    this.sendOp({ k: "add", ann }).then((ok) => {
      if (!ok) {
        this.anns.delete(id);
        this.dirty = true;
      }
    });
  }

  // --- input -------------------------------------------------------------------

  private select(id: string | null): void {
    this.selected = id;
    this.delBtn.disabled = id === null;
    this.dirty = true;
  }

  private deleteSelected(): void {
    const id = this.selected;
    if (!id) return;
    this.select(null);
    void this.sendOp({ k: "delete", id });
  }

  /** My annotations visible now, in paint order (select picks among them). */
  private mine(): Annotation[] {
    const t = this.nowMs();
    return [...this.anns.values()].filter((a) => a.author === this.me && a.shape.k !== "voice_over" && visibleAt(a, t));
  }

  private view(): View {
    return { ctx: this.ctx, w: this.canvas.width, h: this.canvas.height };
  }

  private setTool(t: Tool): void {
    if (t !== "select") this.select(null);
    this.tool = t;
    this.angle = [];
    this.drag = null;
    this.textForm.hidden = true;
    for (const [k, b] of this.toolButtons) b.setAttribute("aria-pressed", k === t ? "true" : "false");
    this.canvas.dataset.tool = t;
    this.dirty = true;
  }

  private onKey = (e: KeyboardEvent): void => {
    const target = e.target as HTMLElement;
    if (target && (target.tagName === "INPUT" || target.tagName === "SELECT" || target.tagName === "TEXTAREA")) return;
    const k = e.key.toLowerCase();
    if ((e.ctrlKey || e.metaKey) && k === "z") {
      e.preventDefault();
      if (e.shiftKey) void this.sendOp({ k: "redo" }, "Nothing to redo");
      else void this.sendOp({ k: "undo" }, "Nothing of yours to undo");
      return;
    }
    if ((e.ctrlKey || e.metaKey) && k === "y") {
      e.preventDefault();
      void this.sendOp({ k: "redo" }, "Nothing to redo");
      return;
    }
    if (e.ctrlKey || e.metaKey || e.altKey) return;
    if ((k === "delete" || k === "backspace") && this.selected) {
      e.preventDefault();
      this.deleteSelected();
      return;
    }
    if (k === "escape" && this.selected) return this.select(null);
    if (k === "m") return this.toggleRecord();
    const tool = TOOLS.find((t) => t.key === k);
    if (tool) {
      this.setTool(tool.tool);
      return;
    }
    if (this.pb?.leader !== this.me) return;
    if (k === " ") {
      e.preventDefault();
      this.togglePlay();
    } else if (k === ",") void this.sendOp({ k: "step", frames: -1 });
    else if (k === ".") void this.sendOp({ k: "step", frames: 1 });
  };

  private pt(e: PointerEvent): Point {
    const r = this.canvas.getBoundingClientRect();
    return [clamp01((e.clientX - r.left) / r.width), clamp01((e.clientY - r.top) / r.height)];
  }

  private onDown = (e: PointerEvent): void => {
    if (e.button !== 0 && e.pointerType === "mouse") return;
    e.preventDefault();
    const p = this.pt(e);
    this.canvas.setPointerCapture?.(e.pointerId);
    switch (this.tool) {
      case "select": {
        const v = this.view();
        const dpr = window.devicePixelRatio || 1;
        // A finger is wider than a mouse pointer.
        const tol = (e.pointerType === "mouse" ? 8 : 16) * dpr;
        const hit = pick(v, this.mine(), [p[0] * v.w, p[1] * v.h], tol);
        this.select(hit?.id ?? null);
        if (hit) this.moving = { id: hit.id, start: p, cur: p };
        break;
      }
      case "pen": {
        const id = rand("s-");
        this.pen = { id, t_ms: Math.round(this.nowMs()), points: [p], pending: [p], batch: 0 };
        this.c.activity(this.room, "drawing");
        this.flushPen();
        break;
      }
      case "angle":
        this.angle.push(p);
        if (this.angle.length === 3) {
          const [a, v, b] = this.angle;
          this.angle = [];
          if (same(a, v) || same(b, v)) toast("An angle needs three different points", "error");
          else this.add({ k: "angle", a, v, b, deg: 0 });
        }
        break;
      case "text":
        this.textAt = p;
        this.textForm.hidden = false;
        this.textForm.style.left = `${p[0] * 100}%`;
        this.textForm.style.top = `${p[1] * 100}%`;
        this.textInput.value = "";
        setTimeout(() => this.textInput.focus(), 0);
        break;
      default:
        this.drag = { start: p, cur: p, id: rand("n-") };
    }
    this.dirty = true;
  };

  private onMove = (e: PointerEvent): void => {
    const p = this.pt(e);
    this.hover = p;
    if (this.pen) {
      const evs = typeof e.getCoalescedEvents === "function" ? e.getCoalescedEvents() : [];
      const pts = evs.length ? evs.map((x) => this.pt(x)) : [p];
      this.pen.points.push(...pts);
      this.pen.pending.push(...pts);
      this.flushPen();
    } else if (this.drag) {
      this.drag.cur = p;
    } else if (this.moving) {
      this.moving.cur = p;
    }
    this.dirty = true;
  };

  private onUp = (e: PointerEvent): void => {
    if (this.moving) {
      const m = this.moving;
      this.moving = null;
      const a = this.anns.get(m.id);
      const dx = m.cur[0] - m.start[0];
      const dy = m.cur[1] - m.start[1];
      if (a && Math.hypot(dx * this.canvas.width, dy * this.canvas.height) >= 2) {
        const ann: Annotation = { ...a, shape: moved(this.view(), a.shape, dx, dy) };
        delete ann.author;
        const before = a;
        // Shown moved at once; the server's put confirms it, a refusal undoes it.
        this.anns.set(a.id, { ...ann, author: this.me });
        void this.sendOp({ k: "update", ann }).then((ok) => {
          if (!ok) this.anns.set(before.id, before);
          this.dirty = true;
        });
      }
    } else if (this.pen) {
      const pen = this.pen;
      this.pen = null;
      this.flushPen(pen);
      this.c.activity(this.room, "watching");
      let pts = pen.points;
      const max = this.c.welcome?.limits.max_points_per_stroke ?? 4096;
      if (pts.length > max) {
        const step = pts.length / max;
        pts = Array.from({ length: max }, (_, i) => pts[Math.floor(i * step)]);
      }
      this.add({ k: "stroke", points: pts }, pen.id, pen.t_ms);
    } else if (this.drag) {
      const { start: a, cur: b, id } = this.drag;
      this.drag = null;
      const r = this.canvas.getBoundingClientRect();
      if (Math.hypot((b[0] - a[0]) * r.width, (b[1] - a[1]) * r.height) < 4) {
        this.dirty = true;
        return;
      }
      const shape = this.dragShape(a, b);
      if (shape) this.add(shape, id);
    }
    if (e.pointerType !== "mouse") this.hover = null;
    this.dirty = true;
  };

  /** Sends the points not sent yet (a batch of at most 256). */
  private flushPen(pen = this.pen): void {
    if (!pen || pen.pending.length === 0) return;
    const max = this.c.welcome?.limits.max_points_per_batch ?? 256;
    while (pen.pending.length) {
      const batch = pen.pending.splice(0, max);
      this.c.points(this.room, pen.id, pen.batch++, pen.t_ms, batch, this.style);
    }
  }

  private dragShape(a: Point, b: Point): Shape | null {
    switch (this.tool) {
      case "line":
        return { k: "line", a, b };
      case "arrow":
        return { k: "arrow", a, b };
      case "rect":
        return { k: "rect", a, b };
      case "ellipse": {
        // Dragged from the centre; radii are fractions of the frame height.
        const rx = Math.min(1, Math.abs(b[0] - a[0]) * this.aspect);
        const ry = Math.min(1, Math.abs(b[1] - a[1]));
        if (rx <= 0 || ry <= 0) return null;
        return { k: "ellipse", c: a, rx, ry };
      }
      default:
        return null;
    }
  }

  private commitText(): void {
    const text = this.textInput.value.trim();
    const at = this.textAt;
    this.textInput.blur();
    this.textForm.hidden = true;
    this.textAt = null;
    if (!text || !at) return;
    if (new TextEncoder().encode(text).length > 280) {
      toast("Text is limited to 280 bytes", "error");
      return;
    }
    this.add({ k: "text", at, text, size: 0.05 });
  }

  // --- painting ----------------------------------------------------------------

  private draw(): void {
    if (!this.dirty && this.live.size === 0 && !this.pen && !this.moving) return;
    this.dirty = false;
    const v: View = { ctx: this.ctx, w: this.canvas.width, h: this.canvas.height };
    const t = this.nowMs();
    this.ctx.clearRect(0, 0, v.w, v.h);
    for (const a of this.anns.values()) {
      if (visibleAt(a, t)) paint(v, a.shape, a.style ?? this.style);
    }
    for (const l of this.live.values()) paint(v, { k: "stroke", points: l.points }, l.style);
    if (this.pen) paint(v, { k: "stroke", points: this.pen.points }, this.style);
    if (this.drag) {
      const s = this.dragShape(this.drag.start, this.drag.cur);
      if (s) paint(v, s, this.style, 0.8);
    }
    const sel = this.selected ? this.anns.get(this.selected) : undefined;
    if (sel && visibleAt(sel, t)) {
      let shape = sel.shape;
      if (this.moving) {
        shape = moved(v, shape, this.moving.cur[0] - this.moving.start[0], this.moving.cur[1] - this.moving.start[1]);
        paint(v, shape, sel.style ?? this.style, 0.6);
      }
      outline(v, shape);
    }
    if (this.angle.length > 0) {
      const pts = [...this.angle, ...(this.hover ? [this.hover] : [])];
      if (pts.length === 1) paint(v, { k: "stroke", points: pts }, this.style, 0.8);
      else if (pts.length === 2) paint(v, { k: "line", a: pts[0], b: pts[1] }, this.style, 0.8);
      else paint(v, { k: "angle", a: pts[0], v: pts[1], b: pts[2], deg: 0 }, this.style, 0.8);
    }
  }
}

function same(a: Point, b: Point): boolean {
  return Math.abs(a[0] - b[0]) < 1e-4 && Math.abs(a[1] - b[1]) < 1e-4;
}
