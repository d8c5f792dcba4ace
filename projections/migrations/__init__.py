"""Schema migrations of the read models (``NNNN_name.sql``)."""
