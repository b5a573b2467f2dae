import { describe, expect, it } from "vitest";
import { Informer } from "../src/api/informer";
import { PODS } from "../src/api/resources";

const pod = (name: string, rv: string, ns = "default") => ({ metadata: { name, namespace: ns, resourceVersion: rv } });

describe("an informer applies watch events", () => {
  it("adds, modifies, deletes and follows resourceVersions (bookmarks too)", () => {
    const inf = new Informer(PODS);
    inf.apply([
      { type: "ADDED", object: pod("a", "1") },
      { type: "ADDED", object: pod("b", "2") },
      { type: "MODIFIED", object: { ...pod("a", "3"), spec: { x: 1 } } },
      { type: "DELETED", object: pod("b", "4") },
      { type: "BOOKMARK", object: { metadata: { resourceVersion: "9" } } },
    ]);
    expect([...inf.items.keys()]).toEqual(["default/a"]);
    expect(inf.items.get("default/a")?.spec).toEqual({ x: 1 });
    expect(inf.rv).toBe("9");
  });
  it("tells listeners about every change but not bookmarks", () => {
    const inf = new Informer(PODS);
    const seen: string[] = [];
    inf.onEvent((e) => seen.push(e.type));
    inf.apply([{ type: "ADDED", object: pod("a", "1") }, { type: "BOOKMARK", object: { metadata: { resourceVersion: "2" } } }]);
    expect(seen).toEqual(["ADDED"]);
  });
});

describe("an informer resumes safely when writes share a resourceVersion", () => {
  it("resumes from the last complete revision and drops the resumed stream's repeats", () => {
    const inf = new Informer(PODS);
    const seen: string[] = [];
    inf.onEvent((e) => seen.push(`${e.type} ${(e.object as { metadata: { name: string } }).metadata.name}`));
    // revision 5 carries a and b; the stream broke after a, inside revision 5
    inf.apply([{ type: "ADDED", object: pod("x", "4") }, { type: "ADDED", object: pod("a", "5") }]);
    expect(inf.rv).toBe("4"); // revision 5 may be incomplete
    // the resumed stream (from 4) repeats a, then brings b and c
    inf.apply([
      { type: "ADDED", object: pod("a", "5") },
      { type: "ADDED", object: pod("b", "5") },
      { type: "ADDED", object: pod("c", "6") },
    ]);
    expect(seen).toEqual(["ADDED x", "ADDED a", "ADDED b", "ADDED c"]);
    expect([...inf.items.keys()].sort()).toEqual(["default/a", "default/b", "default/c", "default/x"]);
    expect(inf.rv).toBe("5"); // revision 6 began, so 5 is complete
    inf.apply([{ type: "BOOKMARK", object: { metadata: { resourceVersion: "6" } } }]);
    expect(inf.rv).toBe("6");
  });
});
