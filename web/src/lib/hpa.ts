// A HorizontalPodAutoscaler's metrics (autoscaling/v2) as kubectl prints them: the TARGETS
// column (a port of kubectl's formatHPAMetrics: each spec metric against the status metric at
// the same index, "<unknown>" until the controller reports it, two shown then "+ N more...")
// and one row per metric for the HPA's page.
import type { KObj } from "../api/types";

export interface MetricRow {
  type: string;
  name: string; // the resource, or the metric's name (and the container / described object)
  current: string;
  target: string;
}

const UNKNOWN = "<unknown>";

function q(v: unknown): string | undefined {
  return v === undefined || v === null ? undefined : String(v);
}

// One spec metric and its status: [what it measures, current, target, "(avg)" or ""].
export function metricRow(spec: any, status: any): MetricRow {
  switch (spec?.type) {
    case "Resource":
    case "ContainerResource": {
      const src = spec.type === "Resource" ? spec.resource : spec.containerResource;
      const cur = spec.type === "Resource" ? status?.resource : status?.containerResource;
      const name = spec.type === "Resource" ? String(src?.name ?? "") : `${src?.name ?? ""} (${src?.container ?? ""})`;
      if (src?.target?.averageValue !== undefined) {
        return { type: spec.type, name, current: q(cur?.current?.averageValue) ?? UNKNOWN, target: String(src.target.averageValue) };
      }
      const u = cur?.current?.averageUtilization;
      const t = src?.target?.averageUtilization;
      return { type: spec.type, name, current: u !== undefined && u !== null ? `${u}%` : UNKNOWN, target: t !== undefined && t !== null ? `${t}%` : "<auto>" };
    }
    case "Pods":
      return { type: "Pods", name: spec.pods?.metric?.name ?? "", current: q(status?.pods?.current?.averageValue) ?? UNKNOWN, target: String(spec.pods?.target?.averageValue ?? "") };
    case "Object":
    case "External": {
      const src = spec.type === "Object" ? spec.object : spec.external;
      const cur = spec.type === "Object" ? status?.object : status?.external;
      const obj = spec.type === "Object" && src?.describedObject ? ` on ${src.describedObject.kind}/${src.describedObject.name}` : "";
      const name = `${src?.metric?.name ?? ""}${obj}`;
      if (src?.target?.averageValue !== undefined) {
        return { type: spec.type, name, current: q(cur?.current?.averageValue) ?? UNKNOWN, target: `${src.target.averageValue} (avg)` };
      }
      return { type: spec.type, name, current: q(cur?.current?.value) ?? UNKNOWN, target: String(src?.target?.value ?? "") };
    }
    default:
      return { type: String(spec?.type ?? ""), name: "", current: UNKNOWN, target: "<unknown type>" };
  }
}

export function metricRows(hpa: KObj): MetricRow[] {
  const specs: any[] = hpa.spec?.metrics ?? [];
  const statuses: any[] = hpa.status?.currentMetrics ?? [];
  return specs.map((s, i) => metricRow(s, statuses[i]));
}

export function hpaTargets(hpa: KObj): string {
  const specs: any[] = hpa.spec?.metrics ?? [];
  if (!specs.length) return "<none>";
  const parts = metricRows(hpa).map((r, i) => {
    if (r.target === "<unknown type>") return r.target;
    const resource = specs[i].type === "Resource" ? `${specs[i].resource?.name}: ` : specs[i].type === "ContainerResource" ? `${specs[i].containerResource?.name}: ` : "";
    return `${resource}${r.current}/${r.target}`;
  });
  return parts.length > 2 ? `${parts.slice(0, 2).join(", ")} + ${parts.length - 2} more...` : parts.join(", ");
}
