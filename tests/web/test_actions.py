"""Actions through the console: each one moves the run and writes its audit row with
actor ``web:<user>`` and the reason; every refusal changes nothing."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from typing import Any

import pytest
from sqlalchemy import Engine, text
from starlette.testclient import TestClient

from prometheus.config import Settings
from prometheus.pipeline.holds import HoldScope, holds_of_run, place_hold
from prometheus.pipeline.phases import Phase
from prometheus.pipeline.state import Event, Run, get_run, run_events
from prometheus.web.security import CSRF_COOKIE
from tests.support.console import ACTOR, AUTH, csrf_from, failed_run, run_in

DAY = date(2026, 11, 24)


def state(engine: Engine, run: Run) -> tuple[Run | None, list[Event]]:
    return get_run(engine, run.run_id), run_events(engine, run.run_id)


@pytest.fixture
def failed(engine: Engine, settings: Settings) -> Run:
    """FAILED in DATA_READY (its signals task failed), as the engine leaves it."""
    return failed_run(engine, settings, DAY, "US")


def test_retry_moves_a_failed_run_back_and_audits_user_and_reason(
    client: TestClient, engine: Engine, failed: Run
) -> None:
    token = csrf_from(client, failed.run_id, "retry")
    response = client.post(
        f"/runs/{failed.run_id}/retry",
        data={"csrf_token": token, "reason": "  vendor fixed the prices  "},
        auth=AUTH,
        follow_redirects=False,
    )
    assert response.status_code == 303, response.text
    assert response.headers["location"] == f"/runs/{failed.run_id}?done=retry"
    run, events = state(engine, failed)
    assert run is not None and run.phase is Phase.DATA_READY and run.attempts == 0
    last = events[-1]
    assert (last.from_phase, last.to_phase, last.actor) == ("FAILED", "DATA_READY", ACTOR)
    assert last.detail == {"override": "retry", "reason": "vendor fixed the prices"}
    page = client.get(response.headers["location"])
    assert "Retry recorded in the audit trail; the run is now DATA_READY." in page.text


def test_cancel_fails_an_active_run_and_audits_user_and_reason(
    client: TestClient, engine: Engine
) -> None:
    active = run_in(engine, DAY, "EU", Phase.SIGNALS_DONE)
    token = csrf_from(client, active.run_id, "cancel")
    response = client.post(
        f"/runs/{active.run_id}/cancel",
        data={"csrf_token": token, "reason": "bad upstream data"},
        auth=AUTH,
        follow_redirects=False,
    )
    assert response.status_code == 303, response.text
    run, events = state(engine, active)
    assert run is not None and run.phase is Phase.FAILED
    last = events[-1]
    assert (last.from_phase, last.to_phase, last.actor) == ("SIGNALS_DONE", "FAILED", ACTOR)
    assert last.detail == {"override": "cancel", "reason": "bad upstream data"}


def test_the_confirmation_step_shows_the_run_the_actor_and_a_required_reason(
    client: TestClient, failed: Run
) -> None:
    page = client.get(f"/runs/{failed.run_id}/retry", auth=AUTH)
    assert page.status_code == 200
    assert f"Retry run {failed.run_id}?" in page.text
    assert 'method="post"' in page.text and "required" in page.text
    assert ACTOR in page.text
    cookie = page.headers["set-cookie"]
    assert CSRF_COOKIE in cookie and "HttpOnly" in cookie and "SameSite=strict" in cookie


def test_actions_offered_are_the_ones_overrides_would_accept(
    client: TestClient, engine: Engine, failed: Run
) -> None:
    active = run_in(engine, DAY, "EU", Phase.WAITING_FOR_DATA)
    done = run_in(engine, DAY, "UK", Phase.COMPLETED)
    offered = {}
    for run in (failed, active, done):
        page = client.get(f"/runs/{run.run_id}").text
        offered[run.phase] = {
            name for name in ("retry", "cancel") if f'href="/runs/{run.run_id}/{name}"' in page
        }
    assert offered == {
        Phase.FAILED: {"retry"},
        Phase.WAITING_FOR_DATA: {"cancel"},
        Phase.COMPLETED: set(),
    }


def test_without_a_login_nothing_happens(client: TestClient, engine: Engine, failed: Run) -> None:
    token = csrf_from(client, failed.run_id, "retry")
    before = state(engine, failed)
    wrong: list[dict[str, Any]] = [
        {},
        {"auth": ("alice", "wrong")},
        {"auth": ("mallory", "c0rrect-h0rse-battery")},
    ]
    for login in wrong:
        confirm = client.get(f"/runs/{failed.run_id}/retry", **login)
        post = client.post(
            f"/runs/{failed.run_id}/retry", data={"csrf_token": token, "reason": "r"}, **login
        )
        for response in (confirm, post):
            assert response.status_code == 401, login
            assert response.headers["www-authenticate"].startswith('Basic realm="prometheus web"')
    assert state(engine, failed) == before


def test_without_a_login_no_run_is_looked_up(client: TestClient, failed: Run) -> None:
    """An anonymous client learns nothing of which runs exist: the login is asked for
    before the run is looked up, so a missing run answers as an existing one does."""
    token = csrf_from(client, failed.run_id, "retry")
    form = {"csrf_token": token, "reason": "r"}
    for run_id in (failed.run_id, 987654):
        for path in (f"/runs/{run_id}/retry", f"/runs/{run_id}/no-such-action"):
            assert client.get(path).status_code == 401, path
            assert client.post(path, data=form).status_code == 401, path
    assert client.get("/runs/987654/retry", auth=AUTH).status_code == 404  # logged in


def test_a_malformed_authorization_header_is_no_login(client: TestClient, failed: Run) -> None:
    for header in ("Basic !!!", "Basic " + "YWxpY2U=", "Bearer abc", "Basic"):
        response = client.get(f"/runs/{failed.run_id}/retry", headers={"Authorization": header})
        assert response.status_code == 401, header


@pytest.fixture(params=["read_only_client", "no_login_client"])
def refusing_client(request: pytest.FixtureRequest) -> Iterator[TestClient]:
    """A console that takes no action: --read-only, or no credentials configured."""
    client: TestClient = request.getfixturevalue(request.param)
    yield client


def test_a_read_only_console_offers_nothing_and_refuses_every_non_get(
    refusing_client: TestClient, engine: Engine, failed: Run
) -> None:
    page = refusing_client.get(f"/runs/{failed.run_id}")
    assert page.status_code == 200
    assert f"/runs/{failed.run_id}/retry" not in page.text and "read-only" in page.text
    before = state(engine, failed)
    assert refusing_client.get(f"/runs/{failed.run_id}/retry", auth=AUTH).status_code == 403
    refusing_client.cookies.set(CSRF_COOKIE, "x" * 43)  # a forged but well-formed pair
    for method in ("POST", "PUT", "DELETE", "PATCH", "OPTIONS"):
        response = refusing_client.request(
            method,
            f"/runs/{failed.run_id}/retry",
            data={"csrf_token": "x" * 43, "reason": "forged"},
            auth=AUTH,
        )
        assert response.status_code == 403, method
        assert "refused:" in response.text
    assert refusing_client.post("/", auth=AUTH).status_code == 403
    assert state(engine, failed) == before


@pytest.mark.parametrize("reason", ["", "   \n "])
def test_a_missing_reason_is_refused_and_nothing_is_written(
    client: TestClient, engine: Engine, failed: Run, reason: str
) -> None:
    token = csrf_from(client, failed.run_id, "retry")
    before = state(engine, failed)
    response = client.post(
        f"/runs/{failed.run_id}/retry", data={"csrf_token": token, "reason": reason}, auth=AUTH
    )
    assert response.status_code == 400
    assert "must say why" in response.text
    assert state(engine, failed) == before
    no_field = client.post(f"/runs/{failed.run_id}/retry", data={"csrf_token": token}, auth=AUTH)
    assert no_field.status_code == 400
    assert state(engine, failed) == before


def test_a_bad_csrf_token_is_refused_and_nothing_is_written(
    client: TestClient, engine: Engine, failed: Run
) -> None:
    token = csrf_from(client, failed.run_id, "retry")
    before = state(engine, failed)
    url = f"/runs/{failed.run_id}/retry"
    forged = [
        {"data": {"csrf_token": token[:-1] + ("A" if token[-1] != "A" else "B"), "reason": "r"}},
        {"data": {"reason": "r"}},
        {"data": {"csrf_token": "", "reason": "r"}},
        {"content": b'{"csrf_token": "t", "reason": "r"}'},  # not a form
    ]
    for request in forged:
        response = client.post(url, auth=AUTH, **request)  # type: ignore[arg-type]
        assert response.status_code == 403, request
        assert "CSRF" in response.text
    client.cookies.clear()  # a cross-site form: SameSite=Strict never sends the cookie
    response = client.post(url, data={"csrf_token": token, "reason": "r"}, auth=AUTH)
    assert response.status_code == 403
    assert state(engine, failed) == before


def test_an_unknown_run_or_action_is_404(client: TestClient, failed: Run) -> None:
    token = csrf_from(client, failed.run_id, "retry")
    for path in ("/runs/987654/retry", f"/runs/{failed.run_id}/delete"):
        assert client.get(path, auth=AUTH).status_code == 404, path
        response = client.post(path, data={"csrf_token": token, "reason": "r"}, auth=AUTH)
        assert response.status_code == 404, path


def test_an_action_overrides_refuses_is_shown_and_changes_nothing(
    client: TestClient, engine: Engine
) -> None:
    done = run_in(engine, DAY, "UK", Phase.COMPLETED)
    before = state(engine, done)
    token = csrf_from(client, done.run_id, "retry")
    response = client.post(
        f"/runs/{done.run_id}/retry", data={"csrf_token": token, "reason": "why not"}, auth=AUTH
    )
    assert response.status_code == 400
    assert f"run {done.run_id} is COMPLETED, not FAILED: nothing to retry" in response.text
    assert "why not" in response.text  # the reason is kept in the form
    assert state(engine, done) == before


def test_a_run_being_advanced_is_busy_and_unchanged(client: TestClient, engine: Engine) -> None:
    active = run_in(engine, DAY, "JP", Phase.SIGNALS_DONE)
    token = csrf_from(client, active.run_id, "cancel")
    with engine.connect() as holder, holder.begin():
        # A phase in progress holds the run's row lock for its whole transaction.
        holder.execute(
            text("SELECT 1 FROM engine_runs WHERE run_id = :id FOR UPDATE"), {"id": active.run_id}
        )
        response = client.post(
            f"/runs/{active.run_id}/cancel",
            data={"csrf_token": token, "reason": "stop it"},
            auth=AUTH,
        )
    assert response.status_code == 409
    assert "being advanced right now" in response.text
    run, events = state(engine, active)
    assert run is not None and run.phase is Phase.SIGNALS_DONE
    assert all(e.actor != ACTOR for e in events)


def test_a_form_too_large_is_refused(client: TestClient, failed: Run) -> None:
    token = csrf_from(client, failed.run_id, "retry")
    response = client.post(
        f"/runs/{failed.run_id}/retry",
        data={"csrf_token": token, "reason": "x" * 20_000},
        auth=AUTH,
    )
    assert response.status_code == 413


def test_hold_holds_the_run_and_records_user_and_reason(client: TestClient, engine: Engine) -> None:
    active = run_in(engine, DAY, "EU", Phase.DATA_READY)
    token = csrf_from(client, active.run_id, "hold")
    response = client.post(
        f"/runs/{active.run_id}/hold",
        data={"csrf_token": token, "reason": "bad vendor prices"},
        auth=AUTH,
        follow_redirects=False,
    )
    assert response.status_code == 303, response.text
    run = get_run(engine, active.run_id)
    assert run is not None and run.hold_id is not None and run.phase is Phase.DATA_READY
    (hold,) = holds_of_run(engine, active.run_id)
    assert hold.scope == HoldScope("EU", None, DAY, DAY)
    assert (hold.held_by, hold.reason) == (ACTOR, "bad vendor prices")
    page = client.get(f"/runs/{active.run_id}").text
    assert f"hold {hold.hold_id} on EU 2026-11-24..2026-11-24" in page
    assert f'href="/runs/{active.run_id}/release"' in page
    assert f'href="/runs/{active.run_id}/hold"' not in page


def test_release_releases_every_hold_covering_the_run_and_records_user_and_reason(
    client: TestClient, engine: Engine
) -> None:
    active = run_in(engine, DAY, "EU", Phase.SIGNALS_DONE)
    placed, _ = place_hold(engine, HoldScope("EU"), actor="cli:ops", reason="hold the books")
    token = csrf_from(client, active.run_id, "release")
    response = client.post(
        f"/runs/{active.run_id}/release",
        data={"csrf_token": token, "reason": "vendor resent"},
        auth=AUTH,
        follow_redirects=False,
    )
    assert response.status_code == 303, response.text
    assert holds_of_run(engine, active.run_id) == []
    with engine.connect() as conn:
        released = conn.execute(
            text("SELECT released_by, release_reason FROM engine_run_holds WHERE hold_id = :id"),
            {"id": placed.hold_id},
        ).one()
    assert tuple(released) == (ACTOR, "vendor resent")
    again = client.post(
        f"/runs/{active.run_id}/release",
        data={"csrf_token": token, "reason": "twice"},
        auth=AUTH,
    )
    assert again.status_code == 400 and "is not held" in again.text


def test_hold_and_release_are_offered_as_the_holds_module_would_accept_them(
    client: TestClient, engine: Engine
) -> None:
    free = run_in(engine, DAY, "EU", Phase.DATA_READY)
    held = run_in(engine, DAY, "US", Phase.UNIVERSES_DONE)
    done = run_in(engine, DAY, "UK", Phase.COMPLETED)
    place_hold(engine, HoldScope("US"), actor="cli:ops", reason="books")
    offered = {}
    for run in (free, held, done):
        page = client.get(f"/runs/{run.run_id}").text
        offered[run.region] = {
            name for name in ("hold", "release") if f'href="/runs/{run.run_id}/{name}"' in page
        }
    assert offered == {"EU": {"hold"}, "US": {"release"}, "UK": set()}
