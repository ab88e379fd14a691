"""Differential fuzzing: random expression graphs, compiled and checked against the NumPy reference.

``python -m tests.fuzz --graphs 10000 --seed 0`` runs a long campaign (see docs/checking.md);
``tests/fuzz/test_fuzz.py`` runs a short one with every test run.
"""
