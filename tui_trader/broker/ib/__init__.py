"""broker/ib."""
