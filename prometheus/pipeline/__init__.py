"""The state machine and the phase tasks: every rule of the workflow lives here and in sql/."""
