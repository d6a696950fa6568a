"""The reactor: LISTEN/NOTIFY, the dispatcher, the sweep, health and metrics.

It only asks the state machine for transitions; no workflow rule lives here.
"""
