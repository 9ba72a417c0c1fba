/**
 * echo: how an error message quotes a value the caller sent. A quoted value is cut at
 * ECHO_CHARS_MAX characters, so a hostile or mistaken request field of any size cannot make the
 * answer itself too large to deliver (a gRPC status travels in a header: an 80 KB echo exceeded
 * what the HTTP/2 peer accepts, and the call, and the next one on its channel, ran to their deadlines).
 */

/** ECHO_CHARS_MAX: 200 characters identify any real key, name or address (they are at most 1 KiB, and their starts differ). */
export const ECHO_CHARS_MAX = 200;

/** echo is `value`, or its first ECHO_CHARS_MAX characters followed by "…(N bytes)" (N its full UTF-8 size). */
export function echo(value: string): string {
  if (value.length <= ECHO_CHARS_MAX) return value;
  return `${value.slice(0, ECHO_CHARS_MAX)}…(${Buffer.byteLength(value)} bytes)`;
}

/**
 * STATUS_DETAILS_CHARS_MAX bounds the whole text of a status an API answers with. The text goes
 * out percent-encoded in the grpc-message trailer (up to 3 bytes per character), and gRPC clients
 * commonly accept header lists of 8 to 16 KiB (grpc-go 16 KiB): 2,048 characters stay below
 * either whatever they contain. Messages are short; this is the backstop for an echo missed.
 */
export const STATUS_DETAILS_CHARS_MAX = 2_048;

/** clipDetails cuts a status text at STATUS_DETAILS_CHARS_MAX characters, saying so. */
export function clipDetails(details: string): string {
  if (details.length <= STATUS_DETAILS_CHARS_MAX) return details;
  return `${details.slice(0, STATUS_DETAILS_CHARS_MAX)}…(cut from ${details.length} characters)`;
}
