"""Prometheus engine runs: the orchestration core of a daily trading engine."""
