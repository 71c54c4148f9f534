// The room's video as this member plays it: the HLS master through
// hls.js (hlsplayer.ts, loaded on first use) with the quality switch over
// its levels where Media Source Extensions exist, else native HLS (older
// iOS Safari), else (hls.js failing, or `chalktalk.player` = "mp4" in
// localStorage) the MP4 renditions, else the proxy. The quality choice
// is each member's own (kept in localStorage): switching keeps the
// position, then the workspace puts the video back on the shared clock. An
// MP4 rendition the browser fails to play is replaced by the next one.
// `video.dataset.player` says which path plays ("hls.js", "native",
// "mp4"), `video.dataset.level` the hls.js level playing, and
// `video.dataset.copied` whether the MP4 playing was copied from the upload.
// A video opened while still processing plays the early info (the mobile
// rendition, an early playlist); when the asset becomes ready (a `media`
// frame, which room members get too) `upgrade` loads the full info in its
// place, and `video.dataset.early` says which one plays.

import type { ChalktalkClient } from "@chalktalk/client";
import { describe } from "./api.js";
import { HlsPlayer, hlsSupported } from "./hlsplayer.js";
import { clear, h } from "./ui.js";

interface Choice {
  name: string;
  path: string;
  width: number;
  height: number;
  copied: boolean;
}

const KEY = "chalktalk.quality";
const PLAYER = "chalktalk.player";

export class VideoSource {
  /** "Video quality", hidden with fewer than two renditions. */
  readonly select: HTMLSelectElement;
  durationMs = 0;
  private renditions: Choice[] = [];
  private base = "";
  private failed = new Set<string>();
  private hls: HlsPlayer | null = null;
  /** A file was chosen: later calls of `load` (progress events) do nothing. */
  private started = false;
  /** The file chosen came from the early info (the asset was not ready). */
  private early = false;
  /** A `ready` frame came (perhaps while `load` was fetching the link). */
  private readySeen = false;

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
      if (this.started) return;
      this.started = true;
      this.early = link.asset.stage !== "ready";
      video.dataset.early = String(this.early);
      // Ready meanwhile: this link had the early info.
      if (this.early && this.readySeen) queueMicrotask(() => void this.upgrade(videoId));
      this.durationMs = info.duration_ms;
      this.base = link.base;
      this.renditions = info.renditions.filter((r) => r.mp4).map((r) => ({ name: r.name, path: r.mp4, width: r.width, height: r.height, copied: r.copied }));
      // No poster: it is a frame at 2 s, not the frame being annotated.
      // hls.js first where Media Source Extensions exist (its levels are
      // the quality switch; Chromium 156 also answers "maybe" for native
      // HLS, without levels to pick), then native HLS (older iOS Safari),
      // then the MP4 files.
      const master = localStorage.getItem(PLAYER) !== "mp4" ? info.master : null;
      if (master && hlsSupported() && (await this.startHls(link.base + master))) return;
      if (master && video.canPlayType("application/vnd.apple.mpegurl") !== "") {
        video.dataset.player = "native";
        this.fill([], null);
        video.src = link.base + master;
        video.addEventListener("loadedmetadata", () => this.d.loaded(), { once: true });
        return;
      }
      this.playMp4(info.proxy ?? null);
    } catch (e) {
      status(`The video cannot be shown: ${describe(e)}`, true);
    }
  }

  /** hls.js on the master playlist; false when it cannot start. */
  private async startHls(url: string): Promise<boolean> {
    const v = this.d.video;
    const byHeight = (w: number, hh: number) => this.renditions.find((r) => r.width === w && r.height === hh)?.name ?? `${Math.min(w, hh)}p`;
    try {
      v.dataset.player = "hls.js";
      v.addEventListener("loadedmetadata", () => this.d.loaded(), { once: true });
      this.hls = await HlsPlayer.start(v, url, (l) => byHeight(l.width, l.height), {
        startName: localStorage.getItem(KEY),
        onLevel: (l) => {
          v.dataset.level = l.name;
        },
        onFatal: (why) => {
          this.hls = null;
          this.d.status(`The HLS stream failed (${why}): playing the MP4 files.`);
          this.playMp4(null);
        },
      });
      const saved = localStorage.getItem(KEY);
      this.fill(
        [{ value: "auto", label: "Auto" }, ...[...this.hls.levels].sort((a, b) => b.height - a.height).map((l) => ({ value: l.name, label: `${l.name} (${l.width}×${l.height})` }))],
        this.hls.levels.some((l) => l.name === saved) ? saved : "auto",
      );
      return true;
    } catch (e) {
      this.hls = null;
      delete v.dataset.player;
      console.warn("hls.js could not start:", e);
      return false;
    }
  }

  /** The MP4 renditions (best first, or the saved choice), else `fallback`. */
  private playMp4(fallback: string | null): void {
    const v = this.d.video;
    const chosen = this.renditions.find((r) => r.name === localStorage.getItem(KEY)) ?? this.renditions[0];
    this.fill(
      this.renditions.map((r) => ({ value: r.name, label: `${r.name} (${r.width}×${r.height})` })),
      chosen?.name ?? null,
    );
    const path = chosen?.path ?? fallback;
    if (!path) {
      this.d.status("The video has no playable file yet; try again in a moment.");
      return;
    }
    const at = v.currentTime;
    v.dataset.player = "mp4";
    delete v.dataset.level;
    v.dataset.copied = String(chosen?.copied ?? false);
    v.src = this.base + path;
    v.addEventListener(
      "loadedmetadata",
      () => {
        if (at > 0) v.currentTime = at;
        this.d.loaded();
      },
      { once: true },
    );
    v.addEventListener("error", this.onError);
  }

  private fill(options: { value: string; label: string }[], value: string | null): void {
    clear(this.select);
    for (const o of options) this.select.append(h("option", { value: o.value }, o.label));
    if (value) this.select.value = value;
    this.select.hidden = options.length < 2 || (options.length === 2 && options[0]?.value === "auto");
  }

  /** An MP4 file this browser cannot play: the next rendition not tried
   * yet, else a clear error. */
  private onError = (): void => {
    const v = this.d.video;
    if (v.dataset.player !== "mp4") return;
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
    if (this.hls) {
      if (remember) localStorage.setItem(KEY, name);
      this.hls.pick(name);
      return;
    }
    const r = this.renditions.find((x) => x.name === name);
    if (!r) return;
    if (remember) localStorage.setItem(KEY, r.name);
    const v = this.d.video;
    const at = v.currentTime;
    v.dataset.copied = String(r.copied);
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

  /** The asset is ready: a video started on the early info is loaded
   * again from the full info (every rendition, the final playlist); the
   * workspace then puts it back on the shared clock (`loaded`). */
  async upgrade(videoId: string): Promise<void> {
    this.readySeen = true;
    if (!this.started || !this.early) return;
    this.early = false;
    this.destroy();
    this.failed.clear();
    this.started = false;
    await this.load(videoId);
  }

  /** Stops hls.js (leaving the room). */
  destroy(): void {
    this.hls?.destroy();
    this.hls = null;
  }
}
