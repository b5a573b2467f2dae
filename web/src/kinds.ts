// Per resource: the table columns of its list view (what `kubectl get -o wide` shows) and its
// place in the navigation. Resources not listed here (custom resources) get name, namespace
// and age, plus their CRD's additionalPrinterColumns where the list view finds them.
import type { KObj, ResourceRef } from "./api/types";
import * as R from "./api/resources";
import { age } from "./lib/format";
import { podSummary } from "./lib/podstatus";
import { selectorToString } from "./lib/selectors";
import { sliceEndpointsText, slicePortsText } from "./lib/endpoints";
import { hpaTargets } from "./lib/hpa";

export interface Column {
  id: string;
  label: string;
  width: string; // a CSS grid track
  get(o: KObj, now: number): string | number;
  cls?(o: KObj): string;
}

const name: Column = { id: "name", label: "Name", width: "minmax(180px,2fr)", get: (o) => o.metadata.name };
const namespace: Column = { id: "namespace", label: "Namespace", width: "minmax(100px,1fr)", get: (o) => o.metadata.namespace ?? "" };
const ageCol: Column = { id: "age", label: "Age", width: "70px", get: (o, now) => age(o.metadata.creationTimestamp, now) };

function cond(o: KObj, type: string): string {
  const c = (o.status?.conditions ?? []).find((x: any) => x.type === type);
  return c ? c.status : "";
}

function readyClass(ready: number, want: number): string {
  return ready >= want ? "ok" : "warn";
}

const phaseClass = (s: string) => (["Running", "Completed", "Succeeded"].includes(s) ? "ok" : /Err|BackOff|Fail|Unknown|Evicted|OOM/.test(s) ? "bad" : "warn");

