import { mkdtempSync, readdirSync, readFileSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { LOG_FILE_BYTES_MAX, LOG_FILES_KEPT, RotatingLogFile } from "../../../src/local/log-files.js";

const dir = () => mkdtempSync(join(tmpdir(), "raftmesh-logs-"));

describe("rotating log files", () => {
  it("log files: exactly bytesMax stays in one file; one byte more rotates", () => {
    const d = dir();
    const f = new RotatingLogFile(join(d, "out.log"), { bytesMax: 100, filesKept: 2 });
    f.write("a".repeat(60));
    f.write("b".repeat(40));
    expect(readdirSync(d)).toEqual(["out.log"]);
    expect(statSync(join(d, "out.log")).size).toBe(100);
    f.write("c");
    expect(readdirSync(d).sort()).toEqual(["out.log", "out.log.1"]);
    expect(readFileSync(join(d, "out.log.1"), "utf8")).toBe(`${"a".repeat(60)}${"b".repeat(40)}`);
    expect(readFileSync(join(d, "out.log"), "utf8")).toBe("c");
    f.close();
  });

  it("log files: a chunk larger than the bound is split; at most filesKept old files, the oldest dropped; nothing in between lost", () => {
    const d = dir();
    const f = new RotatingLogFile(join(d, "out.log"), { bytesMax: 10, filesKept: 3 });
    const text = Array.from({ length: 100 }, (_, i) => String.fromCharCode(65 + (i % 26))).join("");
    f.write(text);
    f.close();
    expect(readdirSync(d).sort()).toEqual(["out.log", "out.log.1", "out.log.2", "out.log.3"]);
    for (const name of readdirSync(d)) expect(statSync(join(d, name)).size).toBeLessThanOrEqual(10);
    const kept = ["out.log.3", "out.log.2", "out.log.1", "out.log"].map((n) => readFileSync(join(d, n), "utf8")).join("");
    expect(kept).toBe(text.slice(-40));
  });

  it("log files: a reopened file continues at its size (a restarted process appends, the bound still holds)", () => {
    const d = dir();
    new RotatingLogFile(join(d, "out.log"), { bytesMax: 10, filesKept: 1 }).write("12345678");
    const again = new RotatingLogFile(join(d, "out.log"), { bytesMax: 10, filesKept: 1 });
    again.write("9012");
    again.close();
    expect(readFileSync(join(d, "out.log.1"), "utf8")).toBe("1234567890");
    expect(readFileSync(join(d, "out.log"), "utf8")).toBe("12");
  });

  it("log files: at the default bound, LOG_FILE_BYTES_MAX bytes fill one file and the next byte rotates", () => {
    const d = dir();
    const f = new RotatingLogFile(join(d, "out.log"));
    f.write(Buffer.alloc(LOG_FILE_BYTES_MAX, 120));
    expect(readdirSync(d)).toEqual(["out.log"]);
    f.write("y");
    f.close();
    expect(readdirSync(d).sort()).toEqual(["out.log", "out.log.1"]);
    expect(statSync(join(d, "out.log.1")).size).toBe(LOG_FILE_BYTES_MAX);
    expect(statSync(join(d, "out.log")).size).toBe(1);
  });

  it("log files: filesKept 0 keeps only the current file; the defaults are 10 MiB and 5 files", () => {
    const d = dir();
    const f = new RotatingLogFile(join(d, "out.log"), { bytesMax: 4, filesKept: 0 });
    f.write("abcdefghij");
    f.close();
    expect(readdirSync(d)).toEqual(["out.log"]);
    expect(readFileSync(join(d, "out.log"), "utf8")).toBe("ij");
    expect(LOG_FILE_BYTES_MAX).toBe(10 * 1024 * 1024);
    expect(LOG_FILES_KEPT).toBe(5);
    expect(() => new RotatingLogFile(join(d, "x.log"), { bytesMax: 0 })).toThrow(/bytesMax/);
  });
});
