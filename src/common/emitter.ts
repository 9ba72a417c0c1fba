/**
 * Emitter is a small typed event emitter: Events maps each event name to its payload. Listeners
 * run synchronously, in the order they subscribed, so a component that must hear a change before
 * another subscribes first. A listener that throws stops the emit (a bug, never swallowed).
 */
export class Emitter<Events extends { [name: string]: unknown }> {
  private readonly listeners: { [K in keyof Events]?: ((payload: Events[K]) => void)[] } = {};

  /** on subscribes fn to name and returns the function that unsubscribes it. */
  on<K extends keyof Events>(name: K, fn: (payload: Events[K]) => void): () => void {
    const list = this.listeners[name] ?? [];
    this.listeners[name] = list;
    list.push(fn);
    return () => {
      const i = list.indexOf(fn);
      if (i >= 0) list.splice(i, 1);
    };
  }

  /** emit hands payload to every listener of name, in subscription order. */
  emit<K extends keyof Events>(name: K, payload: Events[K]): void {
    for (const fn of [...(this.listeners[name] ?? [])]) fn(payload);
  }
}
