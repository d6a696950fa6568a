"""Phase task ``signals``: Profiles, STAB and the Assessment, computed in SQL."""

from __future__ import annotations

from prometheus.db.queries import query
from prometheus.errors import PrometheusError
from prometheus.pipeline.context import TaskContext

LOOKBACK_RETURNS = 20
#: Calendar days that surely hold LOOKBACK_RETURNS + 1 sessions (holidays included),
#: so the scan uses the primary key range instead of every price ever loaded.
LOOKBACK_CALENDAR_DAYS = 45


class NoPrices(PrometheusError):
    """No instrument of the region has a price on the run's date: an empty book would be
    a silent failure, so the attempt fails (and is retried, then the run FAILS, loudly)."""


def signals(ctx: TaskContext) -> None:
    ctx.conn.execute(query("delete_signal_scores"), {"run_id": ctx.run_id})
    written = ctx.conn.execute(
        query("compute_signal_scores"),
        {
            "run_id": ctx.run_id,
            "region": ctx.region,
            "as_of_date": ctx.as_of_date,
            "lookback": LOOKBACK_RETURNS,
            "calendar_days": LOOKBACK_CALENDAR_DAYS,
        },
    ).rowcount
    if written == 0:
        raise NoPrices(f"no {ctx.region} instrument has a price on {ctx.as_of_date.isoformat()}")
    ctx.log.info("signals.computed", instruments=written)
