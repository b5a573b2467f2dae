// Scheduling decision records (scheduling.controlplane.io/v1 SchedulingDecision, the shape in
// docs/scheduling.md "Scheduling decisions"): the records of one pod, newest first, and a
// record's candidates as a plugin x node score matrix for the scheduling view.
import type { KObj } from "../api/types";

export interface PluginScore {
  name: string;
  raw: number;
  normalized: number;
  weight: number;
  weighted: number;
  value?: number; // DDQN's value estimate
}

export interface Candidate {
  node: string;
  score: number;
  chosen?: boolean;
  plugins: PluginScore[];
}

export interface FilterRejection {
  plugin: string;
  rejected: number;
  reasons: { reason: string; count: number }[];
}

export function decisionTime(r: KObj): number {
  return Date.parse(r.decisionTime ?? r.metadata.creationTimestamp ?? "") || 0;
}

export function recordsForPod(records: KObj[], pod: KObj): KObj[] {
  const uid = pod.metadata.uid;
  const name = pod.metadata.name;
  return records
    .filter((r) => (r.pod?.uid ? r.pod.uid === uid : r.pod?.name === name || r.metadata.name.startsWith(`${name}.`)))
    .sort((a, b) => decisionTime(b) - decisionTime(a));
}

export interface ScoreMatrix {
  plugins: string[];
  candidates: Candidate[];
  cell(node: string, plugin: string): PluginScore | undefined;
}

export function scoreMatrix(record: KObj): ScoreMatrix {
  const candidates: Candidate[] = [...(record.candidates ?? [])].sort((a: Candidate, b: Candidate) => b.score - a.score);
  const plugins: string[] = [];
  for (const c of candidates) for (const p of c.plugins ?? []) if (!plugins.includes(p.name)) plugins.push(p.name);
  const index = new Map<string, PluginScore>();
  for (const c of candidates) for (const p of c.plugins ?? []) index.set(`${c.node}|${p.name}`, p);
  return { plugins, candidates, cell: (node, plugin) => index.get(`${node}|${plugin}`) };
}

export function rejectedTotal(record: KObj): number {
  return (record.filters ?? []).reduce((s: number, f: FilterRejection) => s + (f.rejected ?? 0), 0);
}

export function profileOf(r: KObj): string {
  return r.profile ?? r.metadata.labels?.["scheduling.controlplane.io/profile"] ?? "";
}
