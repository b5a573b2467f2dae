"""Images for the node agent: references and mirrors, OCI distribution pulls into a
content-addressed cache, layer unpacking, pull policy/backoff, GC, and a local registry."""
