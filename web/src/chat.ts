// Chat (docs/PROTOCOL.md §8): ChatPanel shows one thread (the newest
// messages, older ones paged with `history` when scrolled to the top),
// applies edits and deletions, shows who is typing and, on my messages,
// delivered/read marks from the members' cursors; it marks what arrives as
// delivered, and as read while it is visible (an unread count otherwise).
// ThreadPage is the full-page view of a thread at /app/thread/{id}; the
// review workspace embeds a ChatPanel for its room's thread (roomchat.ts).

import type { Attachment, ChalktalkClient, Cursor, Message, ThreadInfo } from "@chalktalk/client";
import { describe, type Session } from "./api.js";
import { attachmentView, attachPicker, type LibraryVideo } from "./attach.js";
import { libraryOf, threadName } from "./home.js";
import { clear, h, toast } from "./ui.js";

export interface ChatDeps {
  client: ChalktalkClient;
  me: string;
  thread: string;
  host: HTMLElement;
  /** The unread count changed (messages of others after my read cursor). */
  onUnread?: (n: number) => void;
  onInfo?: (t: ThreadInfo) => void;
  /** My videos, to attach one to a message. */
  videos?: () => Promise<LibraryVideo[]>;
}

const PAGE = 30;

export class ChatPanel {
  private c: ChalktalkClient;
  private me: string;
  readonly thread: string;
  info: ThreadInfo | null = null;
  private msgs = new Map<number, Message>(); // originals (no edit/delete messages)
  private edited = new Set<number>();
  private deleted = new Set<number>();
  private early = new Map<number, Message[]>(); // edits seen before their target
  private cursors = new Map<string, Cursor>();
  private head = 0;
  private oldest = Infinity;
  private loadingOlder = false;
  private visible = true;
  private typingUsers = new Map<string, ReturnType<typeof setTimeout>>();
  private typingSent = 0;
  private typingIdle: ReturnType<typeof setTimeout> | undefined;
  private markTimer: ReturnType<typeof setTimeout> | undefined;
  private offs: (() => void)[] = [];
  private closed = false;
  private lastUnread = -1;

  private list!: HTMLOListElement;
  private scroller!: HTMLElement;
  private olderBtn!: HTMLButtonElement;
  private typingEl!: HTMLElement;
  private announce!: HTMLElement;
  private input!: HTMLTextAreaElement;
  private picker: ReturnType<typeof attachPicker> | null = null;

  constructor(private d: ChatDeps) {
    this.c = d.client;
    this.me = d.me;
    this.thread = d.thread;
  }

  async open(): Promise<void> {
    this.build();
    const c = this.c;
    this.offs.push(
      c.on("thread_opened", (t, cursors) => {
        if (t.id !== this.thread) return;
        this.setInfo(t);
        for (const cur of cursors) this.cursors.set(cur.user, cur);
        this.render();
      }),
      c.on("msg", (thread, m) => thread === this.thread && this.onMsg(m)),
      c.on("thread_live", (thread, ev) => {
        if (thread !== this.thread) return;
        if (ev.k === "cursor") {
          this.cursors.set(ev.cursor.user, ev.cursor);
          this.render();
        } else if (ev.user !== this.me) {
          clearTimeout(this.typingUsers.get(ev.user));
          if (ev.on) this.typingUsers.set(ev.user, setTimeout(() => this.stopTyping(ev.user), 7000));
          else this.typingUsers.delete(ev.user);
          this.renderTyping();
        }
      }),
    );
    document.addEventListener("visibilitychange", this.onVisibility);
    try {
      this.setInfo(await c.openThread(this.thread));
      this.render(true);
      this.scheduleMark();
    } catch (e) {
      clear(this.list);
      this.list.append(h("li", { class: "error", role: "alert" }, `This chat cannot be opened: ${describe(e)}`));
    }
  }

  close(): void {
    this.closed = true;
    this.offs.forEach((f) => f());
    document.removeEventListener("visibilitychange", this.onVisibility);
    clearTimeout(this.markTimer);
    if (this.typingSent) this.c.typing(this.thread, false);
    void this.c.closeThread(this.thread).catch(() => {});
  }

  /** Shown (read as it arrives) or hidden (counted as unread). */
  setVisible(v: boolean): void {
    this.visible = v;
    if (v) {
      this.render(true);
      this.scheduleMark();
    }
  }

  /** A room thread's members follow its room's (roomchat.ts): who the
   * delivered and read marks wait for. */
  setMembers(members: string[]): void {
    if (!this.info) return;
    this.info = { ...this.info, members: [...members].sort() };
    this.render();
  }

