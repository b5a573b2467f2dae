// Where a watch may safely resume from when writes share a resourceVersion (the same rule as
// the Python clients' controlplane/client/resume.py; docs/apiserver.md, "Group commit").
// Our apiserver group-commits concurrent writes, so one resourceVersion can carry several
// events. A watch resumed from the resourceVersion of the last event received gets only later
// events: if the stream broke inside a revision, the rest of it would be skipped. So resume from
// the last revision known to be complete (one is complete once an event of a later revision or a
// BOOKMARK arrives) and drop the resumed stream's repeats of events already applied (a revision
// has at most one event per object). ResourceVersions are compared for equality only.

export class ResumePoint {
  rv: string;
  private cur: string | null = null; // the revision whose events are arriving (maybe not all yet)
  private keys = new Set<string>(); // objects of that revision already applied

  constructor(rv = "") {
    this.rv = rv;
  }

  // a fresh start (after a list): resume from rv
  reset(rv: string): void {
    this.rv = rv;
    this.cur = null;
    this.keys = new Set();
  }

  // every event up to rv was delivered
  bookmark(rv: string | undefined): void {
    if (rv) this.reset(rv);
  }

  // an ADDED/MODIFIED/DELETED event; false when it repeats one already applied: drop it
  event(rv: string | undefined, key: string): boolean {
    if (!rv) return true;
    if (rv === this.cur) {
      if (this.keys.has(key)) return false;
      this.keys.add(key);
      return true;
    }
    if (this.cur !== null) this.rv = this.cur; // a later revision began: the previous one is complete
    this.cur = rv;
    this.keys = new Set([key]);
    return true;
  }
}
