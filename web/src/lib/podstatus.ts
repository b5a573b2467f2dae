// A pod's one-word status and readiness as `kubectl get pods` prints them (printPod in
// k8s.io/kubernetes/pkg/printers/internalversion): init container states, waiting and
// terminated reasons, Terminating, NodeLost, Completed.
import type { KObj } from "../api/types";
import { parseQuantity } from "./format";

export interface PodSummary {
  status: string;
  ready: string;
  restarts: number;
  readyCount: number;
  total: number;
}

export function podSummary(pod: KObj): PodSummary {
  const spec = pod.spec ?? {};
  const st = pod.status ?? {};
  const containers: any[] = spec.containers ?? [];
  const total = containers.length;
  let restarts = 0;
  let readyCount = 0;
  let reason: string = st.reason || st.phase || "Unknown";

  const inits: any[] = st.initContainerStatuses ?? [];
  const initCount = (spec.initContainers ?? []).length;
  let initializing = false;
  inits.forEach((c, i) => {
    restarts += c.restartCount ?? 0;
    const term = c.state?.terminated;
    const wait = c.state?.waiting;
    if (term && term.exitCode === 0) return;
    if (term) {
      reason = term.reason ? `Init:${term.reason}` : term.signal ? `Init:Signal:${term.signal}` : `Init:ExitCode:${term.exitCode}`;
      initializing = true;
    } else if (wait && wait.reason && wait.reason !== "PodInitializing") {
      reason = `Init:${wait.reason}`;
      initializing = true;
    } else {
      reason = `Init:${i}/${initCount}`;
      initializing = true;
    }
  });
  if (!initializing) {
    let hasRunning = false;
    const statuses: any[] = st.containerStatuses ?? [];
    for (let i = statuses.length - 1; i >= 0; i--) {
      const c = statuses[i];
      restarts += c.restartCount ?? 0;
      const wait = c.state?.waiting;
      const term = c.state?.terminated;
      if (wait?.reason) reason = wait.reason;
      else if (term?.reason) reason = term.reason;
      else if (term) reason = term.signal ? `Signal:${term.signal}` : `ExitCode:${term.exitCode}`;
      else if (c.ready && c.state?.running) {
        hasRunning = true;
        readyCount++;
      }
    }
    if (reason === "Completed" && hasRunning) {
      reason = (st.conditions ?? []).some((c: any) => c.type === "Ready" && c.status === "True") ? "Running" : "NotReady";
    }
  } else {
    for (const c of st.containerStatuses ?? []) restarts += c.restartCount ?? 0;
  }
  if (pod.metadata?.deletionTimestamp) reason = st.reason === "NodeLost" ? "Unknown" : "Terminating";
  return { status: reason, ready: `${readyCount}/${total}`, restarts, readyCount, total };
}

export function podRequests(pod: KObj): { cpu: number; memory: number; gpu: number } {
  // effective request: max(sum of containers, any init container), as the scheduler counts
  const sum = { cpu: 0, memory: 0, gpu: 0 };
  const q = (c: any, k: string) => c.resources?.requests?.[k] ?? c.resources?.limits?.[k];
  for (const c of pod.spec?.containers ?? []) {
    sum.cpu += num(q(c, "cpu"));
    sum.memory += num(q(c, "memory"));
    sum.gpu += num(q(c, "nvidia.com/gpu"));
  }
  for (const c of pod.spec?.initContainers ?? []) {
    sum.cpu = Math.max(sum.cpu, num(q(c, "cpu")));
    sum.memory = Math.max(sum.memory, num(q(c, "memory")));
    sum.gpu = Math.max(sum.gpu, num(q(c, "nvidia.com/gpu")));
  }
  return sum;
}

function num(v: unknown): number {
  const n = parseQuantity(v as string);
  return isFinite(n) ? n : 0;
}
