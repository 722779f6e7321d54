"""Not installed: the sample builder and the synthetic generators, used by the tests and the benchmarks from a checkout."""
