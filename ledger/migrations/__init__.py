"""Numbered schema migrations of the event log (``NNNN_name.sql``)."""
