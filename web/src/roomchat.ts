// The chat of a review room. The protocol ties no thread to a room and a
// group thread's members are fixed when it is created (PROTOCOL.md §8.1),
// so the app agrees on one. A room of two (a coach and their athlete, the
// usual review) uses the direct thread of those two: its id is
// deterministic, either side may create it, and it is the only kind a paid
// athlete may write in (PROTOCOL.md, Permissions: free athletes send
// nothing, paid ones direct threads with their coach). A bigger room uses
// the group thread titled "Review chat · <room id>" that has every current
// member, the newest such one; the room's owner creates it when there is
// none (the others are told by an `added_to_thread` notice), and again
// after an invitation, and the panel moves to it (the older one stays
// listed on the home screen). RoomChat is the workspace's chat section:
// it finds the thread as the room's members change and shows it in a
// ChatPanel that can be hidden (then what arrives counts as unread on the
// button).

import type { ChalktalkClient } from "@chalktalk/client";
import { describe, type Session } from "./api.js";
import { ChatPanel } from "./chat.js";
import { libraryOf, ROOM_THREAD_PREFIX, type ThreadRow } from "./home.js";
import { clear, h } from "./ui.js";

export function roomThreadTitle(room: string): string {
  return ROOM_THREAD_PREFIX + room;
}

/** The room's thread id, created by the owner when missing; null when
 * there is none yet (or the room has only its owner). */
export async function findRoomThread(
  session: Session,
  client: ChalktalkClient,
  me: string,
  room: string,
  owner: string,
  members: string[],
): Promise<string | null> {
  const title = roomThreadTitle(room);
  const r = await session.call<{ threads: ThreadRow[] }>("GET", "/api/v1/me/threads");
  if (members.length === 2 && members.includes(me)) {
    const same = (t: ThreadRow) => t.thread.kind === "direct" && members.every((m) => t.thread.members.includes(m));
    const found = r.threads.find(same);
    if (found) return found.thread.id;
    try {
      return (await client.createThread("direct", members)).id;
    } catch {
      return null; // not allowed to start one: the other side may
    }
  }
  // Newest first (by last message, else creation).
  const mine = r.threads.filter((t) => t.thread.kind === "group" && t.thread.title === title);
  const full = mine.find((t) => members.every((m) => t.thread.members.includes(m)));
  if (full) return full.thread.id;
  if (me === owner && members.length >= 2) {
    const t = await client.createThread("group", members, title);
    return t.id;
  }
  return mine[0]?.thread.id ?? null;
}

export class RoomChat {
  readonly el: HTMLElement;
  private host: HTMLElement;
  private toggle: HTMLButtonElement;
  private panel: ChatPanel | null = null;
  private shown = true;
  private lookup = 0;
  private owner = "";
  private members: string[] = [];
  private closed = false;

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

  /** The room's owner and members (snapshot, invitations). */
  update(owner: string, members: string[]): void {
    this.owner = owner;
    this.members = [...members];
    void this.find();
  }

  /** An `added_to_thread` notice: maybe the room's thread was just made. */
  noticed(): void {
    if (!this.panel && this.owner) void this.find();
  }

  close(): void {
    this.closed = true;
    this.lookup++;
    this.panel?.close();
  }

  private async find(): Promise<void> {
    const my = ++this.lookup;
    if (!this.owner || this.closed) return;
    const { session, client, me, room } = this.d;
    try {
      const id = await findRoomThread(session, client, me, room, this.owner, this.members);
      if (my !== this.lookup || this.closed) return;
      if (!id) {
        clear(this.host);
        this.host.append(
          h("p", { class: "muted" }, this.members.length < 2 ? "Invite someone to chat here." : "No chat yet: it starts when a member whose plan allows starting one opens the room."),
        );
        return;
      }
      if (this.panel?.thread === id) return;
      this.panel?.close();
      this.panel = new ChatPanel({ client, me, thread: id, host: this.host, onUnread: (n) => this.renderToggle(n), videos: libraryOf(session) });
      this.panel.setVisible(this.shown);
      await this.panel.open();
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
