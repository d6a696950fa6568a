"""``prometheus demo``: the whole product on a fresh machine, in well under a minute.

A database of its own (on the embedded PostgreSQL when nothing is configured), two
regions that require their datasets, a reactor in this process, and end-of-day
ingestion for several market days. Runs advance by themselves as the last dataset of
each day lands; the live view shows them move, the summary says how fast.
"""

from prometheus.demo.scenario import DemoOptions, DemoResult, run_demo

__all__ = ["DemoOptions", "DemoResult", "run_demo"]
