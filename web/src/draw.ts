// Painting annotations on the overlay canvas. Everything the protocol sends
// is normalized to the video frame (0..=1, origin top-left; sizes are
// fractions of the frame height): one scale for x, one for y.

import type { Annotation, Point, Style } from "@chalktalk/client";

export type Shape = Annotation["shape"];

/** 0xRRGGBBAA → CSS rgba(). */
export function css(color: number): string {
  const r = (color >>> 24) & 255;
  const g = (color >>> 16) & 255;
  const b = (color >>> 8) & 255;
  const a = (color & 255) / 255;
  return `rgba(${r},${g},${b},${a.toFixed(3)})`;
}

export interface View {
  ctx: CanvasRenderingContext2D;
  w: number; // canvas pixels
  h: number;
}

function P(v: View, p: Point): [number, number] {
  return [p[0] * v.w, p[1] * v.h];
}

function lineWidth(v: View, style: Style): number {
  return Math.max(2, style.width * v.h);
}

function label(v: View, text: string, at: [number, number], color: string): void {
  const { ctx } = v;
  const size = Math.max(12, Math.round(v.h * 0.04));
  ctx.font = `600 ${size}px system-ui, sans-serif`;
  const w = ctx.measureText(text).width;
  const x = Math.min(Math.max(at[0], 2), v.w - w - 10);
  const y = Math.min(Math.max(at[1], size + 6), v.h - 4);
  ctx.fillStyle = "rgba(0,0,0,0.65)";
  ctx.fillRect(x - 4, y - size - 2, w + 8, size + 8);
  ctx.fillStyle = color;
  ctx.fillText(text, x, y);
}

/** Paints one shape (committed, live preview or being drawn). */
export function paint(v: View, shape: Shape, style: Style, alpha = 1): void {
  const { ctx } = v;
  const color = css(style.color);
  ctx.save();
  ctx.globalAlpha = alpha;
  ctx.strokeStyle = color;
  ctx.fillStyle = color;
  ctx.lineWidth = lineWidth(v, style);
  ctx.lineCap = "round";
  ctx.lineJoin = "round";
  ctx.beginPath();
  switch (shape.k) {
    case "stroke": {
      const pts = shape.points;
      if (pts.length === 1) {
        const [x, y] = P(v, pts[0]);
        ctx.arc(x, y, ctx.lineWidth / 2, 0, Math.PI * 2);
        ctx.fill();
        break;
      }
      pts.forEach((p, i) => {
        const [x, y] = P(v, p);
        if (i === 0) ctx.moveTo(x, y);
        else ctx.lineTo(x, y);
      });
      ctx.stroke();
      break;
    }
    case "line":
    case "arrow": {
      const [ax, ay] = P(v, shape.a);
      const [bx, by] = P(v, shape.b);
      ctx.moveTo(ax, ay);
      ctx.lineTo(bx, by);
      ctx.stroke();
      if (shape.k === "arrow") {
        const ang = Math.atan2(by - ay, bx - ax);
        const len = Math.max(12, ctx.lineWidth * 4);
        ctx.beginPath();
        ctx.moveTo(bx, by);
        ctx.lineTo(bx - len * Math.cos(ang - 0.45), by - len * Math.sin(ang - 0.45));
        ctx.lineTo(bx - len * Math.cos(ang + 0.45), by - len * Math.sin(ang + 0.45));
        ctx.closePath();
        ctx.fill();
      }
      break;
    }
    case "rect": {
      const [ax, ay] = P(v, shape.a);
      const [bx, by] = P(v, shape.b);
      ctx.strokeRect(Math.min(ax, bx), Math.min(ay, by), Math.abs(bx - ax), Math.abs(by - ay));
      break;
    }
    case "ellipse": {
      const [cx, cy] = P(v, shape.c);
      // Radii are fractions of the frame height (§7.4), for both axes.
      ctx.ellipse(cx, cy, Math.max(1, shape.rx * v.h), Math.max(1, shape.ry * v.h), 0, 0, Math.PI * 2);
      ctx.stroke();
      break;
    }
    case "angle": {
      const [ax, ay] = P(v, shape.a);
      const [vx, vy] = P(v, shape.v);
      const [bx, by] = P(v, shape.b);
      ctx.moveTo(ax, ay);
      ctx.lineTo(vx, vy);
      ctx.lineTo(bx, by);
      ctx.stroke();
      const a1 = Math.atan2(ay - vy, ax - vx);
      const a2 = Math.atan2(by - vy, bx - vx);
      let d = a2 - a1;
      while (d > Math.PI) d -= 2 * Math.PI;
      while (d < -Math.PI) d += 2 * Math.PI;
      ctx.beginPath();
      ctx.lineWidth = Math.max(1.5, ctx.lineWidth / 2);
      ctx.arc(vx, vy, Math.max(14, v.h * 0.04), a1, a1 + d, d < 0);
      ctx.stroke();
      // deg 0: not committed yet (the server computes it, §7.4).
      if (shape.deg > 0) label(v, `${shape.deg.toFixed(1)}°`, [vx + 12, vy - 12], "#fff");
      break;
    }
    case "text": {
      const [x, y] = P(v, shape.at);
      const size = Math.max(10, shape.size * v.h);
      ctx.font = `600 ${size}px system-ui, sans-serif`;
      ctx.textBaseline = "top";
      ctx.lineWidth = Math.max(2, size / 8);
      ctx.strokeStyle = "rgba(0,0,0,0.7)";
      ctx.strokeText(shape.text, x, y);
      ctx.fillText(shape.text, x, y);
      break;
    }
    case "voice_over":
      break;
  }
  ctx.restore();
}

/** A short readable description of an annotation (the list beside the
 * video, for screen readers and for checks). */
export function describeShape(shape: Shape): string {
  switch (shape.k) {
    case "stroke":
      return `Pen stroke (${shape.points.length} points)`;
    case "line":
      return "Line";
    case "arrow":
      return "Arrow";
    case "rect":
      return "Rectangle";
    case "ellipse":
      return "Ellipse";
    case "angle":
      return `Angle ${shape.deg.toFixed(2)}°`;
    case "text":
      return `Text “${shape.text}”`;
    case "voice_over":
      return "Voice-over";
  }
}

/** Is an annotation visible at video time `ms`? From t_ms to t_ms + dur_ms
 * (to the end without dur_ms), as `clear` counts it (§7.3). */
export function visibleAt(a: Annotation, ms: number): boolean {
  if (ms + 1 < a.t_ms) return false;
  return a.dur_ms == null || ms <= a.t_ms + a.dur_ms;
}
