import { describe, expect, it } from "vitest";
import { rowsFromEndpoints, rowsFromSlices, sliceEndpointsText, slicePortsText } from "../src/lib/endpoints";
import type { KObj } from "../src/api/types";

const meta = { name: "web", namespace: "d" };

describe("rows from an Endpoints object", () => {
  it("reads ready and not-ready addresses with their subset's ports", () => {
    const ep = { metadata: meta, subsets: [{
      addresses: [{ ip: "10.0.0.9", nodeName: "n1", targetRef: { kind: "Pod", name: "web-b" } }, { ip: "10.0.0.10" }],
      notReadyAddresses: [{ ip: "10.0.0.2", targetRef: { kind: "Pod", name: "web-a" } }],
      ports: [{ name: "http", port: 80, protocol: "TCP" }, { port: 53, protocol: "UDP" }],
    }] } as KObj;
    expect(rowsFromEndpoints(ep)).toEqual([
      { address: "10.0.0.2", ready: false, serving: false, terminating: false, target: "Pod/web-a", node: "", zone: "", ports: "http:80/TCP, 53/UDP" },
      { address: "10.0.0.9", ready: true, serving: true, terminating: false, target: "Pod/web-b", node: "n1", zone: "", ports: "http:80/TCP, 53/UDP" },
      { address: "10.0.0.10", ready: true, serving: true, terminating: false, target: "", node: "", zone: "", ports: "http:80/TCP, 53/UDP" },
    ]);
  });
  it.each([[undefined], [{ metadata: meta } as KObj], [{ metadata: meta, subsets: [] } as KObj]])("is empty without subsets (%#)", (ep) => {
    expect(rowsFromEndpoints(ep)).toEqual([]);
  });
});

describe("rows from EndpointSlices", () => {
  const slices = [
    { metadata: { ...meta, name: "web-abc" }, addressType: "IPv4", ports: [{ name: "", port: 8080, protocol: "TCP" }], endpoints: [
      { addresses: ["10.1.0.5"], conditions: { ready: true }, nodeName: "n1", zone: "z", targetRef: { kind: "Pod", name: "web-1" } },
      { addresses: ["10.1.0.3"], conditions: { ready: false, serving: true, terminating: true }, targetRef: { kind: "Pod", name: "web-0" } },
    ] },
    { metadata: { ...meta, name: "web-def" }, addressType: "IPv4", ports: [{ port: 8080 }], endpoints: [
      { addresses: ["10.1.0.4"], conditions: {} },
    ] },
  ] as KObj[];
  it("merges every slice, sorted by address, with the conditions' defaults", () => {
    expect(rowsFromSlices(slices)).toEqual([
      { address: "10.1.0.3", ready: false, serving: true, terminating: true, target: "Pod/web-0", node: "", zone: "", ports: "8080/TCP" },
      // a nil `ready` is unknown, read as ready; `serving` follows it
      { address: "10.1.0.4", ready: true, serving: true, terminating: false, target: "", node: "", zone: "", ports: "8080/TCP" },
      { address: "10.1.0.5", ready: true, serving: true, terminating: false, target: "Pod/web-1", node: "n1", zone: "z", ports: "8080/TCP" },
    ]);
  });
  it("is empty for no slices or slices without endpoints", () => {
    expect(rowsFromSlices([])).toEqual([]);
    expect(rowsFromSlices([{ metadata: meta, endpoints: null } as KObj])).toEqual([]);
  });
  it.each([
    [[], "<unset>"],
    [[{ addresses: ["1.1.1.1"] }], "1.1.1.1"],
    [[{ addresses: ["a", "b"] }, { addresses: ["c"] }], "a,b,c"],
    [[{ addresses: ["a", "b"] }, { addresses: ["c", "d", "e"] }], "a,b,c + 2 more..."],
  ])("kubectl's ENDPOINTS column %#", (endpoints, want) => {
    expect(sliceEndpointsText({ metadata: meta, endpoints } as KObj)).toBe(want);
  });
  it.each([
    [[], "<unset>"],
    [[{ port: 80 }, { port: 443 }], "80,443"],
    [[{ name: "http" }, {}], "http,*"],
    [[{ port: 1 }, { port: 2 }, { port: 3 }, { port: 4 }, { port: 5 }], "1,2,3 + 2 more..."],
  ])("kubectl's PORTS column %#", (ports, want) => {
    expect(slicePortsText({ metadata: meta, ports } as KObj)).toBe(want);
  });
});
