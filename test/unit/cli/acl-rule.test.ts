import { describe, expect, it } from "vitest";
import { describeRule, parseRule } from "../../../src/cli/acl-commands.js";
import { UsageError } from "../../../src/cli/errors.js";

describe("raftmesh acl --rule", () => {
  it("acl rule: a role alone, or with one service or key scope, reads back as written", () => {
    for (const text of ["read", "admin", "write:service=orders", "read:service=orders*", "read:key=config/", "write:key=a=b"]) {
      expect(describeRule(parseRule(text))).toBe(text);
    }
    expect(parseRule("write:service=orders")).toEqual({ role: "write", services: "orders", keys: "" });
    expect(parseRule("read:key=config/")).toEqual({ role: "read", services: "", keys: "config/" });
  });

  it("acl rule: a bad rule is a usage error (exit 2) that names the rule and what is wrong", () => {
    const cases: [string, string][] = [
      ["root", "the role must be read, write or admin"],
      ["", "the role must be read, write or admin"],
      ["write:svc=orders", "the scope must be service=NAME or key=PREFIX"],
      ["write:service", "the scope must be service=NAME or key=PREFIX"],
      ["read:key=", "key= needs a value"],
    ];
    for (const [text, why] of cases) {
      expect(() => parseRule(text)).toThrow(UsageError);
      expect(() => parseRule(text)).toThrow(`--rule "${text}": ${why}`);
    }
  });
});
