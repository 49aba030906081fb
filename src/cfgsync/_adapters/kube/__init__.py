"""The Kubernetes API adapter: connecting, reading the cluster into the model, carrying out plans.

I/O: every module here talks to an API server (except ``view`` and ``diff``, which shape data for it).
This package is the only place that imports the ``kubernetes`` client; everything above it sees plain
JSON-like data, the model of :mod:`cfgsync._core`, and :class:`cfgsync.errors.ApplyError`.
"""