export const COLUMNS: Record<string, Column[]> = {
  pods: [
    namespace, name,
    { id: "ready", label: "Ready", width: "60px", get: (o) => podSummary(o).ready },
    { id: "status", label: "Status", width: "minmax(110px,1fr)", get: (o) => podSummary(o).status, cls: (o) => phaseClass(podSummary(o).status) },
    { id: "restarts", label: "Restarts", width: "70px", get: (o) => podSummary(o).restarts },
    ageCol,
    { id: "ip", label: "IP", width: "110px", get: (o) => o.status?.podIP ?? "" },
    { id: "node", label: "Node", width: "minmax(120px,1fr)", get: (o) => o.spec?.nodeName ?? "" },
  ],
  deployments: [
    namespace, name,
    { id: "ready", label: "Ready", width: "70px", get: (o) => `${o.status?.readyReplicas ?? 0}/${o.spec?.replicas ?? 1}`, cls: (o) => readyClass(o.status?.readyReplicas ?? 0, o.spec?.replicas ?? 1) },
    { id: "uptodate", label: "Up-to-date", width: "90px", get: (o) => o.status?.updatedReplicas ?? 0 },
    { id: "available", label: "Available", width: "80px", get: (o) => o.status?.availableReplicas ?? 0 },
    ageCol,
  ],
  statefulsets: [
    namespace, name,
    { id: "ready", label: "Ready", width: "70px", get: (o) => `${o.status?.readyReplicas ?? 0}/${o.spec?.replicas ?? 1}`, cls: (o) => readyClass(o.status?.readyReplicas ?? 0, o.spec?.replicas ?? 1) },
    ageCol,
  ],
  daemonsets: [
    namespace, name,
    { id: "desired", label: "Desired", width: "70px", get: (o) => o.status?.desiredNumberScheduled ?? 0 },
    { id: "ready", label: "Ready", width: "70px", get: (o) => o.status?.numberReady ?? 0, cls: (o) => readyClass(o.status?.numberReady ?? 0, o.status?.desiredNumberScheduled ?? 0) },
    { id: "available", label: "Available", width: "80px", get: (o) => o.status?.numberAvailable ?? 0 },
    ageCol,
  ],
  replicasets: [
    namespace, name,
    { id: "desired", label: "Desired", width: "70px", get: (o) => o.spec?.replicas ?? 0 },
    { id: "current", label: "Current", width: "70px", get: (o) => o.status?.replicas ?? 0 },
    { id: "ready", label: "Ready", width: "70px", get: (o) => o.status?.readyReplicas ?? 0 },
    ageCol,
  ],
  jobs: [
    namespace, name,
    { id: "status", label: "Status", width: "100px", get: (o) => (cond(o, "Complete") === "True" ? "Complete" : cond(o, "Failed") === "True" ? "Failed" : "Running") },
    { id: "completions", label: "Completions", width: "100px", get: (o) => `${o.status?.succeeded ?? 0}/${o.spec?.completions ?? 1}` },
    ageCol,
  ],
  cronjobs: [
    namespace, name,
    { id: "schedule", label: "Schedule", width: "120px", get: (o) => o.spec?.schedule ?? "" },
    { id: "suspend", label: "Suspend", width: "70px", get: (o) => String(Boolean(o.spec?.suspend)) },
    { id: "active", label: "Active", width: "60px", get: (o) => (o.status?.active ?? []).length },
    ageCol,
  ],
  horizontalpodautoscalers: [
    namespace, name,
    { id: "ref", label: "Reference", width: "minmax(140px,1fr)", get: (o) => `${o.spec?.scaleTargetRef?.kind}/${o.spec?.scaleTargetRef?.name}` },
    { id: "targets", label: "Targets", width: "minmax(140px,1fr)", get: (o) => hpaTargets(o) },
    { id: "minpods", label: "Min pods", width: "75px", get: (o) => o.spec?.minReplicas ?? 1 },
    { id: "maxpods", label: "Max pods", width: "75px", get: (o) => o.spec?.maxReplicas ?? "" },
    { id: "replicas", label: "Replicas", width: "70px", get: (o) => o.status?.currentReplicas ?? 0 },
    ageCol,
  ],
  services: [
    namespace, name,
    { id: "type", label: "Type", width: "90px", get: (o) => o.spec?.type ?? "ClusterIP" },
    { id: "clusterip", label: "Cluster IP", width: "110px", get: (o) => o.spec?.clusterIP ?? "" },
    { id: "ports", label: "Ports", width: "minmax(100px,1fr)", get: (o) => (o.spec?.ports ?? []).map((p: any) => `${p.port}${p.nodePort ? `:${p.nodePort}` : ""}/${p.protocol ?? "TCP"}`).join(",") },
    { id: "selector", label: "Selector", width: "minmax(120px,1fr)", get: (o) => Object.entries(o.spec?.selector ?? {}).map(([k, v]) => `${k}=${v}`).join(",") },
    ageCol,
  ],
  configmaps: [namespace, name, { id: "data", label: "Data", width: "60px", get: (o) => Object.keys(o.data ?? {}).length + Object.keys(o.binaryData ?? {}).length }, ageCol],
  secrets: [namespace, name, { id: "type", label: "Type", width: "minmax(140px,1fr)", get: (o) => o.type ?? "Opaque" }, { id: "data", label: "Data", width: "60px", get: (o) => Object.keys(o.data ?? {}).length }, ageCol],
  nodes: [
    name,
    { id: "status", label: "Status", width: "minmax(120px,1fr)", get: (o) => (cond(o, "Ready") === "True" ? "Ready" : "NotReady") + (o.spec?.unschedulable ? ",SchedulingDisabled" : ""), cls: (o) => (cond(o, "Ready") === "True" ? "ok" : "bad") },
    { id: "roles", label: "Roles", width: "90px", get: (o) => Object.keys(o.metadata.labels ?? {}).filter((k) => k.startsWith("node-role.kubernetes.io/")).map((k) => k.split("/")[1]).join(",") || "<none>" },
    ageCol,
    { id: "version", label: "Version", width: "110px", get: (o) => o.status?.nodeInfo?.kubeletVersion ?? "" },
    { id: "ip", label: "Internal IP", width: "110px", get: (o) => (o.status?.addresses ?? []).find((a: any) => a.type === "InternalIP")?.address ?? "" },
  ],
  namespaces: [name, { id: "status", label: "Status", width: "100px", get: (o) => o.status?.phase ?? "" }, ageCol],
  events: [
    namespace,
    { id: "last", label: "Last seen", width: "80px", get: (o, now) => age(o.lastTimestamp || o.eventTime || o.metadata.creationTimestamp, now) },
    { id: "type", label: "Type", width: "70px", get: (o) => o.type ?? "", cls: (o) => (o.type === "Warning" ? "warn" : "") },
    { id: "reason", label: "Reason", width: "120px", get: (o) => o.reason ?? "" },
    { id: "object", label: "Object", width: "minmax(140px,1fr)", get: (o) => `${(o.involvedObject?.kind ?? "").toLowerCase()}/${o.involvedObject?.name ?? ""}` },
    { id: "message", label: "Message", width: "minmax(200px,3fr)", get: (o) => o.message ?? "" },
  ],
  serviceaccounts: [namespace, name, ageCol],
  endpoints: [namespace, name, { id: "endpoints", label: "Endpoints", width: "minmax(200px,2fr)", get: (o) => endpointsText(o) }, ageCol],
  endpointslices: [
    namespace, name,
    { id: "addresstype", label: "Address type", width: "100px", get: (o) => o.addressType ?? "" },
    { id: "ports", label: "Ports", width: "minmax(80px,1fr)", get: (o) => slicePortsText(o) },
    { id: "endpoints", label: "Endpoints", width: "minmax(200px,2fr)", get: (o) => sliceEndpointsText(o) },
    ageCol,
  ],
  customresourcedefinitions: [name, { id: "group", label: "Group", width: "minmax(140px,1fr)", get: (o) => o.spec?.group ?? "" }, { id: "kind", label: "Kind", width: "140px", get: (o) => o.spec?.names?.kind ?? "" }, { id: "scope", label: "Scope", width: "100px", get: (o) => o.spec?.scope ?? "" }, ageCol],
  gitrepositories: [
    namespace, name,
    { id: "url", label: "URL", width: "minmax(160px,2fr)", get: (o) => o.spec?.url ?? "" },
    { id: "revision", label: "Revision", width: "minmax(120px,1fr)", get: (o) => o.status?.artifact?.revision ?? "" },
    { id: "ready", label: "Ready", width: "70px", get: (o) => cond(o, "Ready"), cls: (o) => (cond(o, "Ready") === "True" ? "ok" : "bad") },
    { id: "message", label: "Status", width: "minmax(160px,2fr)", get: (o) => condMessage(o, "Ready") },
    ageCol,
  ],
  syncs: [
    namespace, name,
    { id: "source", label: "Source", width: "120px", get: (o) => o.spec?.sourceRef?.name ?? "" },
    { id: "revision", label: "Revision", width: "minmax(120px,1fr)", get: (o) => o.status?.lastAppliedRevision ?? "" },
    { id: "ready", label: "Ready", width: "70px", get: (o) => cond(o, "Ready"), cls: (o) => (cond(o, "Ready") === "True" ? "ok" : cond(o, "Ready") === "Unknown" ? "warn" : "bad") },
    { id: "message", label: "Status", width: "minmax(160px,2fr)", get: (o) => condMessage(o, "Ready") },
    ageCol,
  ],
  schedulingdecisions: [
    namespace,
    { id: "pod", label: "Pod", width: "minmax(160px,2fr)", get: (o) => o.pod?.name ?? "" },
    { id: "profile", label: "Profile", width: "minmax(120px,1fr)", get: (o) => o.profile ?? "" },
    { id: "result", label: "Result", width: "100px", get: (o) => o.result ?? "", cls: (o) => (o.result === "Scheduled" ? "ok" : "bad") },
    { id: "node", label: "Node", width: "minmax(100px,1fr)", get: (o) => o.node ?? "" },
    { id: "score", label: "Score", width: "80px", get: (o) => (o.candidates ?? []).find((c: any) => c.chosen)?.score ?? "" },
    { id: "feasible", label: "Feasible", width: "80px", get: (o) => `${o.nodes?.feasible ?? "?"}/${o.nodes?.total ?? "?"}` },
    { id: "us", label: "µs", width: "70px", get: (o) => o.durationMicroseconds ?? "" },
    { id: "last", label: "Decided", width: "80px", get: (o, now) => age(o.decisionTime || o.metadata.creationTimestamp, now) },
  ],
  leases: [namespace, name, { id: "holder", label: "Holder", width: "minmax(160px,1fr)", get: (o) => o.spec?.holderIdentity ?? "" }, ageCol],
};

