import { echo } from "../common/echo.js";
import { rename, writeFile } from "node:fs/promises";
import { isDeepStrictEqual } from "node:util";
import { join } from "node:path";
import { childLogger, type Logger } from "../common/logger.js";
import { type FileOutcome, mergeOutcomes, parseDefinitions, readDefinitionsDir } from "./definitions.js";
import { DefinitionError, ProcessUnavailableError } from "./errors.js";
import { type InstanceClient, LocalInstance } from "./instance.js";
import type { Supervise, SupervisedProcess } from "./process.js";
import type { Definition } from "./types.js";

/** LocalAgentOptions: where definitions live, how to reach the node, and how to run processes. */
export interface LocalAgentOptions {
  readonly servicesDir: string;
  /** logDir is the default parent directory of supervised processes' logs. */
  readonly logDir: string;
  /** client reaches this node's client API (on loopback), as any external instance would. */
  readonly client: InstanceClient;
  readonly logger: Logger;
  /** supervise builds a process's supervisor; without it a definition naming a process is refused. */
  readonly supervise?: Supervise;
}

/** ReloadReport says what a reload did: keys ("service/id") by outcome, and the refused files. */
export interface ReloadReport {
  readonly added: string[];
  readonly changed: string[];
  readonly removed: string[];
  unchanged: number;
  readonly errors: { file: string; field: string; reason: string }[];
}

/** DEFINITION_FILE_NAME_PATTERN: a file written through the admin endpoint is a plain name in the services directory. */
export const DEFINITION_FILE_NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}\.json$/;

/**
 * LocalAgent makes the instances of the services directory's definitions true: it registers and
 * heartbeats the defined instances (LocalInstance), reconciles on reload (new definitions
 * registered, changed ones re-registered, removed ones deregistered) and keeps, for a file that
 * has turned bad, the last good version of that file. Reloads run one at a time.
 */
export class LocalAgent {
  private readonly instances = new Map<string, LocalInstance>();
  private lastGood = new Map<string, readonly Definition[]>();
  private queue: Promise<unknown> = Promise.resolve();
  private stopped = false;
  private readonly logger: Logger;

  constructor(private readonly opts: LocalAgentOptions) {
    this.logger = childLogger(opts.logger, { component: "local" });
  }

  /** start loads the definitions and starts their instances. */
  start(): Promise<ReloadReport> {
    return this.reload();
  }

  /** keys are the local instances now in force, sorted. */
  keys(): string[] {
    return [...this.instances.keys()].sort();
  }

  /** reload reads the services directory again and reconciles (SIGHUP, POST /reload). */
  reload(): Promise<ReloadReport> {
    return this.serial(() => this.reloadNow());
  }

  /**
   * writeDefinition validates text as a definition file and, if good, writes it into the services
   * directory as `name` (atomically: a reload never reads half a file) and reloads. A bad
   * definition throws a DefinitionError naming the field, and nothing is written.
   */
  writeDefinition(name: string, text: string): Promise<ReloadReport> {
    return this.serial(async () => {
      if (!DEFINITION_FILE_NAME_PATTERN.test(name)) throw new DefinitionError(echo(name), "name", `must match ${DEFINITION_FILE_NAME_PATTERN}`);
      const file = join(this.opts.servicesDir, name);
      const defs = parseDefinitions(text, { file, logDir: this.opts.logDir });
      if (!this.opts.supervise) for (const d of defs) if (d.process) throw new DefinitionError(file, "process", "cannot run here: this node has no process supervisor");
      const tmp = join(this.opts.servicesDir, `.${name}.${process.pid}.tmp`);
      await writeFile(tmp, text);
      await rename(tmp, file);
      return this.reloadNow();
    });
  }

  /** stop stops every instance's checks and heartbeats, and its process; registrations are left to expire at their TTL. */
  stop(): Promise<void> {
    return this.serial(async () => {
      this.stopped = true;
      await Promise.all([...this.instances.values()].map((i) => i.stop({ deregister: false, keepProcess: false })));
      this.instances.clear();
    });
  }

  private serial<T>(f: () => Promise<T>): Promise<T> {
    const run = this.queue.then(f, f);
    this.queue = run.catch(() => undefined);
    return run;
  }

  private async reloadNow(): Promise<ReloadReport> {
    const report: ReloadReport = { added: [], changed: [], removed: [], unchanged: 0, errors: [] };
    if (this.stopped) return report;
    let outcomes: FileOutcome[];
    try {
      outcomes = await readDefinitionsDir(this.opts.servicesDir, this.opts.logDir);
    } catch (err) {
      this.logger.error({ dir: this.opts.servicesDir, err: String(err) }, "cannot read the services directory; keeping the definitions in force");
      report.errors.push({ file: this.opts.servicesDir, field: "", reason: String(err) });
      return report;
    }
    const { definitions, good, errors } = mergeOutcomes(outcomes, this.lastGood);
    this.lastGood = good;
    for (const e of errors) {
      this.logger.error({ file: e.file, field: e.field, reason: e.reason }, "bad service definition; keeping the last good one of this file");
      report.errors.push({ file: e.file, field: e.field, reason: e.reason });
    }
    for (const [key, inst] of this.instances) {
      if (definitions.has(key)) continue;
      this.instances.delete(key);
      await inst.stop({ deregister: true, keepProcess: false });
      report.removed.push(key);
    }
    for (const [key, def] of definitions) {
      const old = this.instances.get(key);
      if (old && isDeepStrictEqual(old.def, def)) {
        report.unchanged++;
        continue;
      }
      const keepProcess = old?.proc !== undefined && isDeepStrictEqual(old.def.process, def.process);
      if (old) await old.stop({ deregister: false, keepProcess });
      let proc: SupervisedProcess | undefined;
      try {
        proc = keepProcess ? old?.proc : this.processOf(key, def);
      } catch (err) {
        this.logger.error({ file: def.file, key, err: String(err) }, "cannot run this definition's process; not registered");
        report.errors.push({ file: def.file, field: "process", reason: String(err) });
        if (old) this.instances.delete(key);
        continue;
      }
      const inst = new LocalInstance(def, this.opts.client, childLogger(this.logger, { instance: key }), proc);
      this.instances.set(key, inst);
      inst.start();
      (old ? report.changed : report.added).push(key);
    }
    if (report.added.length + report.changed.length + report.removed.length > 0 || errors.length > 0) {
      this.logger.info({ added: report.added, changed: report.changed, removed: report.removed, unchanged: report.unchanged, errors: errors.length }, "service definitions loaded");
    }
    return report;
  }

  private processOf(key: string, def: Definition): SupervisedProcess | undefined {
    if (!def.process) return undefined;
    if (!this.opts.supervise) throw new ProcessUnavailableError(key);
    return this.opts.supervise(`${def.instance.service}-${def.instance.id}`, def.process);
  }
}
