/**
 * HTTP/1.1 message heads, parsed by scanning bytes (RFC 9112): the request line and only the
 * headers the proxy acts on (routing, framing, connection handling, the headers it adds), every
 * other header line kept as an offset pair so it can be copied to the other side unread. Strict
 * where leniency lets two parsers disagree on where a message ends (request smuggling, RFC 9112
 * §6.3 and §11.2): Content-Length with Transfer-Encoding, differing Content-Lengths, obs-fold,
 * bare CR or LF, a malformed header name or chunk size are refused, never guessed at.
 *
 * Pure: no I/O, no clock; works on a Buffer and returns offsets into it.
 */

/** LineKind says what a header line becomes when the head is forwarded. */
export enum LineKind {
  /** Forward: copied as received. */
  Forward = 0,
  /** Drop: hop-by-hop (RFC 9110 §7.6.1), or framing the proxy writes itself. */
  Drop = 1,
  /** ForwardedFor: an x-forwarded-for line; its values are joined into the one the proxy adds. */
  ForwardedFor = 2,
  /** Epoch: a client's x-raftmesh-epoch, replaced by the proxy's when the request goes to a master. */
  Epoch = 3,
}

/** HeadError is why a head was refused: the status to answer with and a reason for the JSON body. */
export interface HeadError {
  readonly status: 400 | 417 | 431 | 501;
  readonly reason: string;
  readonly message: string;
}

function headError(status: HeadError["status"], reason: string, message: string): HeadError {
  return { status, reason, message };
}

/** Head errors are constants: a refused head allocates nothing. */
export const ERR = {
  tooLarge: headError(431, "headers-too-large", "request head too large"),
  requestLine: headError(400, "malformed-request", "the request line could not be parsed"),
  version: headError(400, "malformed-request", "only HTTP/1.0 and HTTP/1.1 are served here"),
  bareLf: headError(400, "malformed-request", "line ends must be CRLF (bare LF)"),
  obsFold: headError(400, "malformed-request", "obsolete line folding is not accepted"),
  headerName: headError(400, "malformed-request", "invalid header name"),
  headerValue: headError(400, "malformed-request", "invalid character in a header value"),
  contentLength: headError(400, "malformed-request", "invalid content-length"),
  lengthAndChunked: headError(400, "malformed-request", "content-length and transfer-encoding together"),
  chunkedTwice: headError(400, "malformed-request", "transfer-encoding repeated"),
  chunked10: headError(400, "malformed-request", "transfer-encoding in an HTTP/1.0 request"),
  duplicateHost: headError(400, "malformed-request", "more than one host header"),
  missingHost: headError(400, "malformed-request", "an HTTP/1.1 request must have a host header"),
  coding: headError(501, "transfer-coding-not-implemented", "only transfer-encoding: chunked is implemented"),
  expectation: headError(417, "expectation-failed", "only expect: 100-continue is supported"),
} as const;

/** RequestHead is a parsed request head; offsets are into the buffer it was parsed from. */
export interface RequestHead {
  readonly method: string;
  readonly target: string;
  /** minor is the HTTP/1.x minor version (0 or 1). */
  readonly minor: number;
  /** start is where the request line starts (leading empty lines skipped); end is just past the blank line. */
  readonly start: number;
  readonly end: number;
  /** lines holds [start, end, kind] per header line (end excludes the CRLF). */
  readonly lines: number[];
  readonly host: string | undefined;
  /** contentLength: -1 when absent. */
  readonly contentLength: number;
  readonly chunked: boolean;
  /** keepAlive: the client lets the connection carry another request (version and Connection). */
  readonly keepAlive: boolean;
  readonly expectContinue: boolean;
  /** upgrade: an Upgrade header with Connection: upgrade (a protocol switch, tunnelled). */
  readonly upgrade: boolean;
  readonly hasRequestId: boolean;
  /** forwardedFor: the client's x-forwarded-for values joined by ", " (undefined: none). */
  readonly forwardedFor: string | undefined;
}

/** ResponseHead is a parsed response head. */
export interface ResponseHead {
  readonly status: number;
  readonly minor: number;
  /** reasonStart: offset of the status code in the status line (the line is re-sent from there). */
  readonly statusAt: number;
  readonly statusLineEnd: number;
  readonly end: number;
  readonly lines: number[];
  readonly contentLength: number;
  readonly chunked: boolean;
  /** keepAlive: the instance lets the connection carry another request. */
  readonly keepAlive: boolean;
}

