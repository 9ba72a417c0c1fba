/**
 * forcedGcMemory opens a running agent's inspector (SIGUSR1, port 9229), forces two full garbage
 * collections through the DevTools protocol, and reads its RSS and process.memoryUsage() after
 * them; then it closes the inspector again. At-rest RSS swings by ±100 MiB between runs of one
 * build with the collector's timing; after forced collections it is what the process really holds.
 * Needs the global WebSocket (Node 20: run with NODE_OPTIONS=--experimental-websocket). One agent
 * at a time: they share the inspector's default port.
 */
import { rssBytesOf } from "./procs.js";

const INSPECTOR = "http://127.0.0.1:9229/json/list";
/** INSPECTOR_WAIT_MS bounds the wait for an inspector to open or to close. */
const INSPECTOR_WAIT_MS = 10_000;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const mib = (bytes: number) => Math.round((bytes / 2 ** 20) * 10) / 10;

export interface ForcedGcFigures {
  rssBeforeMiB: number;
  rssAfterMiB: number;
  heapUsedMiB: number;
  heapTotalMiB: number;
  externalMiB: number;
  arrayBuffersMiB: number;
}

export function forcedGcAvailable(): boolean {
  return typeof (globalThis as { WebSocket?: unknown }).WebSocket === "function";
}

export async function forcedGcMemory(pid: number): Promise<ForcedGcFigures> {
  if (!forcedGcAvailable()) throw new Error("forced GC needs the global WebSocket: run with NODE_OPTIONS=--experimental-websocket");
  process.kill(pid, "SIGUSR1");
  let url: string | undefined;
  for (const started = Date.now(); url === undefined && Date.now() - started < INSPECTOR_WAIT_MS; ) {
    await sleep(100);
    url = await fetch(INSPECTOR)
      .then((r) => r.json() as Promise<{ webSocketDebuggerUrl?: string }[]>)
      .then((l) => l[0]?.webSocketDebuggerUrl)
      .catch(() => undefined);
  }
  if (url === undefined) throw new Error(`the inspector of ${pid} did not open within ${INSPECTOR_WAIT_MS} ms`);
  const ws = new WebSocket(url);
  await new Promise((resolve, reject) => {
    ws.addEventListener("open", resolve);
    ws.addEventListener("error", reject);
  });
  let id = 0;
  const call = (method: string, params: object = {}) =>
    new Promise<{ result?: { result?: { value?: unknown } } }>((resolve) => {
      const mine = ++id;
      const onMessage = (e: MessageEvent) => {
        const m = JSON.parse(String(e.data)) as { id?: number };
        if (m.id !== mine) return;
        ws.removeEventListener("message", onMessage);
        resolve(m as { result?: { result?: { value?: unknown } } });
      };
      ws.addEventListener("message", onMessage);
      ws.send(JSON.stringify({ id: mine, method, params }));
    });
  try {
    const rssBefore = rssBytesOf(pid);
    await call("HeapProfiler.collectGarbage");
    await call("HeapProfiler.collectGarbage");
    await sleep(500);
    const answer = await call("Runtime.evaluate", { expression: "JSON.stringify(process.memoryUsage())", returnByValue: true });
    const m = JSON.parse(String(answer.result?.result?.value)) as NodeJS.MemoryUsage;
    const figures = { rssBeforeMiB: mib(rssBefore), rssAfterMiB: mib(rssBytesOf(pid)), heapUsedMiB: mib(m.heapUsed), heapTotalMiB: mib(m.heapTotal), externalMiB: mib(m.external), arrayBuffersMiB: mib(m.arrayBuffers) };
    // Not awaited: the inspector closes the session as it runs this, with no answer.
    void call("Runtime.evaluate", { expression: "process._debugEnd()" });
    return figures;
  } finally {
    ws.close();
    // The next agent's inspector needs the port: wait until this one has let it go.
    for (const started = Date.now(); Date.now() - started < INSPECTOR_WAIT_MS; ) {
      await sleep(200);
      if (!(await fetch(INSPECTOR).then(() => true, () => false))) break;
    }
  }
}
