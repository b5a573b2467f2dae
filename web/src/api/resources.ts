// The resources the dashboard knows by name, and discovery for everything else (custom
// resources, kinds in YAML the user pastes): /api/v1 and /apis/G/V APIResourceLists, fetched
// once per group-version and kept for the page's life.
import { get } from "./client";
import type { ResourceRef } from "./types";

const R = (group: string, version: string, resource: string, kind: string, namespaced = true): ResourceRef => ({ group, version, resource, kind, namespaced });

export const PODS = R("", "v1", "pods", "Pod");
export const NODES = R("", "v1", "nodes", "Node", false);
export const NAMESPACES = R("", "v1", "namespaces", "Namespace", false);
export const EVENTS = R("", "v1", "events", "Event");
export const SERVICES = R("", "v1", "services", "Service");
export const ENDPOINTS = R("", "v1", "endpoints", "Endpoints");
export const ENDPOINTSLICES = R("discovery.k8s.io", "v1", "endpointslices", "EndpointSlice");
export const CONFIGMAPS = R("", "v1", "configmaps", "ConfigMap");
export const SECRETS = R("", "v1", "secrets", "Secret");
export const SERVICEACCOUNTS = R("", "v1", "serviceaccounts", "ServiceAccount");
export const DEPLOYMENTS = R("apps", "v1", "deployments", "Deployment");
export const STATEFULSETS = R("apps", "v1", "statefulsets", "StatefulSet");
export const DAEMONSETS = R("apps", "v1", "daemonsets", "DaemonSet");
export const REPLICASETS = R("apps", "v1", "replicasets", "ReplicaSet");
export const JOBS = R("batch", "v1", "jobs", "Job");
export const CRONJOBS = R("batch", "v1", "cronjobs", "CronJob");
export const HPAS = R("autoscaling", "v2", "horizontalpodautoscalers", "HorizontalPodAutoscaler");
export const LEASES = R("coordination.k8s.io", "v1", "leases", "Lease");
export const CRDS = R("apiextensions.k8s.io", "v1", "customresourcedefinitions", "CustomResourceDefinition", false);
export const GITREPOSITORIES = R("gitops.controlplane.io", "v1", "gitrepositories", "GitRepository");
export const SYNCS = R("gitops.controlplane.io", "v1", "syncs", "Sync");
export const DECISIONS = R("scheduling.controlplane.io", "v1", "schedulingdecisions", "SchedulingDecision");
export const SSAR = R("authorization.k8s.io", "v1", "selfsubjectaccessreviews", "SelfSubjectAccessReview", false);

export const BUILTIN: ResourceRef[] = [
  PODS, NODES, NAMESPACES, EVENTS, SERVICES, ENDPOINTS, ENDPOINTSLICES, CONFIGMAPS, SECRETS, SERVICEACCOUNTS, DEPLOYMENTS,
  STATEFULSETS, DAEMONSETS, REPLICASETS, JOBS, CRONJOBS, HPAS, LEASES, CRDS, GITREPOSITORIES, SYNCS, DECISIONS,
];

export function groupSegment(r: ResourceRef): string {
  return r.group || "core";
}

export function findBuiltin(group: string, version: string, resource: string): ResourceRef | undefined {
  const g = group === "core" ? "" : group;
  return BUILTIN.find((r) => r.group === g && r.version === version && r.resource === resource);
}

interface APIResource {
  name: string;
  kind: string;
  namespaced: boolean;
  verbs: string[];
}

const discovered = new Map<string, Promise<ResourceRef[]>>();

export function groupVersionResources(group: string, version: string): Promise<ResourceRef[]> {
  const gv = group ? `${group}/${version}` : version;
  let p = discovered.get(gv);
  if (!p) {
    p = get<{ resources: APIResource[] }>(group ? `/apis/${group}/${version}` : `/api/${version}`)
      .then((l) => l.resources.filter((r) => !r.name.includes("/")).map((r) => R(group, version, r.name, r.kind, r.namespaced)))
      .catch((e) => {
        discovered.delete(gv);
        throw e;
      });
    discovered.set(gv, p);
  }
  return p;
}

// The resource for an object's apiVersion and kind (for create/edit from YAML).
export async function resolveKind(apiVersion: string, kind: string): Promise<ResourceRef> {
  const [group, version] = apiVersion.includes("/") ? apiVersion.split("/", 2) : ["", apiVersion];
  const builtin = BUILTIN.find((r) => r.group === group && r.version === version && r.kind === kind);
  if (builtin) return builtin;
  const all = await groupVersionResources(group, version);
  const r = all.find((x) => x.kind === kind);
  if (!r) throw new Error(`the server does not serve kind ${kind} in ${apiVersion}`);
  return r;
}

export async function resolveResource(group: string, version: string, resource: string): Promise<ResourceRef> {
  const b = findBuiltin(group, version, resource);
  if (b) return b;
  const g = group === "core" ? "" : group;
  const all = await groupVersionResources(g, version);
  const r = all.find((x) => x.resource === resource);
  if (!r) throw new Error(`the server does not serve ${resource} in ${g ? `${g}/` : ""}${version}`);
  return r;
}
