import { describe, expect, it } from "vitest";
import { drainable, previousReplicaSet } from "../src/actions";
import type { KObj } from "../src/api/types";

const deploy: KObj = { metadata: { name: "web", uid: "d1", annotations: { "deployment.kubernetes.io/revision": "3" } } };
const rs = (name: string, rev: number, owner = "d1"): KObj => ({ metadata: { name, uid: name, annotations: { "deployment.kubernetes.io/revision": String(rev) }, ownerReferences: [{ apiVersion: "apps/v1", kind: "Deployment", name: "web", uid: owner }] } });

describe("rollout undo picks the previous revision", () => {
  it("the highest revision below the current one", () => {
    expect(previousReplicaSet(deploy, [rs("a", 1), rs("b", 2), rs("c", 3)])?.metadata.name).toBe("b");
  });
  it("ignores other deployments' ReplicaSets", () => {
    expect(previousReplicaSet(deploy, [rs("x", 2, "other"), rs("c", 3)])).toBeNull();
  });
});

describe("drain skips DaemonSet and mirror pods", () => {
  it.each([
    [{ metadata: { name: "a" } }, true],
    [{ metadata: { name: "b", ownerReferences: [{ kind: "DaemonSet", name: "d", uid: "u", apiVersion: "apps/v1" }] } }, false],
    [{ metadata: { name: "c", annotations: { "kubernetes.io/config.mirror": "x" } } }, false],
    [{ metadata: { name: "d", deletionTimestamp: "2026-01-01T00:00:00Z" } }, false],
  ])("%#", (p, want) => expect(drainable(p as KObj)).toBe(want));
});
