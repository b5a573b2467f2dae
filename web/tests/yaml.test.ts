import { describe, expect, it } from "vitest";
import { locateField, splitFieldPath } from "../src/lib/yamlpath";
import { parseObjects, placeCauses, strictFields, toYaml } from "../src/lib/yamlops";

const doc = `apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: -1
  template:
    spec:
      containers:
      - name: a
        image: x
      - name: b
        image: ""
`;

describe("field paths of the API's causes", () => {
  it.each([
    ["spec.replicas", ["spec", "replicas"]],
    ["spec.template.spec.containers[1].image", ["spec", "template", "spec", "containers", 1, "image"]],
    ["metadata.labels[app.kubernetes.io/name]", ["metadata", "labels", "app.kubernetes.io/name"]],
  ])("%s", (f, want) => expect(splitFieldPath(f)).toEqual(want));

  it.each([
    ["spec.replicas", 6, true],
    ["spec.template.spec.containers[1].image", 13, true],
    ["metadata.name", 4, true],
    ["spec.template.spec.nodeName", 8, false], // the deepest existing parent
  ])("%s is on line %d", (f, line, exact) => {
    const loc = locateField(doc, f)!;
    expect(loc.line).toBe(line);
    expect(loc.exact).toBe(exact);
  });
});

describe("YAML documents", () => {
  it("parses several documents and List items", () => {
    const p = parseObjects("kind: A\n---\nkind: List\nitems: [{kind: B}, {kind: C}]\n---\n");
    expect(p.errors).toEqual([]);
    expect(p.objects.map((o) => o.kind)).toEqual(["A", "B", "C"]);
  });
  it("locates syntax errors", () => {
    const p = parseObjects("a: b\nc: [d\n");
    expect(p.errors.length).toBeGreaterThan(0);
    expect(p.errors[0].line).toBeGreaterThanOrEqual(2);
  });
  it("hides managedFields", () => {
    expect(toYaml({ metadata: { name: "x", managedFields: [{ manager: "m" }] } })).not.toContain("managedFields");
  });
  it("places a 422's causes on their fields", () => {
    const m = placeCauses(doc, [{ field: "spec.replicas", message: "Invalid value: -1: must be greater than or equal to 0", reason: "FieldValueInvalid" }], "Deployment.apps \"web\" is invalid");
    expect(m).toHaveLength(1);
    expect(m[0].line).toBe(6);
    expect(m[0].message).toBe("spec.replicas: Invalid value: -1: must be greater than or equal to 0");
  });
  it("places a strict decoding error's unknown field", () => {
    const msg = 'Deployment in version "v1" cannot be handled as a Deployment: strict decoding error: unknown field "spec.replicas"';
    expect(strictFields(msg)).toEqual(["spec.replicas"]);
    expect(placeCauses(doc, [], msg)[0].line).toBe(6);
  });
  it("falls back to the first line for a message without a field", () => {
    expect(placeCauses(doc, [], "forbidden")).toEqual([{ from: 0, to: 0, line: 1, message: "forbidden" }]);
  });
});
