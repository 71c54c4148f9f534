// The home's "Devices" card: my sign-in sessions (`GET /api/v1/sessions`:
// one per device, with when it signed in and was last used, this one
// marked), signing one other device out (`DELETE /api/v1/sessions/{sid}`,
// asked twice) and signing out every other device (one DELETE each). A
// device signed out loses its refresh token and its sockets at once
// (the server revokes the session everywhere).

import type { Session } from "./api.js";
import { describe } from "./api.js";
import { clear, confirmButton, h, toast } from "./ui.js";

interface Device {
  sid: string;
  device: string;
  created_ms: number;
  last_used_ms: number;
  current: boolean;
}

function when(ms: number): string {
  return ms > 0 ? new Date(ms).toLocaleString() : "never";
}

/** The card; it loads and refreshes its own list. */
export function devicesSection(session: Session): HTMLElement {
  const list = h("ul", { class: "devices", "data-testid": "devices" });
  const status = h("p", { class: "muted", "aria-live": "polite" });
  const othersBtn = confirmButton("Sign out all other devices", "Sign out all others?", "Sign out all other devices", () => void signOutOthers());
  othersBtn.hidden = true;
  let devices: Device[] = [];

  async function load(): Promise<void> {
    try {
      devices = (await session.call<{ sessions: Device[] }>("GET", "/api/v1/sessions")).sessions;
      devices.sort((a, b) => Number(b.current) - Number(a.current) || b.last_used_ms - a.last_used_ms);
      render();
    } catch (e) {
      status.textContent = `Devices cannot be listed: ${describe(e)}`;
    }
  }

  function render(): void {
    clear(list);
    for (const d of devices) {
      list.append(
        h(
          "li",
          { "data-sid": d.sid, "data-current": String(d.current) },
          h("span", { class: "dname" }, d.device || "unnamed device", d.current ? h("strong", {}, " · this device") : ""),
          h("span", { class: "muted" }, ` signed in ${when(d.created_ms)} · last used ${when(d.last_used_ms)}`),
          d.current ? "" : confirmButton("Sign out", "Sign out?", `Sign out ${d.device || d.sid}`, () => void signOut(d)),
        ),
      );
    }
    othersBtn.hidden = !devices.some((d) => !d.current);
    status.textContent = devices.length === 1 ? "Only this device is signed in." : "";
  }

  async function signOut(d: Device): Promise<void> {
    try {
      await session.call("DELETE", `/api/v1/sessions/${encodeURIComponent(d.sid)}`);
      toast(`${d.device || "The device"} is signed out`);
    } catch (e) {
      toast(`Could not sign ${d.device} out: ${describe(e)}`, "error");
    }
    await load();
  }

  async function signOutOthers(): Promise<void> {
    const others = devices.filter((d) => !d.current);
    const failed = (
      await Promise.all(
        others.map((d) =>
          session
            .call("DELETE", `/api/v1/sessions/${encodeURIComponent(d.sid)}`)
            .then(() => null)
            .catch((e: unknown) => `${d.device}: ${describe(e)}`),
        ),
      )
    ).filter((x): x is string => x !== null);
    if (failed.length) toast(`Some devices could not be signed out (${failed.join("; ")})`, "error");
    else toast(`${others.length} other device${others.length === 1 ? "" : "s"} signed out`);
    await load();
  }

  void load();
  return h("section", { class: "card", "aria-label": "Devices" }, h("h2", {}, "Devices"), list, status, h("div", { class: "row" }, othersBtn));
}
