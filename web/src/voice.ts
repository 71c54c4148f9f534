// Voice-overs in the workspace (docs/PROTOCOL.md, "Voice-overs"): recording
// with MediaRecorder from the microphone, uploading the recording as a
// `voice_over` for the room at the video time where recording began (the
// server normalizes it and adds the `voice_over` annotation itself), and
// playing every voice-over of the room in sync with the shared video: an
// <audio> per voice-over, playing while the video plays within its span,
// at the room's rate, small drift absorbed by the rate, re-seeked past
// 100 ms.

import type { Annotation, ChalktalkClient, PlaybackState } from "@chalktalk/client";
import { describe, uploadFile, type Session } from "./api.js";
import { h, toast } from "./ui.js";

export interface VoiceDeps {
  client: ChalktalkClient;
  session: Session;
  room: string;
  /** Where the audio elements live (hidden). */
  host: HTMLElement;
  /** The video time shown now, ms. */
  now: () => number;
  status: (text: string) => void;
}

interface Player {
  ann: Annotation;
  el: HTMLAudioElement | null;
  loading: boolean;
  /** Its audio cannot be had (e.g. the asset was deleted): not retried. */
  failed?: boolean;
  /** A start timed for the moment the video reaches t_ms (between ticks). */
  armed?: ReturnType<typeof setTimeout>;
}

export class VoiceOvers {
  private players = new Map<string, Player>();
  private rec: { mr: MediaRecorder; stream: MediaStream; at_ms: number; started: number; chunks: Blob[] } | null = null;
  /** The last recording (for checks and for a retry). */
  last: Blob | null = null;
  private tick: ReturnType<typeof setInterval> | undefined;
  onChange: () => void = () => {};

  constructor(private d: VoiceDeps) {}

  get recording(): boolean {
    return this.rec !== null;
  }

  elapsedMs(): number {
    return this.rec ? performance.now() - this.rec.started : 0;
  }

  async start(): Promise<void> {
    if (this.rec) return;
    if (!navigator.mediaDevices?.getUserMedia || typeof MediaRecorder === "undefined") {
      toast("This browser cannot record audio", "error");
      return;
    }
    let stream: MediaStream;
    try {
      stream = await navigator.mediaDevices.getUserMedia({ audio: true });
    } catch (e) {
      toast(`No microphone: ${describe(e)}`, "error");
      return;
    }
    const type = ["audio/webm;codecs=opus", "audio/ogg;codecs=opus", "audio/mp4"].find((t) => MediaRecorder.isTypeSupported(t));
    const mr = new MediaRecorder(stream, type ? { mimeType: type } : undefined);
    const rec = { mr, stream, at_ms: Math.round(this.d.now()), started: performance.now(), chunks: [] as Blob[] };
    mr.ondataavailable = (e) => e.data.size > 0 && rec.chunks.push(e.data);
    mr.onstop = () => void this.finish(rec);
    mr.start(250);
    this.rec = rec;
    this.d.client.activity(this.d.room, "recording");
    this.tick = setInterval(() => this.onChange(), 250);
    this.onChange();
  }

  stop(): void {
    const rec = this.rec;
    if (!rec) return;
    this.rec = null;
    clearInterval(this.tick);
    rec.mr.stop();
    rec.stream.getTracks().forEach((t) => t.stop());
    this.d.client.activity(this.d.room, "watching");
    this.onChange();
  }

  private async finish(rec: { mr: MediaRecorder; at_ms: number; chunks: Blob[] }): Promise<void> {
    const type = (rec.mr.mimeType || "audio/webm").split(";")[0];
    const blob = new Blob(rec.chunks, { type });
    this.last = blob;
    if (blob.size === 0) {
      toast("Nothing was recorded", "error");
      return;
    }
    const ext = type.includes("ogg") ? "ogg" : type.includes("mp4") ? "m4a" : "webm";
    try {
      await uploadFile(
        this.d.session,
        blob,
        { kind: "voice_over", filename: `voice-over-${rec.at_ms}.${ext}`, room: this.d.room, at_ms: rec.at_ms },
        (p) => this.d.status(`Uploading the voice-over: ${p.size ? Math.floor((p.sent / p.size) * 100) : 100}%`),
      );
      this.d.status("");
      toast("Voice-over uploaded: it is added to the video when processed");
    } catch (e) {
      this.d.status("");
      toast(`Voice-over not uploaded: ${describe(e)}`, "error");
    }
  }

