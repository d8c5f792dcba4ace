"""Schema migrations of the API's own tables (``NNNN_name.sql``)."""
