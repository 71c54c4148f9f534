// The chat of a review room: the room's own thread (kind `room`, PROTOCOL.md
// §8.1), one per room whatever its size, made by the server and asked for
// with `room_thread`. Its members follow the room's, so a member invited
// later reads its history and writes at once, and every member may write
// there whatever their plan (PROTOCOL.md, Permissions). RoomChat is the
// workspace's chat section: it finds the thread when the room is shown
// (retrying while a fresh invitation is still being recorded) and shows it
// in a ChatPanel that can be hidden (then what arrives counts as unread on
// the button).

import { ChalktalkError, type ChalktalkClient } from "@chalktalk/client";
import { describe, type Session } from "./api.js";
import { ChatPanel } from "./chat.js";
import { libraryOf } from "./home.js";
import { clear, h } from "./ui.js";

/** How long a member just invited waits for the server to record it. */
const NOT_MEMBER_RETRY_MS = [100, 250, 500, 1000, 2000];

/** The room's thread id; `not_member` is retried a few times (the room's
 * membership reaches its thread a moment after the invitation). */
export async function findRoomThread(client: ChalktalkClient, room: string): Promise<string> {
  for (let i = 0; ; i++) {
    try {
      return (await client.roomThread(room)).id;
    } catch (e) {
      const wait = NOT_MEMBER_RETRY_MS[i];
      if (!(e instanceof ChalktalkError && e.code === "not_member") || wait === undefined) throw e;
      await new Promise((r) => setTimeout(r, wait));
    }
  }
}

export class RoomChat {
  readonly el: HTMLElement;
  private host: HTMLElement;
  private toggle: HTMLButtonElement;
  private panel: ChatPanel | null = null;
  private shown = true;
  private lookup = 0;
  private closed = false;
  private members: string[] = [];

  constructor(private d: { session: Session; client: ChalktalkClient; me: string; room: string }) {
    this.host = h("div", { class: "chathost" }, h("p", { class: "muted" }, "Looking for the room's chat…"));
    this.toggle = h(
      "button",
      { class: "btn ghost", type: "button", "aria-expanded": "true", "data-testid": "chat-toggle", onclick: () => this.show(!this.shown) },
      "Hide",
    );
    this.el = h(
      "section",
      { class: "chatsec", "aria-label": "Room chat" },
      h("div", { class: "sechead" }, h("h2", {}, "Chat"), this.toggle),
      this.host,
    );
    this.renderToggle(0);
  }

  thread(): string | null {
    return this.panel?.thread ?? null;
  }

  /** The room was (re)loaded or its members changed: find its thread
   * unless it is shown already; its members are the room's. */
  update(members: string[]): void {
    this.members = [...members];
    if (this.panel) this.panel.setMembers(this.members);
    else if (this.members.includes(this.d.me)) void this.find();
  }

  close(): void {
    this.closed = true;
    this.lookup++;
    this.panel?.close();
  }

  private async find(): Promise<void> {
    const my = ++this.lookup;
    if (this.closed) return;
    const { session, client, me, room } = this.d;
    try {
      const id = await findRoomThread(client, room);
      if (my !== this.lookup || this.closed) return;
      if (this.panel?.thread === id) return;
      this.panel?.close();
      this.panel = new ChatPanel({ client, me, thread: id, host: this.host, onUnread: (n) => this.renderToggle(n), videos: libraryOf(session) });
      this.panel.setVisible(this.shown);
      await this.panel.open();
      if (this.members.length > 0) this.panel.setMembers(this.members);
    } catch (e) {
      if (my !== this.lookup) return;
      clear(this.host);
      this.host.append(h("p", { class: "error" }, `The chat cannot be shown: ${describe(e)}`));
    }
  }

  private show(on: boolean): void {
    this.shown = on;
    this.host.hidden = !on;
    this.toggle.setAttribute("aria-expanded", String(on));
    this.panel?.setVisible(on);
    this.renderToggle(this.panel?.unread() ?? 0);
  }

  private renderToggle(unread: number): void {
    const n = this.shown ? 0 : unread;
    clear(this.toggle);
    this.toggle.append(this.shown ? "Hide" : "Show");
    if (n > 0) this.toggle.append(" ", h("span", { class: "badge", "data-testid": "chat-unread" }, String(n)));
    this.toggle.setAttribute("aria-label", this.shown ? "Hide the chat" : `Show the chat${n ? `, ${n} unread` : ""}`);
  }
}
