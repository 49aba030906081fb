"""Adapters: everything that reads or writes (files, YAML, the Kubernetes API, ArgoCD, KRM)."""
