"""The web dashboard's server side (issue 19): a Sanic app that serves the built front end
(``web/`` at the repository root) and talks to the cluster only through the Kubernetes API,
as the signed-in user.

Modules: ``credentials`` (what a user signs in with, and the TLS/headers it becomes),
``sessions`` (the in-memory session store behind an opaque cookie), ``upstream`` (the
per-session HTTP client to the apiserver and sign-in checks), ``mux`` (one WebSocket per page
carrying many watches and log streams), ``server`` (routes: sign-in, the API proxy, the exec
relay, static files). ``controlplane.cmd.dashboard`` runs it as a component. See
``docs/dashboard.md``.
"""