const CR = 13;
const LF = 10;
const SP = 32;
const HT = 9;
const COLON = 58;
const CRLFCRLF = Buffer.from("\r\n\r\n");
const LFLF = Buffer.from("\n\n");
/** NEAR_HEAD_BYTES: findHeadEnd looks for the blank line by a loop over this many bytes first (a typical head is 100-500 bytes). */
const NEAR_HEAD_BYTES = 1024;

/** TCHAR[b] is 1 for the bytes of a token (RFC 9110 §5.6.2): header names and methods. */
const TCHAR = new Uint8Array(256);
for (const c of "!#$%&'*+-.^_`|~") TCHAR[c.charCodeAt(0)] = 1;
for (let c = 48; c <= 57; c++) TCHAR[c] = 1;
for (let c = 65; c <= 90; c++) TCHAR[c] = 1;
for (let c = 97; c <= 122; c++) TCHAR[c] = 1;

/** VALUE_OK[b] is 1 for bytes allowed in a field value: VCHAR, SP, HT, obs-text; never CTLs (bare CR/LF, NUL). */
const VALUE_OK = new Uint8Array(256);
for (let c = 32; c < 256; c++) VALUE_OK[c] = c === 127 ? 0 : 1;
VALUE_OK[HT] = 1;

/** TARGET_OK[b] is 1 for bytes allowed in a request target (visible ASCII). */
const TARGET_OK = new Uint8Array(256);
for (let c = 33; c < 127; c++) TARGET_OK[c] = 1;

/**
 * findHeadEnd returns the offset just past a head's blank line, -1 when the head is not complete
 * yet, or an error when it can never be valid: longer than max, or ended by bare LFs.
 */
export function findHeadEnd(buf: Buffer, from: number, to: number, max: number): number | HeadError {
  // Most heads end within the first bytes read: a loop over them finds the blank line for less
  // than Buffer#indexOf's call and argument checks cost; past them (or not found), indexOf.
  const near = Math.min(to, from + NEAR_HEAD_BYTES, from + max);
  for (let i = from + 3; i < near; i++) {
    if (buf[i] === LF && buf[i - 1] === CR && buf[i - 2] === LF && buf[i - 3] === CR) return i + 1;
  }
  if (near === to && to - from <= max) {
    // The whole of buf[from, to) was looked at: no blank line yet.
    const lf = buf.indexOf(LFLF, from);
    return lf !== -1 && lf < to ? ERR.bareLf : -1;
  }
  const at = buf.indexOf(CRLFCRLF, from);
  if (at !== -1 && at + 4 <= to) {
    if (at + 4 - from > max) return ERR.tooLarge;
    return at + 4;
  }
  if (to - from > max) return ERR.tooLarge;
  const lf = buf.indexOf(LFLF, from);
  if (lf !== -1 && lf < to) return ERR.bareLf;
  return -1;
}

/** methodOf is the method buf[from, to) as a string; the common ones are constants, not a new string per request. */
function methodOf(buf: Buffer, from: number, to: number): string {
  const len = to - from;
  if (len === 3 && buf[from] === 71 && buf[from + 1] === 69 && buf[from + 2] === 84) return "GET";
  if (len === 4 && buf[from] === 80 && buf[from + 1] === 79 && buf[from + 2] === 83 && buf[from + 3] === 84) return "POST";
  return buf.toString("latin1", from, to);
}

/** isHttp1 says whether buf[at, at+7) is "HTTP/1." (case-sensitive, RFC 9112 §2.3). */
function isHttp1(buf: Buffer, at: number): boolean {
  return buf[at] === 72 && buf[at + 1] === 84 && buf[at + 2] === 84 && buf[at + 3] === 80 && buf[at + 4] === 47 && buf[at + 5] === 49 && buf[at + 6] === 46;
}

