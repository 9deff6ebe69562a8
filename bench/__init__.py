"""Benchmarks: scripts run as ``python bench/bench_x.py`` (a package so mypy and
the scripts that share helpers import them as ``bench.bench_x``)."""
