// A Service's endpoints as rows for its page, from either source the API may serve:
// EndpointSlices (discovery.k8s.io/v1, labelled kubernetes.io/service-name, what kube-proxy
// reads) or the older Endpoints object (core/v1, one per Service, deprecated since 1.33).
// The Service page prefers slices and falls back to Endpoints where discovery.k8s.io is absent.
import type { KObj } from "../api/types";

export interface EndpointRow {
  address: string;
  ready: boolean;
  serving: boolean;
  terminating: boolean;
  target: string; // Kind/name of the targetRef
  node: string;
  zone: string;
  ports: string; // name:port/PROTOCOL, ...
}

export const SERVICE_NAME_LABEL = "kubernetes.io/service-name";

function portsText(ports: any[] | undefined): string {
  return (ports ?? []).map((p) => `${p.name ? `${p.name}:` : ""}${p.port ?? "*"}/${p.protocol ?? "TCP"}`).join(", ");
}

function targetText(ref: any): string {
  return ref ? `${ref.kind ?? ""}/${ref.name ?? ""}` : "";
}

export function rowsFromEndpoints(ep: KObj | undefined): EndpointRow[] {
  const out: EndpointRow[] = [];
  for (const s of ep?.subsets ?? []) {
    const ports = portsText(s.ports);
    for (const [list, ready] of [[s.addresses, true], [s.notReadyAddresses, false]] as const) {
      for (const a of list ?? []) {
        out.push({ address: a.ip ?? a.hostname ?? "", ready, serving: ready, terminating: false,
          target: targetText(a.targetRef), node: a.nodeName ?? "", zone: "", ports });
      }
    }
  }
  return sortRows(out);
}

// EndpointConditions: a nil `ready` is unknown and read as ready (the API's guidance);
// `serving` defaults to `ready`; `terminating` to false.
export function rowsFromSlices(slices: KObj[]): EndpointRow[] {
  const out: EndpointRow[] = [];
  for (const s of slices) {
    const ports = portsText(s.ports);
    for (const e of s.endpoints ?? []) {
      const c = e.conditions ?? {};
      const ready = c.ready ?? true;
      for (const address of e.addresses ?? []) {
        out.push({ address, ready, serving: c.serving ?? ready, terminating: c.terminating ?? false,
          target: targetText(e.targetRef), node: e.nodeName ?? "", zone: e.zone ?? "", ports });
      }
    }
  }
  return sortRows(out);
}

function sortRows(rows: EndpointRow[]): EndpointRow[] {
  return rows.sort((a, b) => a.address.localeCompare(b.address, undefined, { numeric: true }) || a.ports.localeCompare(b.ports));
}

// The EndpointSlices list column, as kubectl prints it: up to three addresses, then "+ N more...".
export function sliceEndpointsText(s: KObj): string {
  const addrs: string[] = (s.endpoints ?? []).flatMap((e: any) => e.addresses ?? []);
  if (!addrs.length) return "<unset>";
  return addrs.length > 3 ? `${addrs.slice(0, 3).join(",")} + ${addrs.length - 3} more...` : addrs.join(",");
}

// kubectl's PORTS column (formatDiscoveryPorts): the port, else its name, else "*"; three at most.
export function slicePortsText(s: KObj): string {
  const ports = (s.ports ?? []).map((p: any) => (p.port != null ? String(p.port) : p.name != null ? p.name : "*"));
  if (!ports.length) return "<unset>";
  return ports.length > 3 ? `${ports.slice(0, 3).join(",")} + ${ports.length - 3} more...` : ports.join(",");
}
