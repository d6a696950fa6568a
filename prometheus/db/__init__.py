"""Database access: engines, the listener connection, named SQL, migrations."""
