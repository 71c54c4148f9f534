// Chat attachments: picking a video from my library for a message (a
// `video` attachment naming the asset, PROTOCOL.md §8.3) and showing an
// attached video in a message: a button that loads it inline through
// `media_link` (only for someone the permission matrix lets see it).

import type { Attachment, ChalktalkClient } from "@chalktalk/client";
import { describe } from "./api.js";
import { clear, h } from "./ui.js";

export interface LibraryVideo {
  id: string;
  filename: string;
}

/** A select of my ready videos ("No attachment" first), filled lazily. */
export function attachPicker(videos: () => Promise<LibraryVideo[]>): {
  el: HTMLSelectElement;
  value: () => Attachment | null;
  reset: () => void;
} {
  const el = h("select", { "aria-label": "Attach a video from my library", class: "attach" }, h("option", { value: "" }, "No attachment"));
  let list: LibraryVideo[] = [];
  let loaded = false;
  const load = () => {
    if (loaded) return;
    loaded = true;
    videos()
      .then((v) => {
        list = v;
        for (const x of v) el.append(h("option", { value: x.id }, `Video: ${x.filename}`));
      })
      .catch(() => (loaded = false));
  };
  el.addEventListener("focus", load);
  el.addEventListener("pointerdown", load);
  load();
  return {
    el,
    value: () => {
      const v = list.find((x) => x.id === el.value);
      return v ? { kind: "video", ref_id: v.id, name: v.filename } : null;
    },
    reset: () => void (el.value = ""),
  };
}

/** An attachment in a message; a video opens inline on demand. */
export function attachmentView(client: ChalktalkClient, a: Attachment): HTMLElement {
  const name = a.name ?? a.ref_id;
  if (a.kind !== "video") return h("p", { class: "muted" }, `Attached ${a.kind}: ${name}`);
  const box = h("div", { class: "attached", "data-attachment": a.ref_id });
  const open = h(
    "button",
    {
      class: "btn ghost small",
      type: "button",
      "aria-label": `Show the attached video ${name}`,
      onclick: async () => {
        open.disabled = true;
        try {
          const link = await client.mediaLink(a.ref_id);
          const info = link.asset.info;
          const path = info?.renditions.find((r) => r.mp4)?.mp4 ?? info?.proxy;
          if (!link.base || !path) throw new Error(`the video is not ready (${link.asset.stage})`);
          clear(box);
          box.append(h("video", { src: link.base + path, controls: true, playsinline: true, preload: "metadata", "aria-label": `Attached video ${name}` }));
        } catch (e) {
          clear(box);
          box.append(h("p", { class: "error" }, `${name}: ${describe(e)}`));
        }
      },
    },
    `▶ ${name}`,
  );
  box.append(open);
  return box;
}