  /** The room's voice-over annotations changed. */
  setAnnotations(anns: Iterable<Annotation>): void {
    const seen = new Set<string>();
    for (const a of anns) {
      if (a.shape.k !== "voice_over") continue;
      seen.add(a.id);
      const p = this.players.get(a.id);
      if (p) p.ann = a;
      else this.players.set(a.id, { ann: a, el: null, loading: false });
    }
    for (const [id, p] of this.players) {
      if (seen.has(id)) continue;
      p.el?.pause();
      p.el?.remove();
      this.players.delete(id);
    }
  }

  private async load(p: Player): Promise<void> {
    if (p.loading || p.el || p.failed || p.ann.shape.k !== "voice_over") return;
    p.loading = true;
    try {
      const link = await this.d.client.mediaLink(p.ann.shape.asset);
      const audio = link.asset.info?.audio;
      if (!link.base || !audio) {
        // Not published (failed or cancelled): nothing to play.
        p.failed = true;
        return;
      }
      const el = h("audio", { preload: "auto", "data-voice-over": p.ann.id, "data-t-ms": p.ann.t_ms });
      el.src = link.base + audio;
      this.d.host.append(el);
      p.el = el;
    } catch (e) {
      p.failed = true;
      // A deleted voice-over keeps its annotation: say nothing about it.
      if ((e as { code?: string }).code !== "not_found") toast(`A voice-over cannot be played: ${describe(e)}`, "error");
    } finally {
      p.loading = false;
    }
  }

  /** Plays what the shared video's time and state call for. */
  sync(pb: PlaybackState | null, videoMs: number): void {
    for (const p of this.players.values()) {
      if (!p.el) {
        void this.load(p);
        continue;
      }
      const el = p.el;
      const a = p.ann;
      const dur = a.dur_ms ?? (Number.isFinite(el.duration) ? el.duration * 1000 : 0);
      const inside = videoMs >= a.t_ms && videoMs < a.t_ms + dur;
      if (pb?.playing && inside) {
        const want = (videoMs - a.t_ms) / 1000;
        const diff = el.currentTime - want; // s; > 0: the audio is ahead
        if (el.paused) {
          el.currentTime = want;
          el.playbackRate = pb.rate;
          el.play().catch(() => {});
        } else if (Math.abs(diff) > 0.1) {
          el.currentTime = want;
          el.playbackRate = pb.rate;
        } else {
          // Small drift: absorbed by the rate (±10 %), as the video does.
          el.playbackRate = pb.rate * (1 - Math.max(-0.1, Math.min(0.1, diff / 0.5)));
        }
      } else {
        if (!el.paused) el.pause();
        const ahead = a.t_ms - videoMs;
        if (pb?.playing && ahead > 0 && ahead <= 60 * pb.rate && p.armed === undefined) {
          // Starts before the next tick would notice.
          p.armed = setTimeout(() => {
            p.armed = undefined;
            if (!el.paused) return;
            el.currentTime = 0;
            el.playbackRate = pb.rate;
            el.play().catch(() => {});
          }, ahead / pb.rate);
        } else if (!pb?.playing && p.armed !== undefined) {
          clearTimeout(p.armed);
          p.armed = undefined;
        }
      }
    }
  }

  close(): void {
    this.stop();
    for (const p of this.players.values()) {
      p.el?.pause();
      p.el?.remove();
    }
    this.players.clear();
  }
}
