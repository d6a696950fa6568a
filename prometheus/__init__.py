"""Prometheus engine runs: the orchestration core of a daily trading engine."""

__version__ = "0.1.0"