/** eqLower says whether buf[at, at+word.length) equals word (lowercase ASCII) ignoring ASCII case. */
function eqLower(buf: Buffer, at: number, word: string): boolean {
  for (let i = 0; i < word.length; i++) {
    let b = buf[at + i]!;
    // Only letters fold: b | 0x20 would also make "_" equal DEL and "^" equal "~".
    if (b >= 65 && b <= 90) b |= 0x20;
    if (b !== word.charCodeAt(i)) return false;
  }
  return true;
}

/** Header ids of the names the parser acts on. */
enum H {
  Other,
  Host,
  ContentLength,
  TransferEncoding,
  Connection,
  Upgrade,
  Expect,
  RequestId,
  ForwardedFor,
  Epoch,
  HopByHop,
}

/** headerId names the header whose name is buf[at, at+len), by length first so most names cost one compare. */
function headerId(buf: Buffer, at: number, len: number): H {
  switch (len) {
    case 2:
      return eqLower(buf, at, "te") ? H.HopByHop : H.Other;
    case 4:
      return eqLower(buf, at, "host") ? H.Host : H.Other;
    case 6:
      return eqLower(buf, at, "expect") ? H.Expect : H.Other;
    case 7:
      if (eqLower(buf, at, "upgrade")) return H.Upgrade;
      return eqLower(buf, at, "trailer") ? H.HopByHop : H.Other;
    case 10:
      if (eqLower(buf, at, "connection")) return H.Connection;
      return eqLower(buf, at, "keep-alive") ? H.HopByHop : H.Other;
    case 12:
      return eqLower(buf, at, "x-request-id") ? H.RequestId : H.Other;
    case 14:
      return eqLower(buf, at, "content-length") ? H.ContentLength : H.Other;
    case 15:
      return eqLower(buf, at, "x-forwarded-for") ? H.ForwardedFor : H.Other;
    case 16:
      if (eqLower(buf, at, "x-raftmesh-epoch")) return H.Epoch;
      return eqLower(buf, at, "proxy-connection") ? H.HopByHop : H.Other;
    case 17:
      return eqLower(buf, at, "transfer-encoding") ? H.TransferEncoding : H.Other;
    default:
      return H.Other;
  }
}

/** MAX_LENGTH_DIGITS: a Content-Length of 15 digits is below 2^53, so it stays an exact number. */
const MAX_LENGTH_DIGITS = 15;

/** parseLength reads a Content-Length value: 1*DIGIT, or a list of identical ones (RFC 9110 §8.6); -2 when invalid. */
function parseLength(buf: Buffer, from: number, to: number): number {
  let value = -1;
  let n = 0;
  let digits = 0;
  for (let i = from; i <= to; i++) {
    const b = i < to ? buf[i]! : 44;
    if (b >= 48 && b <= 57) {
      if (++digits > MAX_LENGTH_DIGITS) return -2;
      n = n * 10 + (b - 48);
    } else if (b === 44) {
      if (digits === 0) return -2;
      if (value !== -1 && value !== n) return -2;
      value = n;
      n = 0;
      digits = 0;
      // Optional whitespace after a comma.
      while (i + 1 < to && (buf[i + 1] === SP || buf[i + 1] === HT)) i++;
    } else if ((b === SP || b === HT) && digits > 0) {
      // Whitespace before a comma.
      while (i + 1 < to && (buf[i + 1] === SP || buf[i + 1] === HT)) i++;
      if (i + 1 < to && buf[i + 1] !== 44) return -2;
    } else return -2;
  }
  return value;
}

/** Connection tokens, read from a Connection header value. */
interface ConnTokens {
  close: boolean;
  keepAlive: boolean;
  upgrade: boolean;
  /** named: other tokens (lowercase): header names that are hop-by-hop for this message. */
  named: string[] | undefined;
}

/** CONN is the ConnTokens every parse fills (reset first): parses are synchronous, each thread has its own. */
const CONN: ConnTokens = { close: false, keepAlive: false, upgrade: false, named: undefined };

function resetConn(): ConnTokens {
  CONN.close = false;
  CONN.keepAlive = false;
  CONN.upgrade = false;
  CONN.named = undefined;
  return CONN;
}

