// Where a field of a YAML document is: the API's validation causes name fields as
// "spec.replicas" or "spec.template.spec.containers[0].image"; the editor places each message
// on that field's line. Uses the `yaml` package's document model (source ranges).
import { parseDocument, isMap, isSeq, isScalar, type Node, LineCounter } from "yaml";

export function splitFieldPath(field: string): (string | number)[] {
  const out: (string | number)[] = [];
  const re = /([^.[\]]+)|\[(\d+)\]|\[([^\]]*)\]/g;
  let m: RegExpExecArray | null;
  while ((m = re.exec(field))) {
    if (m[1] !== undefined) out.push(m[1]);
    else if (m[2] !== undefined) out.push(Number(m[2]));
    else if (m[3] !== undefined) out.push(m[3]);
  }
  return out;
}

export interface FieldLocation {
  line: number; // 1-based
  from: number; // offsets in the text
  to: number;
  exact: boolean; // false: the deepest existing parent of the field
}

export function locateField(text: string, field: string): FieldLocation | null {
  const lc = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lc, keepSourceTokens: false });
  if (doc.errors.length) return null;
  const path = splitFieldPath(field);
  let node: Node | null = doc.contents as Node | null;
  let keyRange: [number, number] | null = null;
  let exact = true;
  for (const p of path) {
    if (isMap(node)) {
      const pair = node.items.find((it) => isScalar(it.key) && String(it.key.value) === String(p));
      if (!pair) {
        exact = false;
        break;
      }
      keyRange = isScalar(pair.key) && pair.key.range ? [pair.key.range[0], pair.key.range[1]] : keyRange;
      node = (pair.value as Node | null) ?? null;
      if (node === null) break;
    } else if (isSeq(node) && typeof p === "number" && p < node.items.length) {
      node = node.items[p] as Node;
      keyRange = node.range ? [node.range[0], node.range[1]] : keyRange;
    } else {
      exact = false;
      break;
    }
  }
  const range = keyRange ?? (doc.contents && (doc.contents as Node).range ? [(doc.contents as Node).range![0], (doc.contents as Node).range![1]] : [0, 0]);
  return { line: lc.linePos(range[0]).line, from: range[0], to: range[1], exact };
}
