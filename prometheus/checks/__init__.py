"""``prometheus check``: the problems an operator must look at, read from the database.

Pure over the database (no printing, no exit codes): the CLI renders the report, and the
reactor can export the same figures as gauges. ``policy`` says what counts as a problem,
``problems`` what each one is, ``report`` reads them.
"""

from prometheus.checks.policy import (
    DATA_LATE_AFTER_DEFAULT,
    MAX_FAILURES_DEFAULT,
    MAX_HOLD_AGE_DEFAULT,
    MAX_NOTIFY_QUEUE_DEFAULT,
    REACTOR_SILENT_AFTER_DEFAULT,
    STUCK_AFTER_DEFAULT,
    STUCK_PHASES,
    WINDOW_DEFAULT,
    CheckPolicy,
    StuckAfter,
    parse_stuck_after,
    stuck_limits,
)
from prometheus.checks.problems import (
    BatchRegressed,
    DataLate,
    FailedRun,
    Heartbeat,
    ListenerDeaf,
    MissingDataset,
    NoDatasets,
    NotifyQueueFull,
    Problem,
    ProblemKind,
    ReactorSilent,
    StaleHold,
    StuckRun,
    TooManyFailures,
    human,
)
from prometheus.checks.report import REACTOR_LOOKBACK, CheckReport, find_problems

__all__ = [
    "DATA_LATE_AFTER_DEFAULT",
    "MAX_FAILURES_DEFAULT",
    "MAX_HOLD_AGE_DEFAULT",
    "MAX_NOTIFY_QUEUE_DEFAULT",
    "REACTOR_LOOKBACK",
    "REACTOR_SILENT_AFTER_DEFAULT",
    "STUCK_AFTER_DEFAULT",
    "STUCK_PHASES",
    "WINDOW_DEFAULT",
    "BatchRegressed",
    "CheckPolicy",
    "CheckReport",
    "DataLate",
    "FailedRun",
    "Heartbeat",
    "ListenerDeaf",
    "MissingDataset",
    "NoDatasets",
    "NotifyQueueFull",
    "Problem",
    "ProblemKind",
    "ReactorSilent",
    "StaleHold",
    "StuckAfter",
    "StuckRun",
    "TooManyFailures",
    "find_problems",
    "human",
    "parse_stuck_after",
    "stuck_limits",
]
