// Node usage over time for the overview's charts, from the Metrics API (metrics.k8s.io
// NodeMetrics, what `kubectl top nodes` reads). The Metrics API has no watch: it is read every
// 15 s, its resolution (metrics-server's and this cluster's metrics component's), while the
// overview is open; samples are kept for the page's life (the last hour). Without the API
// (404/503) the overview says "metrics unavailable" and shows allocations only.
import { reactive } from "vue";
import { get, ApiError } from "./api/client";
import { parseQuantity } from "./lib/format";

export const RESOLUTION_MS = 15_000;
const KEEP_MS = 3600_000;

export interface Series {
  t: number[]; // seconds (uPlot's time scale)
  cpu: (number | null)[]; // cores
  memory: (number | null)[]; // bytes
}

export const usage = reactive({
  available: null as boolean | null,
  reason: "",
  nodes: {} as Record<string, Series>,
  lastFetch: 0,
});

function push(node: string, t: number, cpu: number, memory: number) {
  const s = (usage.nodes[node] ??= { t: [], cpu: [], memory: [] });
  if (s.t.length && s.t[s.t.length - 1] >= t) return;
  s.t.push(t);
  s.cpu.push(cpu);
  s.memory.push(memory);
  while (s.t.length && s.t[0] < t - KEEP_MS / 1000) {
    s.t.shift();
    s.cpu.shift();
    s.memory.shift();
  }
}

export async function sample(): Promise<void> {
  try {
    const list = await get<{ items: any[] }>("/apis/metrics.k8s.io/v1beta1/nodes");
    usage.available = true;
    usage.reason = "";
    for (const m of list.items) {
      const t = Math.floor(Date.parse(m.timestamp ?? new Date().toISOString()) / 1000);
      push(m.metadata.name, t, parseQuantity(m.usage?.cpu), parseQuantity(m.usage?.memory));
    }
  } catch (e) {
    usage.available = false;
    usage.reason = e instanceof ApiError ? (e.code === 404 ? "the Metrics API (metrics.k8s.io) is not served by this cluster" : `${e.message} (${e.code})`) : String(e);
  }
  usage.lastFetch = Date.now();
}

let timer: ReturnType<typeof setInterval> | null = null;
let users = 0;

export function startSampling(): () => void {
  users++;
  if (!timer) {
    void sample();
    timer = setInterval(() => void sample(), RESOLUTION_MS);
  }
  return () => {
    users--;
    if (users === 0 && timer) {
      clearInterval(timer);
      timer = null;
    }
  };
}
