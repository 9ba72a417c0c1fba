/**
 * Checks a request's protobuf bytes before the proto loader decodes them. The decoder (protobufjs
 * through @grpc/proto-loader) is lenient where a registry must not be: a string field whose length
 * runs past the end of the message is clamped to what is there, so a truncated body decodes as a
 * shorter valid request; and invalid UTF-8 in a string decodes to U+FFFD, so two different keys
 * become the same one. This walk follows the message's descriptor and refuses both, naming the
 * field; a refused request is answered INVALID_ARGUMENT by the interceptor below and never reaches
 * its handler.
 */
import { isUtf8 } from "node:buffer";
import { Metadata, type ServerInterceptor, ServerInterceptingCall, type ServiceDefinition } from "@grpc/grpc-js";
import { MalformedRequestError, toStatus } from "./errors.js";

/** The parts of a protobuf DescriptorProto (as proto-loader presents it) the walk reads. */
interface FieldDesc {
  readonly name: string;
  readonly number: number;
  readonly type: string;
  readonly typeName: string;
  readonly label?: string;
}
interface MessageDesc {
  readonly name: string;
  readonly field: readonly FieldDesc[];
  readonly nestedType: readonly MessageDesc[];
}

/** MalformedRequest stands for a request whose bytes were refused: the deserializer returns it, the interceptor answers it. */
export class MalformedRequest {
  constructor(readonly problem: string) {}
}

/** snake is a camelCase field name in the proto's own spelling (errors name fields as the proto does), spelled once per name. */
const snakeNames = new Map<string, string>();
function snake(s: string): string {
  let out = snakeNames.get(s);
  if (out === undefined) {
    out = s.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
    // The names are the schema's: a bounded set.
    snakeNames.set(s, out);
  }
  return out;
}

/** Resolves a field's message type: a nested type of the message first, then a top-level one of the package. */
type Resolve = (from: MessageDesc, typeName: string) => MessageDesc | undefined;

/**
 * fieldName is the path of field `num` (described by f, when the message knows it) under `at`; with
 * f null, the message itself. Spelled only for an error: no name is built for a well-formed request
 * (and no closure made per field, which the TypeScript loader would wrap in a naming call).
 */
function fieldName(at: string, f: FieldDesc | undefined | null, num: number): string {
  if (f === null) return at || "request";
  return f ? `${at ? `${at}.` : ""}${snake(f.name)}` : `${at ? `${at}.` : ""}field ${num}`;
}

/**
 * varintEnd is where the last varint read ended: varint returns the value and leaves the position
 * here, rather than a [value, position] pair per varint (a request of 15 fields read ~50 of them).
 */
let varintEnd = 0;

/** varint reads a varint at pos and sets varintEnd; an error names the field as fieldName(at, f, num) does. */
function varint(buf: Buffer, pos: number, at: string, f: FieldDesc | undefined | null, num: number): number {
  let result = 0;
  let mul = 1;
  for (let i = 0; i < 10; i++) {
    if (pos >= buf.length) throw new MalformedRequestError(`${fieldName(at, f, num)}: the message ends inside a varint`);
    const b = buf[pos++]!;
    result += (b & 0x7f) * mul;
    if ((b & 0x80) === 0) {
      varintEnd = pos;
      return result;
    }
    mul *= 128;
  }
  throw new MalformedRequestError(`${fieldName(at, f, num)}: a varint is longer than 10 bytes`);
}

/** FIELD_NUMBER_MAX: protobuf field numbers are at most 2^29 - 1. */
const FIELD_NUMBER_MAX = 2 ** 29 - 1;

/** wireTypeOf is the wire type a field's scalar values travel in. */
function wireTypeOf(f: FieldDesc): number {
  switch (f.type) {
    case "TYPE_DOUBLE":
    case "TYPE_FIXED64":
    case "TYPE_SFIXED64":
      return 1;
    case "TYPE_FLOAT":
    case "TYPE_FIXED32":
    case "TYPE_SFIXED32":
      return 5;
    case "TYPE_STRING":
    case "TYPE_BYTES":
    case "TYPE_MESSAGE":
      return 2;
    default:
      return 0;
  }
}

/** lengthDelimited: strings, bytes, messages, and repeated scalars (packed). */
function lengthDelimited(f: FieldDesc): boolean {
  return wireTypeOf(f) === 2 || f.label === "LABEL_REPEATED";
}

const typeText = (f: FieldDesc) => f.type.replace(/^TYPE_/, "").toLowerCase();

/** fieldsByNumber is each message's fields by number, built once per descriptor. */
const fieldsByNumber = new WeakMap<MessageDesc, Map<number, FieldDesc>>();

function fieldOf(desc: MessageDesc, num: number): FieldDesc | undefined {
  let m = fieldsByNumber.get(desc);
  if (m === undefined) {
    m = new Map(desc.field.map((f) => [f.number, f]));
    fieldsByNumber.set(desc, m);
  }
  return m.get(num);
}

/**
 * walk checks buf as message `desc`; `at` is the path of the field holding it ("" at the top). It recurses only into fields the descriptor knows as messages; the API has no recursive message, so the depth is the schema's (at most 3).
 */
