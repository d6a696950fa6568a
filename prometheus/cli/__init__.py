"""The ``prometheus`` command line: inspection, audited overrides and the services."""
