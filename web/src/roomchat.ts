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
// listed on the home screen).

import type { ChalktalkClient } from "@chalktalk/client";
import type { Session } from "./api.js";
import { ROOM_THREAD_PREFIX, type ThreadRow } from "./home.js";

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
