"""The seed's one-shot managers, for cron and systemd timers.

They keep the seed's flags and translate them into ``prometheus`` commands, so that a
cron line and an operator at the CLI run exactly the same code with the same exits.
"""
