"""Benchmarks and paper reproductions: run each as ``python -m benchmarks.<name>`` from the repository root."""
