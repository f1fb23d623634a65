"""Wipsie's benchmark: `.venv/bin/python bench/run.py` (see README.md)."""
