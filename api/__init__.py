"""The HTTP API: tests CRUD, runs (queue, list, read, history, cancel, artifacts), the live
SSE tail, health, metrics and auth, plus the routes of the system runledger replaces.

Imports ``ledger`` and ``projections`` only. It appends to the ledger and reads the read
models and the relay's Redis streams; it never writes run data to Redis. ``create_app``
(``api.app``) builds the application; ``runledger api`` serves it (``api.server``).
"""