  unread(): number {
    const read = this.cursors.get(this.me)?.read ?? 0;
    let n = 0;
    for (const m of this.msgs.values()) if (m.seq > read && m.from !== this.me && !this.deleted.has(m.seq)) n++;
    return n;
  }

  // --- state -------------------------------------------------------------------

  private setInfo(t: ThreadInfo): void {
    this.info = t;
    this.head = Math.max(this.head, t.head);
    this.d.onInfo?.(t);
  }

  private onMsg(m: Message): void {
    this.head = Math.max(this.head, m.seq);
    const fresh = !m.edit && !this.msgs.has(m.seq);
    this.apply(m);
    this.render(m.from === this.me || this.nearBottom());
    if (fresh && m.from !== this.me && this.visible) this.announce.textContent = `${m.from}: ${m.text}`;
    if (m.from !== this.me) this.scheduleMark();
  }

  private apply(m: Message): void {
    if (m.edit) {
      const target = this.msgs.get(m.edit.of);
      if (!target) {
        this.early.set(m.edit.of, [...(this.early.get(m.edit.of) ?? []), m]);
        return;
      }
      if (m.edit.k === "delete") {
        this.deleted.add(m.edit.of);
        target.text = "";
        target.attachments = [];
      } else if (!this.deleted.has(m.edit.of)) {
        this.edited.add(m.edit.of);
        target.text = m.text;
      }
      return;
    }
    if (this.msgs.has(m.seq)) return;
    this.msgs.set(m.seq, { ...m });
    this.oldest = Math.min(this.oldest, m.seq);
    // Edits of it that came first (paging backwards), in seq order.
    const later = (this.early.get(m.seq) ?? []).sort((a, b) => a.seq - b.seq);
    this.early.delete(m.seq);
    later.forEach((e) => this.apply(e));
  }

  private onVisibility = (): void => {
    if (document.visibilityState === "visible") this.scheduleMark();
  };

  /** Delivered for everything that arrived; read too while visible. */
  private scheduleMark(): void {
    clearTimeout(this.markTimer);
    this.markTimer = setTimeout(() => {
      if (this.closed || this.head === 0) return;
      const mine = this.cursors.get(this.me);
      const reading = this.visible && document.visibilityState === "visible";
      if (reading && (mine?.read ?? 0) < this.head) void this.c.mark(this.thread, { read: this.head }).catch(() => {});
      else if (!reading && (mine?.delivered ?? 0) < this.head) void this.c.mark(this.thread, { delivered: this.head }).catch(() => {});
    }, 150);
  }

  private async loadOlder(): Promise<void> {
    if (this.loadingOlder || !(this.oldest > 1) || this.oldest === Infinity) return;
    this.loadingOlder = true;
    this.olderBtn.disabled = true;
    const before = this.scroller.scrollHeight - this.scroller.scrollTop;
    try {
      const r = await this.c.history(this.thread, PAGE, this.oldest);
      // Newest first, so an edit is known before its target arrives.
      for (const m of [...r.messages].reverse()) this.apply(m);
      if (r.messages.length) this.oldest = Math.min(this.oldest, r.messages[0].seq);
      if (!r.more) this.oldest = Math.min(this.oldest, 1);
      this.render();
      this.scroller.scrollTop = this.scroller.scrollHeight - before;
    } catch (e) {
      toast(`Older messages: ${describe(e)}`, "error");
    } finally {
      this.loadingOlder = false;
      this.olderBtn.disabled = false;
    }
  }

  // --- view --------------------------------------------------------------------

  private build(): void {
    const host = this.d.host;
    clear(host);
    // The list is re-rendered whole; screen readers hear new messages
    // from others through a separate live region instead.
    this.list = h("ol", { class: "msgs", "aria-label": "Messages", "data-testid": "messages" });
    this.announce = h("div", { class: "sr-only", "aria-live": "polite" });
    this.olderBtn = h("button", { class: "btn ghost older", type: "button", onclick: () => void this.loadOlder() }, "Load older messages");
    this.scroller = h("div", { class: "msgscroll" }, this.olderBtn, this.list);
    this.scroller.addEventListener("scroll", () => {
      if (this.scroller.scrollTop < 40) void this.loadOlder();
    });
    this.typingEl = h("div", { class: "typing muted", "aria-live": "polite", "data-testid": "typing" });
    this.input = h("textarea", { rows: 1, maxlength: 4000, placeholder: "Message", "aria-label": "Message", "data-testid": "chat-input" });
    this.input.addEventListener("input", () => this.onInput());
    this.input.addEventListener("keydown", (e) => {
      if (e.key === "Enter" && !e.shiftKey) {
        e.preventDefault();
        void this.sendNow();
      }
    });
    const form = h(
      "form",
      { class: "composer", onsubmit: (e: Event) => (e.preventDefault(), void this.sendNow()) },
      this.input,
      h("button", { class: "btn primary", type: "submit" }, "Send"),
    );
    if (this.d.videos) {
      this.picker = attachPicker(this.d.videos);
      form.prepend(this.picker.el);
    }
    host.append(h("div", { class: "chat" }, this.scroller, this.typingEl, form, this.announce));
  }