function connectionTokens(buf: Buffer, from: number, to: number, into: ConnTokens): void {
  let i = from;
  while (i < to) {
    while (i < to && (buf[i] === SP || buf[i] === HT || buf[i] === 44)) i++;
    const s = i;
    while (i < to && buf[i] !== 44 && buf[i] !== SP && buf[i] !== HT) i++;
    const len = i - s;
    if (len === 0) continue;
    if (len === 5 && eqLower(buf, s, "close")) into.close = true;
    else if (len === 10 && eqLower(buf, s, "keep-alive")) into.keepAlive = true;
    else if (len === 7 && eqLower(buf, s, "upgrade")) into.upgrade = true;
    else (into.named ??= []).push(buf.toString("latin1", s, i).toLowerCase());
  }
}

/**
 * PROTECTED names the headers a Connection token may not strip: the proxy reads them for framing
 * and routing, and dropping Content-Length on a client's word would leave its body unframed upstream.
 */
const PROTECTED = new Set(["host", "content-length", "transfer-encoding"]);

/** dropNamed marks the lines whose name a Connection header lists as hop-by-hop. */
function dropNamed(buf: Buffer, lines: number[], named: readonly string[]): void {
  for (let i = 0; i < lines.length; i += 3) {
    const s = lines[i]!;
    const colon = buf.indexOf(COLON, s);
    const name = buf.toString("latin1", s, colon).toLowerCase();
    if (named.includes(name) && !PROTECTED.has(name)) lines[i + 2] = LineKind.Drop;
  }
}

/** valueStart and valueEnd bound a field value without its leading and trailing whitespace. */
function valueStart(buf: Buffer, from: number, to: number): number {
  let i = from;
  while (i < to && (buf[i] === SP || buf[i] === HT)) i++;
  return i;
}
function valueEnd(buf: Buffer, from: number, to: number): number {
  let i = to;
  while (i > from && (buf[i - 1] === SP || buf[i - 1] === HT)) i--;
  return i;
}

/**
 * NAMED holds (id, value start, value end) for each header line scanHeaders found the proxy acts on,
 * reused by every parse (the parsers are synchronous and each thread has its own module): a head
 * costs no closure and no array for them.
 */
const NAMED: number[] = [];
/** namedLength is how much of NAMED the last scan filled (NAMED keeps its size: no array resize per head). */
let namedLength = 0;

/**
 * scanHeaders walks the header lines of buf[from, end) (end: just past the blank line) in one pass
 * over the bytes, checking each, pushing [start, end, kind] per line to lines and (id, vs, ve) per
 * named header to NAMED[0, namedLength) (refilled from 0). Returns an error or undefined.
 */
function scanHeaders(buf: Buffer, from: number, end: number, lines: number[]): HeadError | undefined {
  namedLength = 0;
  let p = from;
  const stop = end - 2;
  while (p < stop) {
    const first = buf[p]!;
    let c = p;
    while (c < stop && TCHAR[buf[c]!] === 1) c++;
    // The value runs to the first CR; every byte before it must be a field-value byte.
    let eol = c + 1;
    let b = buf[eol]!;
    while (eol < stop && VALUE_OK[b] === 1) b = buf[++eol]!;
    if (c === p || buf[c] !== COLON || b !== CR || buf[eol + 1] !== LF || first === SP || first === HT) return scanError(buf, from, end);
    const id = headerId(buf, p, c - p);
    let kind = LineKind.Forward;
    if (id !== H.Other) {
      const vs = valueStart(buf, c + 1, eol);
      NAMED[namedLength] = id;
      NAMED[namedLength + 1] = vs;
      NAMED[namedLength + 2] = valueEnd(buf, vs, eol);
      namedLength += 3;
      kind = id === H.ForwardedFor ? LineKind.ForwardedFor : id === H.Epoch ? LineKind.Epoch : id === H.Host || id === H.ContentLength || id === H.RequestId ? LineKind.Forward : LineKind.Drop;
    }
    lines.push(p, eol, kind);
    p = eol + 2;
  }
  return undefined;
}