export function condMessage(o: KObj, type: string): string {
  const c = (o.status?.conditions ?? []).find((x: any) => x.type === type);
  return c ? `${c.reason ?? ""}${c.message ? `: ${c.message}` : ""}` : "";
}

export function endpointsText(o: KObj): string {
  const out: string[] = [];
  for (const s of o.subsets ?? []) for (const a of s.addresses ?? []) for (const p of s.ports ?? [{ port: "" }]) out.push(`${a.ip}:${p.port}`);
  return out.join(",") || "<none>";
}

export function columnsFor(r: ResourceRef, printerColumns?: { name: string; jsonPath: string; priority?: number }[]): Column[] {
  const known = COLUMNS[r.resource];
  if (known && (r.group === "" || R.BUILTIN.some((b) => b.resource === r.resource && b.group === r.group))) {
    return r.namespaced ? known : known.filter((c) => c.id !== "namespace");
  }
  const cols: Column[] = r.namespaced ? [namespace, name] : [name];
  for (const pc of printerColumns ?? []) {
    if (pc.priority || pc.name === "Age") continue;
    const path = pc.jsonPath.replace(/^\./, "").split(".");
    cols.push({ id: `pc-${pc.name}`, label: pc.name, width: "minmax(90px,1fr)", get: (o) => jsonPathValue(o, path) });
  }
  cols.push(ageCol);
  return cols;
}