  private onInput(): void {
    const now = Date.now();
    if (this.input.value.trim() && now - this.typingSent > 3000) {
      this.typingSent = now;
      this.c.typing(this.thread, true);
    }
    clearTimeout(this.typingIdle);
    this.typingIdle = setTimeout(() => this.stopMyTyping(), 2500);
  }

  private stopMyTyping(): void {
    clearTimeout(this.typingIdle);
    if (this.typingSent) this.c.typing(this.thread, false);
    this.typingSent = 0;
  }

  private async sendNow(): Promise<void> {
    const text = this.input.value.trim();
    const att = this.picker?.value() ?? null;
    if (!text && !att) return;
    if (new TextEncoder().encode(text).length > 4000) return toast("A message is limited to 4000 bytes", "error");
    this.input.value = "";
    this.picker?.reset();
    this.stopMyTyping();
    try {
      await this.c.send(this.thread, text, { attachments: att ? [att] : [] });
    } catch (e) {
      this.input.value = text;
      toast(`Not sent: ${describe(e)}`, "error");
    }
  }

  private stopTyping(user: string): void {
    this.typingUsers.delete(user);
    this.renderTyping();
  }

  private renderTyping(): void {
    const who = [...this.typingUsers.keys()];
    this.typingEl.textContent = who.length === 0 ? "" : `${who.join(", ")} ${who.length === 1 ? "is" : "are"} typing…`;
  }

  private nearBottom(): boolean {
    const s = this.scroller;
    return s.scrollHeight - s.scrollTop - s.clientHeight < 60;
  }

  /** My message's mark from the other members' cursors. */
  private status(seq: number): { key: string; text: string } {
    const others = (this.info?.members ?? []).filter((m) => m !== this.me);
    if (others.length === 0) return { key: "sent", text: "Sent" };
    const read = others.filter((u) => (this.cursors.get(u)?.read ?? 0) >= seq).length;
    const delivered = others.filter((u) => (this.cursors.get(u)?.delivered ?? 0) >= seq).length;
    if (read === others.length) return { key: "read", text: "✓✓ Read" };
    if (read > 0) return { key: "read-some", text: `✓✓ Read by ${read} of ${others.length}` };
    if (delivered === others.length) return { key: "delivered", text: "✓ Delivered" };
    return { key: "sent", text: "Sent" };
  }

  private render(toBottom = false): void {
    if (this.closed || !this.list) return;
    const focused = this.editing !== null && this.list.contains(document.activeElement);
    clear(this.list);
    this.olderBtn.hidden = !(this.oldest > 1 && this.oldest !== Infinity);
    const sorted = [...this.msgs.values()].sort((a, b) => a.seq - b.seq);
    if (sorted.length === 0) this.list.append(h("li", { class: "muted" }, "No messages yet: say hello."));
    for (const m of sorted) this.list.append(this.item(m));
    if (focused) this.list.querySelector<HTMLInputElement>("li.msg form input")?.focus();
    if (toBottom && this.visible) this.scroller.scrollTop = this.scroller.scrollHeight;
    const n = this.unread();
    if (n !== this.lastUnread) {
      this.lastUnread = n;
      this.d.onUnread?.(n);
    }
  }

