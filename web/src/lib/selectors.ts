// Kubernetes label selectors and field selectors, parsed and matched in the browser so the
// pod table filters 5,000 rows without asking the API again (the list is already held).
// Hand-written: the only npm implementation is inside @kubernetes/client-node, a Node.js
// client far too large to ship to a browser. Grammar as in k8s.io/apimachinery/pkg/labels:
//   a=b, a==b, a!=b, a in (x,y), a notin (x,y), a, !a   (terms joined by commas)
// Field selectors (k8s.io/apimachinery/pkg/fields): path=value, path==value, path!=value.

export type LabelOp = "=" | "!=" | "in" | "notin" | "exists" | "!exists";

export interface LabelRequirement {
  key: string;
  op: LabelOp;
  values: string[];
}

export class SelectorError extends Error {}

const KEY = /^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*\/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$/;
const VALUE = /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/;

function splitTerms(s: string): string[] {
  // commas inside parentheses belong to a set
  const out: string[] = [];
  let depth = 0;
  let cur = "";
  for (const ch of s) {
    if (ch === "(") depth++;
    if (ch === ")") depth--;
    if (depth < 0) throw new SelectorError("unbalanced parentheses");
    if (ch === "," && depth === 0) {
      out.push(cur);
      cur = "";
    } else cur += ch;
  }
  if (depth !== 0) throw new SelectorError("unbalanced parentheses");
  out.push(cur);
  return out.map((t) => t.trim()).filter((t) => t.length > 0);
}

function checkKey(k: string): string {
  if (!KEY.test(k) || k.length > 317) throw new SelectorError(`invalid label key "${k}"`);
  return k;
}

function checkValue(v: string): string {
  if (!VALUE.test(v) || v.length > 63) throw new SelectorError(`invalid label value "${v}"`);
  return v;
}

export function parseLabelSelector(s: string): LabelRequirement[] {
  const reqs: LabelRequirement[] = [];
  for (const term of splitTerms(s)) {
    let m = term.match(/^(\S+?)\s+(in|notin)\s*\(([^)]*)\)$/);
    if (m) {
      const values = m[3].split(",").map((v) => v.trim()).filter((v) => v !== "").map(checkValue);
      if (values.length === 0) throw new SelectorError(`"${term}": a set needs at least one value`);
      reqs.push({ key: checkKey(m[1]), op: m[2] as LabelOp, values });
      continue;
    }
    m = term.match(/^([^=!\s]+)\s*(==|=|!=)\s*(\S*)$/);
    if (m) {
      reqs.push({ key: checkKey(m[1]), op: m[2] === "!=" ? "!=" : "=", values: [checkValue(m[3])] });
      continue;
    }
    m = term.match(/^!\s*(\S+)$/);
    if (m) {
      reqs.push({ key: checkKey(m[1]), op: "!exists", values: [] });
      continue;
    }
    if (/^\S+$/.test(term)) {
      reqs.push({ key: checkKey(term), op: "exists", values: [] });
      continue;
    }
    throw new SelectorError(`cannot parse "${term}"`);
  }
  return reqs;
}

export function matchLabels(reqs: LabelRequirement[], labels: Record<string, string> | undefined): boolean {
  const l = labels ?? {};
  for (const r of reqs) {
    const has = Object.prototype.hasOwnProperty.call(l, r.key);
    const v = l[r.key];
    switch (r.op) {
      case "=":
        if (!has || v !== r.values[0]) return false;
        break;
      case "!=":
        if (has && v === r.values[0]) return false;
        break;
      case "in":
        if (!has || !r.values.includes(v)) return false;
        break;
      case "notin":
        if (has && r.values.includes(v)) return false;
        break;
      case "exists":
        if (!has) return false;
        break;
      case "!exists":
        if (has) return false;
        break;
    }
  }
  return true;
}

export interface FieldRequirement {
  path: string[];
  negate: boolean;
  value: string;
}

export function parseFieldSelector(s: string): FieldRequirement[] {
  return splitTerms(s).map((term) => {
    const m = term.match(/^([A-Za-z0-9_.-]+)\s*(==|=|!=)\s*(.*)$/);
    if (!m) throw new SelectorError(`cannot parse field selector "${term}"`);
    return { path: m[1].split("."), negate: m[2] === "!=", value: m[3].trim() };
  });
}

export function fieldValue(obj: unknown, path: string[]): string {
  let cur: unknown = obj;
  for (const p of path) {
    if (cur === null || typeof cur !== "object") return "";
    cur = (cur as Record<string, unknown>)[p];
  }
  if (cur === undefined || cur === null) return "";
  return typeof cur === "object" ? JSON.stringify(cur) : String(cur);
}

export function matchFields(reqs: FieldRequirement[], obj: unknown): boolean {
  return reqs.every((r) => (fieldValue(obj, r.path) === r.value) !== r.negate);
}

// The same rendering kubectl uses for a LabelSelector object (matchLabels + matchExpressions).
export function selectorToString(sel: { matchLabels?: Record<string, string>; matchExpressions?: { key: string; operator: string; values?: string[] }[] } | undefined): string {
  if (!sel) return "";
  const parts = Object.entries(sel.matchLabels ?? {}).map(([k, v]) => `${k}=${v}`);
  for (const e of sel.matchExpressions ?? []) {
    const op = e.operator.toLowerCase();
    if (op === "in" || op === "notin") parts.push(`${e.key} ${op} (${(e.values ?? []).join(",")})`);
    else if (op === "exists") parts.push(e.key);
    else if (op === "doesnotexist") parts.push(`!${e.key}`);
  }
  return parts.join(",");
}
