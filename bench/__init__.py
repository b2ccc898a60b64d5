"""Benchmarks (not tests): see bench/README.md."""

from __future__ import annotations
