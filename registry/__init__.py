"""The source of truth: one Store interface, one module per backend."""
