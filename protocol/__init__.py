"""Wire formats and the identifier/value model. No I/O, no clock, no store."""
