"""HTTP API tests: through HTTP, against real PostgreSQL and Valkey, followers running."""
