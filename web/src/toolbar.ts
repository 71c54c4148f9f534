// The workspace's drawing toolbar: the tools (with their keys), undo,
// redo, delete of the selection, colours and how long new drawings stay
// visible. Built once; the workspace keeps the buttons to mark the tool in
// use and to enable delete while something is selected.

import { h } from "./ui.js";

export type Tool = "select" | "pen" | "line" | "arrow" | "ellipse" | "rect" | "angle" | "text";

export const TOOLS: { tool: Tool; key: string; label: string; icon: string }[] = [
  { tool: "select", key: "v", label: "Select, move or delete my drawings", icon: "⬚" },
  { tool: "pen", key: "p", label: "Pen", icon: "✎" },
  { tool: "line", key: "l", label: "Line", icon: "╱" },
  { tool: "arrow", key: "a", label: "Arrow", icon: "➚" },
  { tool: "ellipse", key: "e", label: "Ellipse", icon: "◯" },
  { tool: "rect", key: "r", label: "Rectangle", icon: "▭" },
  { tool: "angle", key: "g", label: "Angle", icon: "∠" },
  { tool: "text", key: "t", label: "Text", icon: "T" },
];

export const COLORS: { name: string; color: number }[] = [
  { name: "Red", color: 0xff3b30ff },
  { name: "Yellow", color: 0xffd60aff },
  { name: "Green", color: 0x30d158ff },
  { name: "Blue", color: 0x0a84ffff },
  { name: "White", color: 0xffffffff },
];

export const HOLDS: { label: string; ms: number | null }[] = [
  { label: "3 s", ms: 3000 },
  { label: "10 s", ms: 10000 },
  { label: "to the end", ms: null },
];

export interface ToolbarActions {
  setTool: (t: Tool) => void;
  undo: () => void;
  redo: () => void;
  deleteSelected: () => void;
  setColor: (color: number) => void;
  setHold: (ms: number | null) => void;
  /** The colour selected at first. */
  color: number;
}

export function buildToolbar(a: ToolbarActions): {
  el: HTMLElement;
  toolButtons: Map<Tool, HTMLButtonElement>;
  delBtn: HTMLButtonElement;
} {
const toolButtons = new Map<Tool, HTMLButtonElement>();
let delBtn!: HTMLButtonElement;
const el = h(
    "div",
    { class: "tools", role: "toolbar", "aria-label": "Drawing tools" },
    TOOLS.map((t) => {
      const b = h(
        "button",
        {
          class: "tool",
          type: "button",
          title: `${t.label} (${t.key.toUpperCase()})`,
          "aria-label": `${t.label} (shortcut ${t.key.toUpperCase()})`,
          "aria-pressed": "false",
          "data-tool": t.tool,
          onclick: () => a.setTool(t.tool),
        },
        h("span", { "aria-hidden": "true" }, t.icon),
      );
      toolButtons.set(t.tool, b);
      return b;
    }),
    h("span", { class: "sep" }),
    h(
      "button",
      {
        class: "tool",
        type: "button",
        title: "Undo (Ctrl+Z)",
        "aria-label": "Undo my last change (Ctrl+Z)",
        onclick: () => a.undo(),
      },
      "↶",
    ),
    h(
      "button",
      {
        class: "tool",
        type: "button",
        title: "Redo (Ctrl+Shift+Z)",
        "aria-label": "Redo (Ctrl+Shift+Z)",
        onclick: () => a.redo(),
      },
      "↷",
    ),
    (delBtn = h(
      "button",
      {
        class: "tool",
        type: "button",
        title: "Delete the selected drawing (Delete)",
        "aria-label": "Delete the selected drawing (Delete)",
        disabled: true,
        onclick: () => a.deleteSelected(),
      },
      "✕",
    )),
    h("span", { class: "sep" }),
    COLORS.map((c) =>
      h("button", {
        class: "swatch",
        type: "button",
        title: c.name,
        "aria-label": `Colour ${c.name}`,
        style: `--c: #${(c.color >>> 8).toString(16).padStart(6, "0")}`,
        onclick: (e: Event) => {
          a.setColor(c.color);
          document.querySelectorAll(".swatch").forEach((s) => s.setAttribute("aria-pressed", "false"));
          (e.currentTarget as HTMLElement).setAttribute("aria-pressed", "true");
        },
        "aria-pressed": c.color === a.color ? "true" : "false",
      }),
    ),
    h(
      "label",
      { class: "hold" },
      "Show for ",
      h(
        "select",
        {
          "aria-label": "How long new drawings stay visible",
          onchange: (e: Event) => {
            const i = Number((e.target as HTMLSelectElement).value);
            a.setHold(HOLDS[i].ms);
          },
        },
        HOLDS.map((o, i) => h("option", { value: i }, o.label)),
      ),
    ),
  );
  return { el, toolButtons, delBtn };
}
