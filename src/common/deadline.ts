/** untilDeadline resolves or rejects with p, or rejects with onTimeout(waitedMs) if the deadline comes first (p keeps running: its outcome is then unknown to the caller). */
export function untilDeadline<T>(p: Promise<T>, deadline: Date, onTimeout: (waitedMs: number) => Error): Promise<T> {
  const ms = Math.max(0, deadline.getTime() - Date.now());
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => reject(onTimeout(ms)), ms);
    p.then(
      (v) => {
        clearTimeout(timer);
        resolve(v);
      },
      (err: unknown) => {
        clearTimeout(timer);
        reject(err);
      },
    );
  });
}