// The simple .a.b[?(@.type=="Ready")].status paths CRDs use for printer columns.
function jsonPathValue(o: any, path: string[]): string {
  let cur: any = o;
  for (const seg of path) {
    const m = seg.match(/^(\w+)\[\?\(@\.(\w+)=="([^"]*)"\)\]$/);
    if (m) {
      cur = (cur?.[m[1]] ?? []).find((x: any) => x?.[m[2]] === m[3]);
    } else cur = cur?.[seg];
    if (cur === undefined || cur === null) return "";
  }
  return typeof cur === "object" ? JSON.stringify(cur) : String(cur);
}

export interface NavItem {
  label: string;
  to: string;
}

export function listRoute(r: ResourceRef): string {
  return `/r/${R.groupSegment(r)}/${r.version}/${r.resource}`;
}

export function objectRoute(r: ResourceRef, o: KObj, tab?: string): string {
  return `${listRoute(r)}/${o.metadata.namespace ?? "_"}/${encodeURIComponent(o.metadata.name)}${tab ? `?tab=${tab}` : ""}`;
}

export function refForOwner(kind: string): ResourceRef | undefined {
  return R.BUILTIN.find((b) => b.kind === kind);
}

export const NAV: { section: string; items: NavItem[] }[] = [
  { section: "Cluster", items: [
    { label: "Overview", to: "/" },
    { label: "Namespaces", to: listRoute(R.NAMESPACES) },
    { label: "Nodes", to: listRoute(R.NODES) },
    { label: "Events", to: listRoute(R.EVENTS) },
    { label: "Scheduling", to: "/scheduling" },
  ] },
  { section: "Workloads", items: [
    { label: "Pods", to: listRoute(R.PODS) },
    { label: "Deployments", to: listRoute(R.DEPLOYMENTS) },
    { label: "StatefulSets", to: listRoute(R.STATEFULSETS) },
    { label: "DaemonSets", to: listRoute(R.DAEMONSETS) },
    { label: "ReplicaSets", to: listRoute(R.REPLICASETS) },
    { label: "Jobs", to: listRoute(R.JOBS) },
    { label: "CronJobs", to: listRoute(R.CRONJOBS) },
    { label: "HPAs", to: listRoute(R.HPAS) },
  ] },
  { section: "Network & config", items: [
    { label: "Services", to: listRoute(R.SERVICES) },
    { label: "ConfigMaps", to: listRoute(R.CONFIGMAPS) },
    { label: "Secrets", to: listRoute(R.SECRETS) },
  ] },
  { section: "Extensions", items: [
    { label: "Custom resources", to: "/crds" },
    { label: "GitOps", to: "/gitops" },
    { label: "Create from YAML", to: "/create" },
  ] },
];

export { selectorToString };
