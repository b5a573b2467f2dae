"""The apiserver: the Kubernetes REST API (discovery, OpenAPI, CRUD, watch, patch, apply,
tables) served by Sanic over the storage interface. The only layer that touches storage."""
