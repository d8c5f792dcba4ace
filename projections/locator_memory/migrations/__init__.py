"""Migrations of the locator-memory read model (``NNNN_name.sql``)."""