/** scanError says why scanHeaders refused a head, checking each line in the order the rules are stated (line end, folding, name, value). */
function scanError(buf: Buffer, from: number, end: number): HeadError {
  let p = from;
  const stop = end - 2;
  while (p < stop) {
    const eol = buf.indexOf(CR, p);
    if (eol === -1 || eol >= stop + 1 || buf[eol + 1] !== LF) return ERR.bareLf;
    const first = buf[p]!;
    if (first === SP || first === HT) return ERR.obsFold;
    let c = p;
    while (c < eol && TCHAR[buf[c]!] === 1) c++;
    if (c === p || c === eol || buf[c] !== COLON) return ERR.headerName;
    for (let i = c + 1; i < eol; i++) if (VALUE_OK[buf[i]!] !== 1) return ERR.headerValue;
    p = eol + 2;
  }
  // Not reached for a head scanHeaders refused; refused all the same rather than let it through.
  return ERR.headerValue;
}

/**
 * parseRequestHead parses buf[from, end), a complete head (findHeadEnd found end). Returns the
 * head or why it is refused.
 */
export function parseRequestHead(buf: Buffer, from: number, end: number): RequestHead | HeadError {
  let p = from;
  // A server ignores empty lines before the request line (RFC 9112 §2.2).
  while (p + 1 < end && buf[p] === CR && buf[p + 1] === LF) p += 2;
  const start = p;
  const eol = buf.indexOf(CR, p);
  if (eol === -1 || eol >= end || buf[eol + 1] !== LF) return ERR.bareLf;
  // method SP target SP HTTP/1.x
  let i = p;
  while (i < eol && TCHAR[buf[i]!] === 1) i++;
  if (i === p || buf[i] !== SP) return ERR.requestLine;
  const method = methodOf(buf, p, i);
  const ts = ++i;
  while (i < eol && TARGET_OK[buf[i]!] === 1) i++;
  if (i === ts || buf[i] !== SP) return ERR.requestLine;
  const target = buf.toString("latin1", ts, i);
  i++;
  if (eol - i !== 8 || !isHttp1(buf, i)) return ERR.version;
  const minorByte = buf[i + 7]!;
  if (minorByte !== 48 && minorByte !== 49) return ERR.version;
  const minor = minorByte - 48;

  const lines: number[] = [];
  let host: string | undefined;
  let contentLength = -1;
  let chunked = false;
  let te = false;
  let expectContinue = false;
  let upgradeHeader = false;
  let hasRequestId = false;
  let forwardedFor: string | undefined;
  const conn = resetConn();
  // A header the proxy refuses on a line before a malformed one is the error answered, as the lines come.
  const err = scanHeaders(buf, eol + 2, end, lines);
  for (let n = 0; n < namedLength; n += 3) {
    const vs = NAMED[n + 1]!;
    const ve = NAMED[n + 2]!;
    switch (NAMED[n] as H) {
      case H.Host:
        if (host !== undefined) return ERR.duplicateHost;
        host = buf.toString("latin1", vs, ve);
        continue;
      case H.ContentLength: {
        const len = parseLength(buf, vs, ve);
        if (len < 0 || (contentLength !== -1 && contentLength !== len)) return ERR.contentLength;
        contentLength = len;
        continue;
      }
      case H.TransferEncoding:
        if (te) return ERR.chunkedTwice;
        te = true;
        if (ve - vs !== 7 || !eqLower(buf, vs, "chunked")) return ERR.coding;
        chunked = true;
        continue;
      case H.Connection:
        connectionTokens(buf, vs, ve, conn);
        continue;
      case H.Upgrade:
        upgradeHeader = true;
        continue;
      case H.Expect:
        if (ve - vs === 12 && eqLower(buf, vs, "100-continue")) expectContinue = true;
        else return ERR.expectation;
        continue;
      case H.RequestId:
        hasRequestId = true;
        continue;
      case H.ForwardedFor: {
        const v = buf.toString("latin1", vs, ve);
        forwardedFor = forwardedFor === undefined ? v : `${forwardedFor}, ${v}`;
        continue;
      }
      default:
        continue;
    }
  }
  if (err) return err;
  if (chunked && contentLength !== -1) return ERR.lengthAndChunked;
  if (chunked && minor === 0) return ERR.chunked10;
  if (minor === 1 && host === undefined) return ERR.missingHost;
  if (conn.named) dropNamed(buf, lines, conn.named);
  return {
    method,
    target,
    minor,
    start,
    end,
    lines,
    host,
    contentLength,
    chunked,
    keepAlive: !conn.close && (minor === 1 || conn.keepAlive),
    expectContinue,
    upgrade: upgradeHeader && conn.upgrade,
    hasRequestId,
    forwardedFor,
  };
}

