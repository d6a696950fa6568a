"""``python -m prometheus`` is the ``prometheus`` command."""

from prometheus.cli.app import main

main()
