"""Prometheus metrics, low-cardinality labels only (never a repository, URL or endpoint).

- ``worker``: what each worker process records (attempts, durations, latency, events, fan-out),
  served by every worker process group on ``NOTIFIER_METRICS_PORT`` (``worker_server``).
- ``fleet``: fleet-wide gauges read from the database and the broker, served by the API at
  ``GET /metrics`` and printed by ``notifier status``.

prometheus-client is imported lazily: its multiprocess mode must be chosen (the
``PROMETHEUS_MULTIPROC_DIR`` variable) before the library is first imported.
"""
