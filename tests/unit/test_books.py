"""capped_weights: score-weighted, capped, summing to 1 (pure, no database)."""

from __future__ import annotations

import math

import pytest

from prometheus.pipeline.tasks.books import MAX_WEIGHT, capped_weights

TOLERANCE = 1e-12


def _check(weights: dict[str, float], cap: float) -> None:
    assert math.isclose(sum(weights.values()), 1.0, abs_tol=TOLERANCE)
    assert all(0 < w <= cap + TOLERANCE for w in weights.values()), weights


def test_uncapped_weights_are_proportional_to_scores() -> None:
    weights = capped_weights({"a": 1.0, "b": 3.0}, cap=1.0)
    assert weights == pytest.approx({"a": 0.25, "b": 0.75})
    _check(weights, 1.0)


def test_no_weight_exceeds_the_cap_and_the_excess_is_shared() -> None:
    scores = {"big": 100.0, **{f"s{i}": 1.0 for i in range(10)}}
    weights = capped_weights(scores, cap=0.2)
    _check(weights, 0.2)
    assert weights["big"] == pytest.approx(0.2)
    # the other ten share the remaining 0.8 equally, as their scores are equal
    assert all(weights[f"s{i}"] == pytest.approx(0.08) for i in range(10))


def test_water_filling_caps_in_rounds() -> None:
    # "b" is under the cap at first (0.3 of 1.0) but over it once "a"'s excess is shared.
    scores = {"a": 50.0, "b": 30.0, "c": 10.0, "d": 5.0, "e": 5.0}
    weights = capped_weights(scores, cap=0.3)
    _check(weights, 0.3)
    assert weights == pytest.approx({"a": 0.3, "b": 0.3, "c": 0.2, "d": 0.1, "e": 0.1})


def test_order_is_preserved_among_uncapped_names() -> None:
    scores = {f"n{i:02d}": float(i) for i in range(1, 31)}
    weights = capped_weights(scores, cap=MAX_WEIGHT)
    _check(weights, MAX_WEIGHT)
    ranked = sorted(weights, key=lambda n: scores[n])
    assert [weights[n] for n in ranked] == sorted(weights.values())


def test_a_cap_below_one_over_n_is_raised_to_equal_weights() -> None:
    weights = capped_weights({"a": 1.0, "b": 2.0, "c": 3.0, "d": 4.0}, cap=0.1)
    assert weights == pytest.approx(dict.fromkeys("abcd", 0.25))
    _check(weights, 0.25)


def test_all_zero_scores_give_equal_weights() -> None:
    weights = capped_weights({"a": 0.0, "b": 0.0, "c": 0.0}, cap=0.5)
    assert weights == pytest.approx(dict.fromkeys("abc", 1 / 3))
    _check(weights, 0.5)


def test_zero_and_negative_scores_get_no_weight_when_some_are_positive() -> None:
    weights = capped_weights({"zero": 0.0, "neg": -1.0, "a": 1.0, "b": 1.0}, cap=1.0)
    assert weights == pytest.approx({"a": 0.5, "b": 0.5})


def test_no_scores_no_weights() -> None:
    assert capped_weights({}, cap=0.1) == {}


def test_a_single_name_takes_everything() -> None:
    assert capped_weights({"only": 0.3}, cap=0.1) == {"only": 1.0}


@pytest.mark.parametrize("n", [10, 11, 17, 50])
def test_many_names_at_the_reference_cap(n: int) -> None:
    scores = {f"i{k}": 1.0 / (k + 1) ** 2 for k in range(n)}
    _check(capped_weights(scores, cap=MAX_WEIGHT), MAX_WEIGHT)


def test_same_scores_give_bit_identical_weights_regardless_of_dict_order() -> None:
    scores = {f"i{k}": (k * 7919 % 101) / 10 for k in range(40)}
    forward = capped_weights(scores, cap=MAX_WEIGHT)
    backward = capped_weights(dict(reversed(list(scores.items()))), cap=MAX_WEIGHT)
    assert forward == backward
