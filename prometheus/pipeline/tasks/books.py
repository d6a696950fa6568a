"""Phase task ``books``: score-weighted book weights, capped, summing to 1."""

from __future__ import annotations

from collections.abc import Mapping

from prometheus.db.queries import query
from prometheus.pipeline.context import TaskContext

MAX_WEIGHT = 0.10


def books(ctx: TaskContext) -> None:
    rows = ctx.conn.execute(query("universe_scores"), {"run_id": ctx.run_id}).all()
    weights = capped_weights({r.instrument_id: r.score for r in rows}, MAX_WEIGHT)
    ctx.conn.execute(query("delete_book"), {"run_id": ctx.run_id})
    if weights:
        ctx.conn.execute(
            query("insert_book_weight"),
            [
                {"run_id": ctx.run_id, "instrument_id": name, "weight": weight}
                for name, weight in sorted(weights.items())
            ],
        )
    ctx.log.info("book.built", positions=len(weights))


def capped_weights(scores: Mapping[str, float], cap: float) -> dict[str, float]:
    """Weights proportional to positive scores, none above ``cap``, summing to 1.

    The excess of a capped name is shared among the others in proportion to their scores
    (water-filling), repeated until nothing is over the cap. A cap below 1/n cannot be
    met, so it is raised to 1/n (equal weights). No positive score: equal weights.
    """
    if not scores:
        return {}
    positive = {name: s for name, s in scores.items() if s > 0} or dict.fromkeys(scores, 1.0)
    cap = max(cap, 1.0 / len(positive))
    fixed: dict[str, float] = {}
    free = dict(positive)
    while free:
        budget = 1.0 - cap * len(fixed)
        total = sum(free[name] for name in sorted(free))
        over = {name for name, s in free.items() if s / total * budget > cap}
        if not over:
            fixed.update({name: s / total * budget for name, s in free.items()})
            break
        for name in over:
            fixed[name] = cap
            del free[name]
    return fixed