/** isHeadError tells a refused head from a parsed one. */
export function isHeadError(h: object): h is HeadError {
  return "status" in h && "reason" in h;
}

/** ResponseError: an instance's head the proxy cannot frame (it answers 502 and closes the connection). */
export const RESPONSE_ERR = headError(400, "bad-response", "the instance's response head could not be parsed");

/** parseResponseHead parses an instance's complete response head buf[from, end). */
export function parseResponseHead(buf: Buffer, from: number, end: number): ResponseHead | HeadError {
  const eol = buf.indexOf(CR, from);
  if (eol === -1 || eol >= end || buf[eol + 1] !== LF) return RESPONSE_ERR;
  // HTTP/1.x SP 3DIGIT [SP reason]
  if (eol - from < 12 || !isHttp1(buf, from) || buf[from + 8] !== SP) return RESPONSE_ERR;
  const minorByte = buf[from + 7]!;
  if (minorByte !== 48 && minorByte !== 49) return RESPONSE_ERR;
  let status = 0;
  for (let i = from + 9; i < from + 12; i++) {
    const b = buf[i]!;
    if (b < 48 || b > 57) return RESPONSE_ERR;
    status = status * 10 + (b - 48);
  }
  if (status < 100 || (eol > from + 12 && buf[from + 12] !== SP)) return RESPONSE_ERR;
  for (let i = from + 12; i < eol; i++) if (VALUE_OK[buf[i]!] !== 1) return RESPONSE_ERR;
  const minor = minorByte - 48;
  const lines: number[] = [];
  let contentLength = -1;
  let chunked = false;
  const conn = resetConn();
  // A header the proxy refuses on a line before a malformed one is the error answered, as the lines come.
  const err = scanHeaders(buf, eol + 2, end, lines);
  for (let n = 0; n < namedLength; n += 3) {
    const id = NAMED[n] as H;
    const vs = NAMED[n + 1]!;
    const ve = NAMED[n + 2]!;
    if (id === H.ContentLength) {
      const len = parseLength(buf, vs, ve);
      if (len < 0 || (contentLength !== -1 && contentLength !== len)) return RESPONSE_ERR;
      contentLength = len;
    } else if (id === H.TransferEncoding) {
      // Only chunked is framed here. Another coding would run to the close (RFC 9112 §6.3) and,
      // its header being hop-by-hop, reach the client undecodable: refused as a bad response.
      if (chunked || ve - vs !== 7 || !eqLower(buf, vs, "chunked")) return RESPONSE_ERR;
      chunked = true;
    } else if (id === H.Connection) connectionTokens(buf, vs, ve, conn);
  }
  if (err) return err;
  if (conn.named) dropNamed(buf, lines, conn.named);
  // Transfer-Encoding overrides Content-Length (RFC 9112 §6.3); the length line is then not forwarded.
  if (chunked && contentLength !== -1) {
    for (let i = 0; i < lines.length; i += 3) if (headerId(buf, lines[i]!, 14) === H.ContentLength && buf[lines[i]! + 14] === COLON) lines[i + 2] = LineKind.Drop;
    contentLength = -1;
  }
  // Only the framing headers are dropped from responses: the request-side kinds do not apply.
  for (let i = 2; i < lines.length; i += 3) if (lines[i] !== LineKind.Drop) lines[i] = LineKind.Forward;
  return {
    status,
    minor,
    statusAt: from + 9,
    statusLineEnd: eol,
    end,
    lines,
    contentLength,
    chunked,
    keepAlive: !conn.close && (minor === 1 || conn.keepAlive),
  };
}

/** headerValue returns the first value of a header (name lowercase) among a parsed head's lines. */
export function headerValue(buf: Buffer, lines: readonly number[], name: string): string | undefined {
  for (let i = 0; i < lines.length; i += 3) {
    const s = lines[i]!;
    if (buf[s + name.length] !== COLON || !eqLower(buf, s, name)) continue;
    const e = lines[i + 1]!;
    const vs = valueStart(buf, s + name.length + 1, e);
    return buf.toString("latin1", vs, valueEnd(buf, vs, e));
  }
  return undefined;
}
