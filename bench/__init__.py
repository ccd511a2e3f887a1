"""``make bench``: side-by-side benchmarks of spegel-py, each case with its baseline in one run.

``python -m bench.run`` runs every case, writes JSON under ``bench/results/`` and renders
``BENCHMARK.md`` from it. See ``bench/run.py`` for the case list and sizes.
"""
