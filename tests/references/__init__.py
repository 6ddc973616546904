"""Slow, plainly correct formulations of the product's kernels, which the tests compare the
kernels with and the benchmarks measure them against; the product does not ship them."""
