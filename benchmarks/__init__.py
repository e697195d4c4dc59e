"""Benchmarks: run from the repository root, e.g. `python benchmarks/sync_vs_vdirsyncer.py --quick`."""
