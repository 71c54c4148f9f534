// A few DOM helpers (no framework: the app is small and the bundle too).

type Attrs = Record<string, string | number | boolean | EventListener | undefined | null>;
type Child = Node | string | number | null | undefined | false;

export function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attrs: Attrs = {},
  ...children: (Child | Child[])[]
): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on") && typeof v === "function") {
      el.addEventListener(k.slice(2), v as EventListener);
    } else if (k === "class") {
      el.className = String(v);
    } else if (v === true) {
      el.setAttribute(k, "");
    } else {
      el.setAttribute(k, String(v));
    }
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : String(c));
  }
  return el;
}

let toastTimer: ReturnType<typeof setTimeout> | undefined;

/** Shows a message in the page's live region (errors stay longer). */
export function toast(text: string, kind: "error" | "info" = "info"): void {
  const el = document.getElementById("toast");
  if (!el) return;
  el.textContent = text;
  el.className = `toast show ${kind}`;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => (el.className = "toast"), kind === "error" ? 8000 : 3000);
}

export function clear(el: Element): void {
  while (el.firstChild) el.firstChild.remove();
}

export function rand(prefix: string): string {
  const b = new Uint8Array(8);
  crypto.getRandomValues(b);
  return prefix + Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
}

/** Two letters for an avatar. */
export function initials(id: string): string {
  const s = id.replace(/^[a-z]-/, "");
  return (s.slice(0, 2) || "?").toUpperCase();
}

/** A stable hue per user. */
export function hue(id: string): number {
  let x = 0;
  for (const c of id) x = (x * 31 + c.charCodeAt(0)) >>> 0;
  return x % 360;
}

export function fmtTime(ms: number): string {
  const s = Math.max(0, ms) / 1000;
  const m = Math.floor(s / 60);
  return `${m}:${(s - m * 60).toFixed(2).padStart(5, "0")}`;
}

/** A button that asks once more before acting: the first press turns it
 * into `confirm` (for 4 s), the second runs `action`. */
export function confirmButton(text: string, confirm: string, label: string, action: () => void, cls = "btn ghost"): HTMLButtonElement {
  let armed: ReturnType<typeof setTimeout> | undefined;
  const b = h("button", { class: cls, type: "button", "aria-label": label }, text);
  const reset = () => {
    armed = undefined;
    b.textContent = text;
    b.setAttribute("aria-label", label);
    b.classList.remove("danger");
  };
  b.addEventListener("click", () => {
    if (armed === undefined) {
      b.textContent = confirm;
      b.setAttribute("aria-label", `${label}: press again to confirm`);
      b.classList.add("danger");
      armed = setTimeout(reset, 4000);
      return;
    }
    clearTimeout(armed);
    reset();
    action();
  });
  return b;
}
