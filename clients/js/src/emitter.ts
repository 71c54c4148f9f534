// A minimal typed event emitter that runs in browsers and Node alike.

type Listener<A extends unknown[]> = (...args: A) => void;

export class Emitter<E extends { [K in keyof E]: unknown[] }> {
  private listeners: { [K in keyof E]?: Set<Listener<E[K]>> } = {};

  /** Adds a listener; returns a function that removes it. */
  on<K extends keyof E>(event: K, fn: Listener<E[K]>): () => void {
    (this.listeners[event] ??= new Set()).add(fn);
    return () => this.off(event, fn);
  }

  off<K extends keyof E>(event: K, fn: Listener<E[K]>): void {
    this.listeners[event]?.delete(fn);
  }

  /** Calls every listener; a listener that throws is reported to the
   * `onListenerError` hook and does not stop the others. */
  protected emit<K extends keyof E>(event: K, ...args: E[K]): void {
    const set = this.listeners[event];
    if (!set) return;
    for (const fn of [...set]) {
      try {
        fn(...args);
      } catch (e) {
        this.onListenerError(event as string, e);
      }
    }
  }

  protected onListenerError(event: string, e: unknown): void {
    const report = (globalThis as { reportError?: (e: unknown) => void }).reportError;
    if (report) report(e);
    else console.error(`chalktalk: a listener of "${event}" threw`, e);
  }
}
