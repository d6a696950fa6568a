"""Phase task ``universes``: the top-N liquid instruments by assessment score."""

from __future__ import annotations

from prometheus.db.queries import query
from prometheus.pipeline.context import TaskContext

UNIVERSE_SIZE = 50
MIN_LIQUIDITY = 1_000_000.0  # average daily traded value, in the price currency


def universes(ctx: TaskContext) -> None:
    ctx.conn.execute(query("delete_universe"), {"run_id": ctx.run_id})
    members = ctx.conn.execute(
        query("build_universe"),
        {"run_id": ctx.run_id, "size": UNIVERSE_SIZE, "min_liquidity": MIN_LIQUIDITY},
    ).rowcount
    ctx.log.info("universe.built", members=members)
