/**
 * Which service a request is for: the path prefix `/svc/<service>/` (stripped before forwarding)
 * or else the Host header (`<service>`, `<service>.service`, with or without a port). Only this
 * much of the request is looked at to route it.
 */

/** SVC_PREFIX is the path prefix that names a service. */
export const SVC_PREFIX = "/svc/";

/** Target is a routed request: its service and the path to send upstream. */
export interface Target {
  readonly service: string;
  readonly path: string;
}

/** routeOf finds the service of a request (undefined when neither path nor host names one). */
export function routeOf(url: string, host: string | undefined): Target | undefined {
  if (url.startsWith(SVC_PREFIX)) {
    const end = url.indexOf("/", SVC_PREFIX.length);
    const q = url.indexOf("?", SVC_PREFIX.length);
    const stop = end === -1 ? (q === -1 ? url.length : q) : q !== -1 && q < end ? q : end;
    const service = url.slice(SVC_PREFIX.length, stop);
    if (service === "") return undefined;
    const rest = url.slice(stop);
    return { service, path: rest === "" ? "/" : rest.startsWith("?") ? `/${rest}` : rest };
  }
  if (!host) return undefined;
  return { service: serviceOfHost(host), path: url };
}

/** serviceOfHost strips the port and a `.service` suffix from a Host or :authority value. */
export function serviceOfHost(host: string): string {
  let h = host;
  const colon = h.lastIndexOf(":");
  if (colon !== -1 && h.indexOf("]") < colon) h = h.slice(0, colon);
  if (h.endsWith(".service")) h = h.slice(0, -".service".length);
  return h.toLowerCase();
}
