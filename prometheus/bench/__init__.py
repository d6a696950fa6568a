"""``prometheus bench``: speed measured on a scratch database, printed as numbers.

Every scenario creates its own database on the configured server (or the embedded one)
and drops it afterwards: a benchmark never touches real data.
"""
