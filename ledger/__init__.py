"""The ledger: the ``Run`` aggregate and its events (pure), and the asyncpg event store.

Imports nothing else of runledger. Everything else (followers, worker, API) is built on it.
"""
