"""Encryption at rest (``EncryptionConfiguration``): providers (``providers``), per-resource
transformers (``transformer``), the configuration file (``config``). The persistence layer
applies them to stored values. See docs/security.md."""
