// Selecting and moving annotations on the overlay: hit tests in canvas
// pixels (so a hit is as wide on a phone as on a desktop), moving a shape
// by a normalized offset kept inside the frame, and the selection outline.
// The workspace sends the result as `op` `update` / `delete` (§7.3).

import type { Annotation, Point } from "@chalktalk/client";
import type { Shape, View } from "./draw.js";

type XY = [number, number];

function px(v: View, p: Point): XY {
  return [p[0] * v.w, p[1] * v.h];
}

function segDist(p: XY, a: XY, b: XY): number {
  const dx = b[0] - a[0];
  const dy = b[1] - a[1];
  const len = dx * dx + dy * dy;
  const t = len === 0 ? 0 : Math.max(0, Math.min(1, ((p[0] - a[0]) * dx + (p[1] - a[1]) * dy) / len));
  return Math.hypot(p[0] - (a[0] + t * dx), p[1] - (a[1] + t * dy));
}

/** The shape's bounding box in canvas pixels [x0, y0, x1, y1]. */
export function bounds(v: View, s: Shape): [number, number, number, number] {
  let pts: XY[] = [];
  switch (s.k) {
    case "stroke":
      pts = s.points.map((p) => px(v, p));
      break;
    case "line":
    case "arrow":
    case "rect":
      pts = [px(v, s.a), px(v, s.b)];
      break;
    case "ellipse": {
      const [cx, cy] = px(v, s.c);
      pts = [[cx - s.rx * v.h, cy - s.ry * v.h], [cx + s.rx * v.h, cy + s.ry * v.h]];
      break;
    }
    case "angle":
      pts = [px(v, s.a), px(v, s.v), px(v, s.b)];
      break;
    case "text": {
      const [x, y] = px(v, s.at);
      const size = Math.max(10, s.size * v.h);
      pts = [[x, y], [x + s.text.length * size * 0.6, y + size * 1.2]];
      break;
    }
    case "voice_over":
      return [0, 0, 0, 0];
  }
  const xs = pts.map((p) => p[0]);
  const ys = pts.map((p) => p[1]);
  return [Math.min(...xs), Math.min(...ys), Math.max(...xs), Math.max(...ys)];
}

/** Is canvas pixel `p` within `tol` pixels of the shape's ink? */
export function hits(v: View, s: Shape, p: XY, tol: number): boolean {
  switch (s.k) {
    case "stroke": {
      const pts = s.points.map((q) => px(v, q));
      if (pts.length === 1) return Math.hypot(p[0] - pts[0][0], p[1] - pts[0][1]) <= tol;
      for (let i = 1; i < pts.length; i++) if (segDist(p, pts[i - 1], pts[i]) <= tol) return true;
      return false;
    }
    case "line":
    case "arrow":
      return segDist(p, px(v, s.a), px(v, s.b)) <= tol;
    case "rect": {
      const [ax, ay] = px(v, s.a);
      const [bx, by] = px(v, s.b);
      const c: XY[] = [[ax, ay], [bx, ay], [bx, by], [ax, by]];
      return c.some((q, i) => segDist(p, q, c[(i + 1) % 4]) <= tol);
    }
    case "ellipse": {
      const [cx, cy] = px(v, s.c);
      const rx = Math.max(1, s.rx * v.h);
      const ry = Math.max(1, s.ry * v.h);
      // Distance to the outline, approximately (normalized radius).
      const r = Math.hypot((p[0] - cx) / rx, (p[1] - cy) / ry);
      return Math.abs(r - 1) * Math.min(rx, ry) <= tol;
    }
    case "angle":
      return segDist(p, px(v, s.a), px(v, s.v)) <= tol || segDist(p, px(v, s.v), px(v, s.b)) <= tol;
    case "text": {
      const [x0, y0, x1, y1] = bounds(v, s);
      return p[0] >= x0 - tol && p[0] <= x1 + tol && p[1] >= y0 - tol && p[1] <= y1 + tol;
    }
    case "voice_over":
      return false;
  }
}

/** The topmost annotation under `p` among `anns` (drawn last = on top). */
export function pick(v: View, anns: Annotation[], p: XY, tol: number): Annotation | null {
  for (let i = anns.length - 1; i >= 0; i--) if (hits(v, anns[i].shape, p, tol)) return anns[i];
  return null;
}

/** The shape moved by (dx, dy) normalized, clamped so it stays in the frame. */
export function moved(v: View, s: Shape, dx: number, dy: number): Shape {
  const [x0, y0, x1, y1] = bounds(v, s);
  // Keep the whole bounding box inside 0..=1.
  dx = Math.max(-x0 / v.w, Math.min(dx, 1 - x1 / v.w));
  dy = Math.max(-y0 / v.h, Math.min(dy, 1 - y1 / v.h));
  const m = (p: Point): Point => [clamp01(p[0] + dx), clamp01(p[1] + dy)];
  switch (s.k) {
    case "stroke":
      return { ...s, points: s.points.map(m) };
    case "line":
    case "arrow":
    case "rect":
      return { ...s, a: m(s.a), b: m(s.b) };
    case "ellipse":
      return { ...s, c: m(s.c) };
    case "angle":
      return { ...s, a: m(s.a), v: m(s.v), b: m(s.b) };
    case "text":
      return { ...s, at: m(s.at) };
    case "voice_over":
      return s;
  }
}

const clamp01 = (x: number) => Math.min(1, Math.max(0, x));

/** A dashed box around the selected shape. */
export function outline(v: View, s: Shape): void {
  const [x0, y0, x1, y1] = bounds(v, s);
  const { ctx } = v;
  ctx.save();
  ctx.setLineDash([6, 4]);
  ctx.lineWidth = 2;
  ctx.strokeStyle = "#ffd60a";
  ctx.strokeRect(x0 - 8, y0 - 8, x1 - x0 + 16, y1 - y0 + 16);
  ctx.restore();
}
