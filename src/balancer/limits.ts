/**
 * Limits of the balancing endpoint. Each number says why; the tests in test/integration/balancer
 * drive requests to the limit and past it.
 */

/**
 * HEADER_BYTES_MAX bounds a request's head (request line and headers): 16 KiB, Node's and nginx's
 * large_client_header_buffers order of size. Past it the client gets 431, and no connection holds
 * more than this of unparsed head.
 */
export const HEADER_BYTES_MAX = 16 * 1024;

/**
 * HEADERS_TIMEOUT_MS: a client must send its whole head within this time (slowloris defence). 10 s
 * is far above any honest client on a LAN and keeps a trickling connection's cost bounded.
 */
export const HEADERS_TIMEOUT_MS = 10_000;

/** CLIENT_IDLE_TIMEOUT_MS closes a keep-alive client connection idle this long (above wrk's and most pools' reuse). */
export const CLIENT_IDLE_TIMEOUT_MS = 65_000;

/**
 * CLIENT_CONNECTIONS_MAX bounds the connections one listener holds at once (each costs a socket and
 * a parser, a few KiB): far above the local applications a node serves.
 */
export const CLIENT_CONNECTIONS_MAX = 10_000;

/**
 * UPSTREAM_SOCKETS_MAX bounds the connections to one endpoint (the per-instance pool): requests
 * past it wait in the pool's queue, so a slow instance cannot take every file descriptor.
 */
export const UPSTREAM_SOCKETS_MAX = 256;

/** UPSTREAM_IDLE_SOCKETS_MAX bounds the idle keep-alive connections kept per endpoint. */
export const UPSTREAM_IDLE_SOCKETS_MAX = 64;

/**
 * UPSTREAM_IDLE_TIMEOUT_MS closes an idle pooled upstream connection before the backend does: Node's
 * servers close idle connections at 5 s, and a request written onto a socket the backend is closing
 * fails in a way that is unsafe to retry for a POST.
 */
export const UPSTREAM_IDLE_TIMEOUT_MS = 4_000;

/**
 * UPSTREAM_RESPONSE_TIMEOUT_MS bounds one try's wait for response headers when the service sets no
 * per-try timeout (perTryTimeoutMs 0): a hung instance releases its request after 30 s.
 */
export const UPSTREAM_RESPONSE_TIMEOUT_MS = 30_000;

/**
 * RETRY_BODY_BYTES_MAX: request bodies up to this size (declared by Content-Length) are kept until
 * the response starts, so a retry can send them again; longer or chunked bodies are streamed and
 * retried only when the connection failed before any byte of them was read. 64 KiB covers typical
 * API requests at a bounded cost per request.
 */
export const RETRY_BODY_BYTES_MAX = 64 * 1024;

/** RETRY_BACKOFF_BASE_MS and RETRY_BACKOFF_MAX_MS shape the full-jitter backoff between tries (Envoy: 25 ms base). */
export const RETRY_BACKOFF_BASE_MS = 25;
export const RETRY_BACKOFF_MAX_MS = 250;

/** RETRIES_MAX caps a service's configured retries, whatever the registry says (3 tries beyond the first). */
export const RETRIES_MAX = 3;

/** TCP_CONNECT_TIMEOUT_MS bounds the connect to one endpoint for a TCP upstream before the next is tried. */
export const TCP_CONNECT_TIMEOUT_MS = 2_000;

/**
 * TCP_READ_BUFFER_BYTES is the read buffer of one proxied TCP upstream connection, reused for
 * every read: 16 KiB holds a loopback or LAN segment burst in one read, and at CLIENT_CONNECTIONS_MAX
 * connections of one listener costs 160 MiB at most (Node's default reads take 64 KiB each).
 */
export const TCP_READ_BUFFER_BYTES = 16 * 1024;

/** TCP_PENDING_BYTES_MAX bounds what a TCP client may send while the upstream connection is opening (then it is paused). */
export const TCP_PENDING_BYTES_MAX = 64 * 1024;

/**
 * BREAKER_SERVICE_SLOTS bounds the services whose circuit-breaker counts are shared across a
 * node's workers (a slot per service name, kept for the pool's life so a worker never counts into
 * another service's slot): 4,096 services cost 48 KiB per worker plus 48 KiB. A service past it
 * is counted per worker (its limits then hold per worker).
 */
export const BREAKER_SERVICE_SLOTS = 4_096;

/** TABLE_FLUSH_MS: registry changes of one loop turn go to the workers together, at most this late. */
export const TABLE_FLUSH_MS = 0;

/** WORKERS_RANGE: at least one worker; more than 64 is beyond any machine this runs on. */
export const WORKERS_RANGE = [1, 64] as const;
