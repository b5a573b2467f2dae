import { describe, expect, it } from "vitest";
import { profileOf, recordsForPod, rejectedTotal, scoreMatrix } from "../src/lib/decisions";
import type { KObj } from "../src/api/types";

// the record shape of docs/scheduling.md ("Scheduling decisions")
const record = (name: string, uid: string, t: string, extra: any = {}): KObj => ({
  apiVersion: "scheduling.controlplane.io/v1",
  kind: "SchedulingDecision",
  metadata: { name, namespace: "default", labels: { "scheduling.controlplane.io/profile": "default-scheduler" } },
  pod: { name: name.split(".")[0], namespace: "default", uid },
  decisionTime: t,
  ...extra,
});

describe("decision records", () => {
  const pod: KObj = { metadata: { name: "web-1", namespace: "default", uid: "u1" } };
  it("finds a pod's records by uid, newest first", () => {
    const rs = [record("web-1.a", "u1", "2026-01-01T00:00:01Z"), record("web-1.b", "u1", "2026-01-01T00:00:05Z"), record("web-1.c", "old-uid", "2026-01-01T00:00:09Z"), record("web-2.d", "u2", "2026-01-01T00:00:09Z")];
    expect(recordsForPod(rs, pod).map((r) => r.metadata.name)).toEqual(["web-1.b", "web-1.a"]);
  });
  it("builds the plugin x node matrix, best candidate first", () => {
    const r = record("web-1.a", "u1", "2026-01-01T00:00:01Z", {
      profile: "ddqn-scheduler",
      filters: [{ plugin: "NodeResourcesFit", rejected: 3, reasons: [{ reason: "Insufficient cpu", count: 3 }] }, { plugin: "TaintToleration", rejected: 1, reasons: [] }],
      candidates: [
        { node: "n2", score: 300, plugins: [{ name: "NodeResourcesFit", raw: 50, normalized: 50, weight: 1, weighted: 50 }] },
        { node: "n1", score: 539, chosen: true, plugins: [{ name: "NodeResourcesFit", raw: 87, normalized: 87, weight: 1, weighted: 87 }, { name: "DDQN", raw: 63, normalized: 63, weight: 1000, weighted: 63000, value: 0.0412 }] },
      ],
    });
    const m = scoreMatrix(r);
    expect(m.candidates.map((c) => c.node)).toEqual(["n1", "n2"]);
    expect(m.plugins).toEqual(["NodeResourcesFit", "DDQN"]);
    expect(m.cell("n1", "DDQN")?.value).toBe(0.0412);
    expect(m.cell("n2", "DDQN")).toBeUndefined();
    expect(rejectedTotal(r)).toBe(4);
    expect(profileOf(r)).toBe("ddqn-scheduler");
    expect(profileOf(record("x.y", "u", "2026-01-01T00:00:00Z"))).toBe("default-scheduler");
  });
});
