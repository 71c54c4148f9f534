// The room's video as this member plays it: which published file to load
// (an MP4 rendition, else native HLS, else the proxy; no hls.js) and the
// quality switch between the MP4 renditions. The choice is each member's
// own (kept in localStorage): switching keeps the position, then the
// workspace puts the video back on the shared clock. A rendition the
// browser fails to play is replaced by the next one.

import type { ChalktalkClient } from "@chalktalk/client";
import { describe } from "./api.js";
import { clear, h } from "./ui.js";

interface Choice {
  name: string;
  path: string;
  width: number;
  height: number;
}

const KEY = "chalktalk.quality";

export class VideoSource {
  /** "Video quality", hidden with fewer than two renditions. */
  readonly select: HTMLSelectElement;
  durationMs = 0;
  private renditions: Choice[] = [];
  private base = "";
  private failed = new Set<string>();

  constructor(
    private d: {
      client: ChalktalkClient;
      video: HTMLVideoElement;
      status: (text: string, error?: boolean) => void;
      /** The metadata of a (new) file is loaded: re-apply the shared clock. */
      loaded: () => void;
    },
  ) {
    this.select = h("select", { "aria-label": "Video quality", class: "quality", onchange: () => this.switchTo(this.select.value) });
    this.select.hidden = true;
  }

  async load(videoId: string): Promise<void> {
    const { video, status } = this.d;
    if (!/^a-[0-9a-f]{20}$/.test(videoId)) {
      status("This room has no uploaded video: drawing on a blank frame.");
      return;
    }
    try {
      const link = await this.d.client.mediaLink(videoId);
      const info = link.asset.info;
      if (!link.base || !info) {
        status(`The video is still processing (${link.asset.stage}); draw now, it appears when ready.`);
        return;
      }
      this.durationMs = info.duration_ms;
      this.base = link.base;
      this.renditions = info.renditions.filter((r) => r.mp4).map((r) => ({ name: r.name, path: r.mp4, width: r.width, height: r.height }));
      const chosen = this.renditions.find((r) => r.name === localStorage.getItem(KEY)) ?? this.renditions[0];
      clear(this.select);
      for (const r of this.renditions) this.select.append(h("option", { value: r.name }, `${r.name} (${r.width}×${r.height})`));
      if (chosen) this.select.value = chosen.name;
      this.select.hidden = this.renditions.length < 2;
      const native = video.canPlayType("application/vnd.apple.mpegurl") !== "";
      const path = chosen?.path ?? (native ? info.master : null) ?? info.proxy;
      if (!path) {
        status("The video has no playable file yet; try again in a moment.");
        return;
      }
      // No poster: it is a frame at 2 s, not the frame being annotated.
      video.src = link.base + path;
      video.addEventListener("loadedmetadata", () => this.d.loaded(), { once: true });
      video.addEventListener("error", this.onError);
    } catch (e) {
      status(`The video cannot be shown: ${describe(e)}`, true);
    }
  }

  /** A file this browser cannot play: the next rendition not tried yet,
   * else a clear error. */
  private onError = (): void => {
    const v = this.d.video;
    const err = v.error;
    const detail = err ? ` (${err.code}: ${err.message || "media error"})` : "";
    const cur = this.renditions.find((r) => v.currentSrc.endsWith(r.path));
    if (cur) this.failed.add(cur.name);
    const next = this.renditions.find((r) => !this.failed.has(r.name));
    if (cur && next) {
      this.d.status(`The ${cur.name} file cannot be played here${detail}: showing ${next.name}.`);
      this.select.value = next.name;
      this.switchTo(next.name, false);
      return;
    }
    this.d.status(`The video could not be played in this browser${detail}.`, true);
  };

  private switchTo(name: string, remember = true): void {
    const r = this.renditions.find((x) => x.name === name);
    if (!r) return;
    if (remember) localStorage.setItem(KEY, r.name);
    const v = this.d.video;
    const at = v.currentTime;
    v.src = this.base + r.path;
    v.addEventListener(
      "loadedmetadata",
      () => {
        v.currentTime = at;
        this.d.loaded();
      },
      { once: true },
    );
  }
}
