"""The apiserver: the Kubernetes REST API (discovery, OpenAPI, CRUD, watch, patch, apply,
tables) served by Sanic over ``controlplane.storage.interface`` (the only part of the storage
package it imports).

Sub-packages, each one concern, in layers (a package imports only the ones below it; checked
by the ``apiserver-layers`` import-linter contract in pyproject.toml):

    server       the process: ApiServer state and lifecycle, Sanic routes, workers, /metrics, CRD serving
    endpoints    the REST verbs: get/list, watch, create/update/patch/apply, delete, subresources, proxies
    strategy     per-resource write semantics and the generic write/delete rules; the built-in catalogue
    validation | printing | encoding | patch
                 object validation | Tables for kubectl | request bodies | PATCH and server-side apply
    crd          CRD schemas: structural rules, custom resources checked/pruned/defaulted
    persistence  stored form, typed CRUD with group commit, watch caches, compaction
    discovery    the resource registry (ResourceInfo), discovery and OpenAPI documents, 1.32 schemas
    meta         errors (Status), field errors and name rules, ObjectMeta system fields, JSON

A request's way through them is described in docs/architecture.md."""