  private item(m: Message): HTMLElement {
    const mine = m.from === this.me;
    const del = this.deleted.has(m.seq);
    const st = mine && !del ? this.status(m.seq) : null;
    const text = h("p", { class: "text" }, del ? "message deleted" : m.text);
    if (del) text.classList.add("muted");
    const li = h(
      "li",
      { class: `msg${mine ? " mine" : ""}`, "data-seq": m.seq, "data-status": st?.key },
      h("div", { class: "from muted" }, mine ? "you" : m.from, " · ", new Date(m.at_ms).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" }), this.edited.has(m.seq) && !del ? " · edited" : ""),
      text,
      del ? null : (m.attachments ?? []).map((a, i) => this.attachment(m.seq, i, a)),
      st ? h("div", { class: "mark", "data-testid": "mark" }, st.text) : null,
    );
    if (mine && !del && this.editing?.seq === m.seq) {
      text.replaceWith(this.editForm(m));
    } else if (mine && !del) {
      li.append(
        h(
          "div",
          { class: "row acts" },
          h("button", { class: "btn ghost small", type: "button", "aria-label": `Edit message ${m.seq}`, onclick: () => this.edit(m) }, "Edit"),
          this.confirming === m.seq
            ? h("button", { class: "btn ghost small danger", type: "button", "aria-label": `Delete message ${m.seq}: press again to confirm`, onclick: () => this.del(m) }, "Really delete?")
            : h("button", { class: "btn ghost small", type: "button", "aria-label": `Delete message ${m.seq}`, onclick: () => this.del(m) }, "Delete"),
        ),
      );
    }
    return li;
  }

  /** My message being edited (kept across re-renders) and its draft. */
  private editing: { seq: number; draft: string } | null = null;

  private editForm(m: Message): HTMLElement {
    const ed = this.editing!;
    const input = h("input", { type: "text", value: ed.draft, maxlength: 4000, "aria-label": "New text of the message" });
    input.addEventListener("input", () => (ed.draft = input.value));
    const done = () => {
      this.editing = null;
      this.render();
    };
    return h(
      "form",
      {
        class: "row",
        onsubmit: async (e: Event) => {
          e.preventDefault();
          const t = ed.draft.trim();
          done();
          if (!t || t === m.text) return;
          try {
            await this.c.editMessage(this.thread, m.seq, t);
          } catch (x) {
            toast(`Not edited: ${describe(x)}`, "error");
          }
        },
      },
      input,
      h("button", { class: "btn", type: "submit" }, "Save"),
      h("button", { class: "btn ghost", type: "button", onclick: done }, "Cancel"),
    );
  }

  /** Attachment views outlive re-renders (an opened video keeps playing). */
  private attViews = new Map<string, HTMLElement>();

  private attachment(seq: number, i: number, a: Attachment): HTMLElement {
    const key = `${seq}/${i}`;
    let el = this.attViews.get(key);
    if (!el) this.attViews.set(key, (el = attachmentView(this.c, a)));
    return el;
  }

  private edit(m: Message): void {
    this.editing = { seq: m.seq, draft: m.text };
    this.render();
    this.list.querySelector<HTMLInputElement>("li.msg form input")?.focus();
  }

  /** My message whose Delete was pressed once (kept across re-renders). */
  private confirming: number | null = null;
  private confirmTimer: ReturnType<typeof setTimeout> | undefined;

  private del(m: Message): void {
    clearTimeout(this.confirmTimer);
    if (this.confirming !== m.seq) {
      this.confirming = m.seq;
      this.confirmTimer = setTimeout(() => {
        this.confirming = null;
        this.render();
      }, 4000);
      this.render();
      return;
    }
    this.confirming = null;
    this.c.deleteMessage(this.thread, m.seq).catch((x) => toast(`Not deleted: ${describe(x)}`, "error"));
  }
}

/** A thread on its own page (/app/thread/{id}). */
export class ThreadPage {
  private panel: ChatPanel | null = null;
  constructor(private d: { client: ChalktalkClient; session: Session; me: string; thread: string; root: HTMLElement; back: () => void }) {}

  async open(): Promise<void> {
    const root = this.d.root;
    clear(root);
    const title = h("h1", {}, "Chat");
    const members = h("p", { class: "muted members-line" });
    const host = h("div", { class: "chathost" });
    root.append(
      h(
        "div",
        { class: "threadpage" },
        h("header", { class: "wsbar" }, h("button", { class: "btn ghost", type: "button", onclick: () => this.d.back(), "aria-label": "Back to home" }, "← Home"), title),
        members,
        host,
      ),
    );
    this.panel = new ChatPanel({
      client: this.d.client,
      me: this.d.me,
      thread: this.d.thread,
      host,
      videos: libraryOf(this.d.session),
      onInfo: (t) => {
        title.textContent = threadName(t, this.d.me);
        members.textContent = `${t.kind === "direct" ? "Direct chat" : "Group"} · ${t.members.map((m) => (m === this.d.me ? "you" : m)).join(", ")}`;
      },
    });
    await this.panel.open();
  }

  close(): void {
    this.panel?.close();
  }
}
