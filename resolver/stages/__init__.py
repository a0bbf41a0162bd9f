"""The stages of the resolution chain, one package each (its settings, its
metrics and a README). The order is set in :mod:`resolver.pipeline`."""
