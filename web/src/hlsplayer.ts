// HLS through hls.js for browsers without native HLS (Chromium, Firefox):
// the asset's master playlist over Media Source Extensions, one level per
// rendition, a level picked by name ("480p") or automatically. hls.js is
// loaded on first use as its own chunk (the light build: no subtitles,
// alternate audio or DRM), so the app's first load does not carry it.

import type Hls from "hls.js";
import type { ErrorData, Level } from "hls.js";

export interface HlsLevel {
  index: number;
  name: string;
  width: number;
  height: number;
}

/** Can this browser play HLS through hls.js? (Media Source Extensions.) */
export function hlsSupported(): boolean {
  const w = window as unknown as { ManagedMediaSource?: unknown; MediaSource?: { isTypeSupported(t: string): boolean } };
  return !!(w.ManagedMediaSource || w.MediaSource?.isTypeSupported('video/mp4; codecs="avc1.42E01E,mp4a.40.2"'));
}

export class HlsPlayer {
  levels: HlsLevel[] = [];
  private constructor(private hls: Hls) {}

  /** Loads `url` into `video`; resolves once the master playlist is
   * parsed (levels known), rejects when it cannot be. `onLevel` tells
   * which level plays after every switch; `onFatal` an error hls.js
   * could not recover from (the caller falls back to the MP4 files). */
  static async start(
    video: HTMLVideoElement,
    url: string,
    name: (l: Level) => string,
    opts: { startName: string | null; onLevel: (l: HlsLevel) => void; onFatal: (why: string) => void },
  ): Promise<HlsPlayer> {
    const { default: HlsClass } = await import("hls.js/light");
    if (!HlsClass.isSupported()) throw new Error("hls.js is not supported here");
    const hls = new HlsClass({ capLevelToPlayerSize: false, maxBufferLength: 20 });
    const p = new HlsPlayer(hls);
    let recovered = false;
    let reloaded = false;
    let started = false;
    await new Promise<void>((resolve, reject) => {
      hls.on(HlsClass.Events.MANIFEST_PARSED, (_e, data) => {
        p.levels = data.levels.map((l, index) => ({ index, name: name(l), width: l.width, height: l.height }));
        const start = p.levels.find((l) => l.name === opts.startName);
        if (start) hls.currentLevel = start.index;
        started = true;
        resolve();
      });
      hls.on(HlsClass.Events.LEVEL_SWITCHED, (_e, data) => {
        const l = p.levels[data.level];
        if (l) opts.onLevel(l);
      });
      hls.on(HlsClass.Events.ERROR, (_e, data: ErrorData) => {
        if (!data.fatal) return;
        // One second chance each: a decode error, a dropped download.
        if (data.type === HlsClass.ErrorTypes.MEDIA_ERROR && !recovered) {
          recovered = true;
          hls.recoverMediaError();
          return;
        }
        if (data.type === HlsClass.ErrorTypes.NETWORK_ERROR && started && !reloaded) {
          reloaded = true;
          hls.startLoad();
          return;
        }
        const why = `${data.type}: ${data.details}`;
        hls.destroy();
        if (started) opts.onFatal(why);
        else reject(new Error(why));
      });
      hls.loadSource(url);
      hls.attachMedia(video);
    });
    return p;
  }

  /** The level being played (-1 before the first switch). */
  get current(): number {
    return this.hls.currentLevel;
  }

  /** Plays level `name` from now on ("auto": hls.js chooses). */
  pick(name: string): void {
    const l = this.levels.find((x) => x.name === name);
    this.hls.currentLevel = l ? l.index : -1;
  }

  destroy(): void {
    this.hls.destroy();
  }
}
