"""Authentication: who sent a request. ``authenticator.Authenticator`` runs the chain (client
certificates, static tokens, bootstrap tokens, ServiceAccount JWTs, anonymous);
``impersonation`` turns one user into another when allowed; ``user.UserInfo`` is the result
every later step (authorization, admission, audit) reads. See docs/security.md."""
