"""Event-sourced core: domain, event store, migrations, definitions, artifacts, settings."""
