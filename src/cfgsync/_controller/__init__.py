"""The controller behind ``cfgsync run``: watch cache, work queue, reconciler, leader election, health.

I/O: threads, watches and writes through :mod:`cfgsync._adapters.kube`; it never imports the
``kubernetes`` client itself. Planning is the core's one planner, as in every other mode.
"""
