"""Benchmark of the modeler and mcm jobs against the local stand-ins (docs/benchmarks.md)."""