function walk(buf: Buffer, desc: MessageDesc, resolve: Resolve, at: string): void {
  let pos = 0;
  while (pos < buf.length) {
    const tag = varint(buf, pos, at, null, 0);
    pos = varintEnd;
    const num = Math.floor(tag / 8);
    const wt = tag % 8;
    const f = fieldOf(desc, num);
    if (num === 0 || num > FIELD_NUMBER_MAX) throw new MalformedRequestError(`${at || "request"}: field number ${num} is not valid`);
    switch (wt) {
      case 0:
        if (f && wireTypeOf(f) !== 0) throw new MalformedRequestError(`${fieldName(at, f, num)}: wire type 0 is not valid for its type (${typeText(f)})`);
        varint(buf, pos, at, f, num);
        pos = varintEnd;
        break;
      case 1:
        if (f && wireTypeOf(f) !== 1) throw new MalformedRequestError(`${fieldName(at, f, num)}: wire type 1 is not valid for its type (${typeText(f)})`);
        if (pos + 8 > buf.length) throw new MalformedRequestError(`${fieldName(at, f, num)}: the message ends inside a 64-bit value`);
        pos += 8;
        break;
      case 5:
        if (f && wireTypeOf(f) !== 5) throw new MalformedRequestError(`${fieldName(at, f, num)}: wire type 5 is not valid for its type (${typeText(f)})`);
        if (pos + 4 > buf.length) throw new MalformedRequestError(`${fieldName(at, f, num)}: the message ends inside a 32-bit value`);
        pos += 4;
        break;
      case 2: {
        if (f && !lengthDelimited(f)) throw new MalformedRequestError(`${fieldName(at, f, num)}: wire type 2 is not valid for its type (${typeText(f)})`);
        const len = varint(buf, pos, at, f, num);
        const start = varintEnd;
        if (start + len > buf.length) throw new MalformedRequestError(`${fieldName(at, f, num)}: its length (${len} bytes) runs past the end of the message (${buf.length - start} left): the request is truncated`);
        const body = buf.subarray(start, start + len);
        pos = start + len;
        if (f?.type === "TYPE_STRING" && !isUtf8(body)) throw new MalformedRequestError(`${fieldName(at, f, num)}: is not valid UTF-8`);
        if (f?.type === "TYPE_MESSAGE") {
          const sub = resolve(desc, f.typeName);
          if (sub) walk(body, sub, resolve, fieldName(at, f, num));
        }
        break;
      }
      default:
        // Groups (3, 4) are proto2 only; 6 and 7 do not exist.
        throw new MalformedRequestError(`${fieldName(at, f, num)}: wire type ${wt} is not valid here`);
    }
  }
}

/** wireProblem is why buf is not a well-formed `desc`, or null. */
export function wireProblem(buf: Buffer, desc: MessageDesc, resolve: Resolve): string | null {
  try {
    walk(buf, desc, resolve, "");
    return null;
  } catch (err) {
    if (err instanceof MalformedRequestError) return err.problem;
    throw err;
  }
}

/** A proto-loader request type: its descriptor and the file descriptors to resolve names in. */
interface RequestType {
  readonly type?: MessageDesc;
}

/**
 * checkedService wraps every method's request deserializer: bytes the walk refuses become a
 * MalformedRequest, which wireInterceptor answers INVALID_ARGUMENT (grpc-js answers a throwing
 * deserializer INTERNAL "Error deserializing request", which names nothing).
 */
export function checkedService(service: ServiceDefinition, types: Readonly<Record<string, RequestType | unknown>>): ServiceDefinition {
  const lookup: Resolve = (from, typeName) => {
    const short = typeName.replace(/^\./, "");
    const nested = from.nestedType.find((n) => n.name === short);
    if (nested) return nested;
    for (const [k, v] of Object.entries(types)) {
      if (k === short || k.endsWith(`.${short}`)) return (v as RequestType).type;
    }
    return undefined;
  };
  // A lookup walks every type of the package: done once per (message, field type), not per request.
  const resolved = new WeakMap<MessageDesc, Map<string, MessageDesc | undefined>>();
  const resolve: Resolve = (from, typeName) => {
    let byName = resolved.get(from);
    if (byName === undefined) {
      byName = new Map();
      resolved.set(from, byName);
    }
    if (byName.has(typeName)) return byName.get(typeName);
    const found = lookup(from, typeName);
    byName.set(typeName, found);
    return found;
  };
  const out: Record<string, unknown> = {};
  for (const [method, def] of Object.entries(service)) {
    const desc = (def as { requestType?: RequestType }).requestType?.type;
    if (!desc) {
      out[method] = def;
      continue;
    }
    const decode = def.requestDeserialize;
    out[method] = {
      ...def,
      requestDeserialize: (buf: Buffer) => {
        const problem = wireProblem(buf, desc, resolve);
        if (problem !== null) return new MalformedRequest(problem);
        try {
          return decode(buf);
        } catch (err) {
          // A backstop: whatever the walk let through and the decoder still refuses is answered INVALID_ARGUMENT too, never INTERNAL.
          return new MalformedRequest(`the request does not decode: ${(err as Error).message}`);
        }
      },
    };
  }
  return out as ServiceDefinition;
}

/** wireInterceptor answers a MalformedRequest with INVALID_ARGUMENT naming the field; the handler never sees it. */
export const wireInterceptor: ServerInterceptor = (_descriptor, call) =>
  new ServerInterceptingCall(call, {
    start(next) {
      next({
        onReceiveMessage(message, nextMessage) {
          if (message instanceof MalformedRequest) {
            const st = toStatus(new MalformedRequestError(message.problem));
            call.sendStatus({ code: st.code ?? 0, details: st.details ?? "", metadata: st.metadata ?? new Metadata() });
            return;
          }
          nextMessage(message);
        },
      });
    },
  });
