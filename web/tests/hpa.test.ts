import { describe, expect, it } from "vitest";
import { hpaTargets, metricRow, metricRows } from "../src/lib/hpa";
import type { KObj } from "../src/api/types";

const cpu80 = { type: "Resource", resource: { name: "cpu", target: { type: "Utilization", averageUtilization: 80 } } };
const mem = { type: "Resource", resource: { name: "memory", target: { type: "AverageValue", averageValue: "500Mi" } } };
const pods = { type: "Pods", pods: { metric: { name: "rps" }, target: { type: "AverageValue", averageValue: "10" } } };
const objAvg = { type: "Object", object: { metric: { name: "hits" }, describedObject: { kind: "Ingress", name: "main" }, target: { type: "AverageValue", averageValue: "3" } } };
const ext = { type: "External", external: { metric: { name: "queue" }, target: { type: "Value", value: "30" } } };
const ctr = { type: "ContainerResource", containerResource: { name: "cpu", container: "app", target: { type: "Utilization", averageUtilization: 50 } } };

const hpa = (metrics: any[] | undefined, currentMetrics?: any[]) => ({ metadata: { name: "h" }, spec: { metrics }, status: { currentMetrics } }) as KObj;

describe("kubectl's TARGETS column", () => {
  it.each([
    [undefined, undefined, "<none>"],
    [[cpu80], undefined, "cpu: <unknown>/80%"],
    [[cpu80], [{ type: "Resource", resource: { name: "cpu", current: { averageUtilization: 23, averageValue: "46m" } } }], "cpu: 23%/80%"],
    [[mem], [{ type: "Resource", resource: { name: "memory", current: { averageValue: "120Mi" } } }], "memory: 120Mi/500Mi"],
    [[pods], [{ type: "Pods", pods: { current: { averageValue: "7" } } }], "7/10"],
    [[objAvg], [], "<unknown>/3 (avg)"],
    [[ext], [{ type: "External", external: { current: { value: "12" } } }], "12/30"],
    [[ctr], undefined, "cpu: <unknown>/50%"],
    [[{ type: "Weird" }], undefined, "<unknown type>"],
    [[cpu80, mem, pods], undefined, "cpu: <unknown>/80%, memory: <unknown>/500Mi + 1 more..."],
  ])("%#", (metrics, current, want) => {
    expect(hpaTargets(hpa(metrics, current))).toBe(want);
  });
  it("reads a Resource target without utilization as <auto>", () => {
    expect(metricRow({ type: "Resource", resource: { name: "cpu", target: { type: "Utilization" } } }, undefined).target).toBe("<auto>");
  });
});

describe("metric rows for the HPA's page", () => {
  it("pairs each spec metric with the status at its index, naming what it measures", () => {
    expect(metricRows(hpa([ctr, objAvg, ext], [{ type: "ContainerResource", containerResource: { current: { averageUtilization: 61 } } }]))).toEqual([
      { type: "ContainerResource", name: "cpu (app)", current: "61%", target: "50%" },
      { type: "Object", name: "hits on Ingress/main", current: "<unknown>", target: "3 (avg)" },
      { type: "External", name: "queue", current: "<unknown>", target: "30" },
    ]);
  });
});
