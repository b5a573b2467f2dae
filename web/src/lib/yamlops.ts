// YAML for the editor: objects shown without managedFields (as `kubectl get -o yaml` does by
// default), documents parsed with their syntax errors located, and the API's validation
// causes (422 Invalid, or a strict decoding error's unknown fields) placed on their fields.
import { parseAllDocuments, stringify } from "yaml";
import { locateField } from "./yamlpath";
import type { KObj } from "../api/types";

export interface FieldMessage {
  from: number;
  to: number;
  line: number;
  message: string;
}

export function toYaml(o: KObj): string {
  const copy = structuredClone(o);
  if (copy.metadata) delete copy.metadata.managedFields;
  return stringify(copy, { lineWidth: 0 });
}

export interface Parsed {
  objects: KObj[];
  errors: FieldMessage[];
}

export function parseObjects(text: string): Parsed {
  const docs = parseAllDocuments(text);
  const errors: FieldMessage[] = [];
  const objects: KObj[] = [];
  if (!Array.isArray(docs)) return { objects, errors: [{ from: 0, to: 0, line: 1, message: "not YAML" }] };
  for (const d of docs) {
    for (const e of d.errors) {
      const line = (e.linePos?.[0]?.line ?? 1);
      errors.push({ from: e.pos[0], to: e.pos[1], line, message: e.message.split("\n")[0] });
    }
    if (d.errors.length) continue;
    const v = d.toJS();
    if (v === null || v === undefined) continue;
    if (typeof v !== "object" || Array.isArray(v)) {
      errors.push({ from: 0, to: 0, line: 1, message: "each document must be an object with apiVersion, kind and metadata" });
      continue;
    }
    if (v.kind === "List" && Array.isArray(v.items)) objects.push(...v.items);
    else objects.push(v as KObj);
  }
  return { objects, errors };
}

export interface Cause {
  field?: string;
  message?: string;
  reason?: string;
}

// Fields named by a strict decoding error: `unknown field "spec.foo"`, `duplicate field "x"`.
export function strictFields(message: string): string[] {
  return [...message.matchAll(/(?:unknown|duplicate) field "([^"]+)"/g)].map((m) => m[1]);
}

export function placeCauses(text: string, causes: Cause[], message: string): FieldMessage[] {
  const out: FieldMessage[] = [];
  const seen = new Set<string>();
  const place = (field: string, msg: string) => {
    const loc = locateField(text, field);
    const key = `${field}|${msg}`;
    if (seen.has(key)) return;
    seen.add(key);
    if (loc) out.push({ from: loc.from, to: loc.to, line: loc.line, message: msg });
    else out.push({ from: 0, to: 0, line: 1, message: msg });
  };
  for (const c of causes) {
    if (c.field) place(c.field, c.field && c.message && !c.message.startsWith(c.field) ? `${c.field}: ${c.message}` : (c.message ?? ""));
  }
  if (!out.length) for (const f of strictFields(message)) place(f, message);
  if (!out.length && message) out.push({ from: 0, to: 0, line: 1, message });
  return out;
}
