/**
 * Client connections of the HTTP listener read into one buffer shared by every connection of the
 * thread, as upstream connections do (net's `onread`): a read is then one call into JS with a
 * view of that buffer, where a 'data' event costs a fresh buffer per read (allocated at 64 KiB,
 * shrunk by a copy, later collected), the readable stream's push and emit, and a next-tick.
 *
 * net gives `onread` to the sockets it connects, not to those a server accepts (Node 20). The
 * accepted socket (paused on accept) is given the same two fields `onread` sets, found once on a
 * socket made with `onread`; when they are not found (another Node), or the socket is not a plain
 * TCP socket (TLS), the connection reads by 'data' events as before: readers work either way.
 */
import { Socket } from "node:net";

/** READ_BUFFER_BYTES: one read takes up to 64 KiB, the size Node reads with by default. */
const READ_BUFFER_BYTES = 64 * 1024;
const READ_BUFFER = Buffer.allocUnsafe(READ_BUFFER_BYTES);

/** OnreadFields are the symbol-keyed fields of net.Socket that hold onread's buffer and callback. */
interface OnreadFields {
  readonly buffer: symbol;
  readonly callback: symbol;
}

const FIELDS = findOnreadFields();

function findOnreadFields(): OnreadFields | undefined {
  const buffer = Buffer.alloc(1);
  const callback = () => true;
  // @types/node lists onread among net.connect's options only; net.Socket's constructor reads it too.
  const probe = new Socket({ onread: { buffer, callback } } as ConstructorParameters<typeof Socket>[0]);
  const rec = probe as unknown as Record<symbol, unknown>;
  const syms = Object.getOwnPropertySymbols(probe);
  const b = syms.find((k) => rec[k] === buffer);
  const c = syms.find((k) => rec[k] === callback);
  probe.destroy();
  return b !== undefined && c !== undefined ? { buffer: b, callback: c } : undefined;
}

/** isShared says whether b is a view of the shared read buffer (valid only until the next read): keep a copy, never b. */
export function isShared(b: Buffer): boolean {
  return b.buffer === READ_BUFFER.buffer;
}

/** ClientReader hands a client connection's reads to one function at a time. */
export class ClientReader {
  private fn: (chunk: Buffer) => void;
  private readonly onData: ((chunk: Buffer) => void) | undefined;

  /** start begins reading socket, paused on accept (server option pauseOnConnect), into fn. */
  constructor(
    private readonly socket: Socket,
    fn: (chunk: Buffer) => void,
  ) {
    this.fn = fn;
    const handle = (socket as unknown as { _handle?: { useUserBuffer?: (b: Uint8Array) => void } })._handle;
    if (FIELDS !== undefined && socket.constructor === Socket && typeof handle?.useUserBuffer === "function") {
      const rec = socket as unknown as Record<symbol, unknown>;
      rec[FIELDS.buffer] = READ_BUFFER;
      rec[FIELDS.callback] = (n: number) => {
        this.fn(Buffer.from(READ_BUFFER.buffer, READ_BUFFER.byteOffset, n));
        return true;
      };
      handle.useUserBuffer(READ_BUFFER);
      this.onData = undefined;
    } else {
      this.onData = (c: Buffer) => this.fn(c);
      socket.on("data", this.onData);
    }
    socket.resume();
  }

  /** to sends the next reads to fn. */
  to(fn: (chunk: Buffer) => void): void {
    this.fn = fn;
  }

  /**
   * release gives the socket's reads back to stream readers ('data' events, pipe(), a Duplex fed
   * from 'data'): on the shared buffer each read is emitted as 'data' as a copy of its own.
   */
  release(): void {
    if (this.onData) {
      this.socket.removeListener("data", this.onData);
      return;
    }
    const s = this.socket;
    this.fn = (c) => void s.emit("data", Buffer.from(c));
  }
}
