import { type Metadata, status } from "@grpc/grpc-js";
import { METADATA_FINAL, METADATA_LEADER, METADATA_NOT_APPLIED } from "../common/metadata.js";

/** RaftmeshError is a failed call: the gRPC code, the server's message, and what the client may do next. */
export class RaftmeshError extends Error {
  constructor(
    readonly code: status,
    readonly details: string,
    readonly endpoint: string,
    /** notApplied: the server says the request did not take effect, so sending it again is safe. */
    readonly notApplied: boolean,
    readonly leader: string,
    /** final: the server says sending this request again gets the same answer (a seq out of the session window). */
    readonly final = false,
  ) {
    super(`${status[code] ?? code} from ${endpoint}: ${details}`);
    this.name = "RaftmeshError";
  }

  static from(err: unknown, endpoint: string): RaftmeshError {
    const e = err as { code?: number; details?: string; message?: string; metadata?: Metadata };
    const md = e.metadata;
    return new RaftmeshError(
      typeof e.code === "number" ? e.code : status.UNKNOWN,
      e.details ?? e.message ?? String(err),
      endpoint,
      (md?.get(METADATA_NOT_APPLIED).length ?? 0) > 0,
      String(md?.get(METADATA_LEADER)[0] ?? ""),
      (md?.get(METADATA_FINAL).length ?? 0) > 0,
    );
  }
}
