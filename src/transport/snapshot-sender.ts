/**
 * SnapshotSender runs the InstallSnapshot calls to one peer, one at a time, each with a deadline,
 * and reports every Snap message it was given exactly once: acknowledged or failed.
 */
import assert from "node:assert/strict";
import type { Client, ClientWritableStream, ServiceError } from "@grpc/grpc-js";
import type { LogIndex, Message, NodeId, Term } from "../raft/types.js";
import { SnapshotBusyError } from "./errors.js";
import { type CallIdentity, identityMetadata } from "./identity.js";
import type { TransportLimits } from "./limits.js";
import type { TransportLogger } from "./logger.js";
import { peerMethods } from "./proto.js";
import { snapshotChunks } from "./snapshot-chunks.js";
import { encodeMessage, type WireSnapshotChunk } from "./wire.js";

/** SnapshotReport says how one snapshot sent to a peer ended; the host passes it on to the core. */
export interface SnapshotReport {
  readonly peer: NodeId;
  readonly index: LogIndex;
  readonly term: Term;
  readonly ok: boolean;
  /** error says why it failed: a gRPC ServiceError, or SnapshotBusyError when another was in flight. */
  readonly error?: Error;
}

/** SnapshotSenderOptions configure a SnapshotSender; the client is the peer's channel, shared with its stream. */
export interface SnapshotSenderOptions {
  readonly identity: CallIdentity;
  readonly client: Client;
  readonly limits: TransportLimits;
  readonly logger: TransportLogger;
  readonly onSnapshot: (report: SnapshotReport) => void;
}

type Call = ClientWritableStream<WireSnapshotChunk>;

/** SnapshotSender sends Snap messages to one peer through InstallSnapshot. */
export class SnapshotSender {
  private call: Call | undefined;
  private closed = false;
  private sent = 0;
  private failed = 0;

  constructor(private readonly options: SnapshotSenderOptions) {}

  /** send starts the transfer of m.snapshot, or reports SnapshotBusyError at once when one is running. */
  send(m: Message): void {
    const snapshot = m.snapshot;
    assert(snapshot, "sendSnapshot needs a message with a snapshot");
    if (this.call) {
      this.options.logger.warn({ index: snapshot.meta.index }, "snapshot dropped: another is in flight");
      const error = new SnapshotBusyError(this.options.identity.targetId);
      queueMicrotask(() => this.report(m, error));
      return;
    }
    const { limits, identity } = this.options;
    const chunks = snapshotChunks(encodeMessage(m), snapshot.data, limits.snapshotChunkBytesMax);
    const { installSnapshot } = peerMethods();
    const startedMs = Date.now();
    const call: Call = this.options.client.makeClientStreamRequest(
      installSnapshot.path,
      installSnapshot.requestSerialize,
      installSnapshot.responseDeserialize,
      identityMetadata(identity),
      { deadline: startedMs + limits.snapshotDeadlineMs },
      (error) => this.onEnd(call, m, error, startedMs),
    );
    this.call = call;
    this.options.logger.info({ index: snapshot.meta.index, bytes: snapshot.data.length, chunks: chunks.length }, "snapshot sending");
    this.write(call, chunks, 0);
  }

  /** stats returns how many snapshots were acknowledged and how many failed. */
  stats(): { sent: number; failed: number } {
    return { sent: this.sent, failed: this.failed };
  }

  /** close cancels a running transfer without reporting it: after close the host hears nothing more. */
  close(): void {
    this.closed = true;
    this.call?.cancel();
    this.call = undefined;
  }

  /** write sends chunks from `from` on, pausing on backpressure; it stops when the call ended early. */
  private write(call: Call, chunks: readonly WireSnapshotChunk[], from: number): void {
    for (let i = from; i < chunks.length; i++) {
      if (call !== this.call) return;
      if (!call.write(chunks[i]!)) {
        call.once("drain", () => this.write(call, chunks, i + 1));
        return;
      }
    }
    if (call === this.call) call.end();
  }

  private onEnd(call: Call, m: Message, error: ServiceError | null, startedMs: number): void {
    if (call !== this.call) return;
    this.call = undefined;
    const fields = { index: m.snapshot?.meta.index, elapsedMs: Date.now() - startedMs };
    if (error) this.options.logger.warn({ ...fields, code: error.code, details: error.details }, "snapshot failed");
    else this.options.logger.info(fields, "snapshot acknowledged");
    this.report(m, error ?? undefined);
  }

  private report(m: Message, error: Error | undefined): void {
    if (this.closed) return;
    if (error) this.failed++;
    else this.sent++;
    const meta = m.snapshot!.meta;
    const report: SnapshotReport = { peer: this.options.identity.targetId, index: meta.index, term: meta.term, ok: !error };
    this.options.onSnapshot(error ? { ...report, error } : report);
  }
}
