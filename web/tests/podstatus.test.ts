import { describe, expect, it } from "vitest";
import { podRequests, podSummary } from "../src/lib/podstatus";
import type { KObj } from "../src/api/types";

const pod = (status: any, spec: any = { containers: [{ name: "c" }] }, meta: any = {}): KObj => ({ metadata: { name: "p", ...meta }, spec, status });

describe("the status column of kubectl get pods", () => {
  it.each([
    ["pending", pod({ phase: "Pending" }), "Pending", "0/1"],
    ["running", pod({ phase: "Running", containerStatuses: [{ name: "c", ready: true, restartCount: 2, state: { running: {} } }] }), "Running", "1/1"],
    ["crashloop", pod({ phase: "Running", containerStatuses: [{ name: "c", ready: false, restartCount: 5, state: { waiting: { reason: "CrashLoopBackOff" } } }] }), "CrashLoopBackOff", "0/1"],
    ["completed", pod({ phase: "Succeeded", containerStatuses: [{ name: "c", state: { terminated: { reason: "Completed", exitCode: 0 } } }] }), "Completed", "0/1"],
    ["exit code", pod({ phase: "Failed", containerStatuses: [{ name: "c", state: { terminated: { exitCode: 3 } } }] }), "ExitCode:3", "0/1"],
    ["init waiting", pod({ phase: "Pending", initContainerStatuses: [{ name: "i", state: { waiting: { reason: "PodInitializing" } } }] }, { initContainers: [{ name: "i" }], containers: [{ name: "c" }] }), "Init:0/1", "0/1"],
    ["init failed", pod({ phase: "Pending", initContainerStatuses: [{ name: "i", state: { terminated: { exitCode: 1, reason: "Error" } } }] }, { initContainers: [{ name: "i" }], containers: [{ name: "c" }] }), "Init:Error", "0/1"],
    ["terminating", pod({ phase: "Running" }, undefined, { deletionTimestamp: "2026-01-01T00:00:00Z" }), "Terminating", "0/1"],
    ["evicted", pod({ phase: "Failed", reason: "Evicted" }), "Evicted", "0/1"],
  ])("%s", (_n, p, status, ready) => {
    const s = podSummary(p);
    expect(s.status).toBe(status);
    expect(s.ready).toBe(ready);
  });
  it("counts restarts", () => {
    expect(podSummary(pod({ phase: "Running", containerStatuses: [{ name: "c", restartCount: 4, ready: true, state: { running: {} } }] })).restarts).toBe(4);
  });
  it("effective requests: containers summed, init containers as a floor", () => {
    const p = pod({}, {
      initContainers: [{ name: "i", resources: { requests: { cpu: "2" } } }],
      containers: [
        { name: "a", resources: { requests: { cpu: "500m", memory: "1Gi", "nvidia.com/gpu": "1" } } },
        { name: "b", resources: { limits: { cpu: "250m", memory: "512Mi" } } },
      ],
    });
    expect(podRequests(p)).toEqual({ cpu: 2, memory: 1.5 * 1024 ** 3, gpu: 1 });
  });
});
