"""Faults as a client meets them, and the rate-limit windows the vendor apps build on."""

from __future__ import annotations

import ssl
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from starlette.applications import Starlette
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from pipesync_sandbox.faults import FaultMiddleware, Faults, Injected, RequestFault
from pipesync_sandbox.ratelimit import DailyBudget, RollingWindow
from pipesync_sandbox.server import serve


class _Vendor:
    """A renderer in some vendor's own words."""

    def server_error(self) -> Response:
        return JSONResponse({"status": "error", "category": "INTERNAL_ERROR"}, status_code=502)

    def too_many_requests(self, retry_after_s: float | None) -> Response:
        headers = {} if retry_after_s is None else {"Retry-After": f"{retry_after_s:g}"}
        return JSONResponse({"policyName": "TEN_SECONDLY_ROLLING"}, status_code=429, headers=headers)


async def _ok(request) -> JSONResponse:
    return JSONResponse({"ok": True})


def _served(faults: Faults):
    return serve(FaultMiddleware(Starlette(routes=[Route("/", _ok)]), faults, _Vendor()))


def test_no_faults_means_every_request_passes():
    with _served(Faults()) as served, httpx.Client(base_url=served.base_url) as client:
        assert {client.get("/").status_code for _ in range(20)} == {200}


def test_server_errors_come_in_the_vendors_own_shape():
    with _served(Faults(error_rate=1.0)) as served:
        response = httpx.get(served.base_url)
    assert response.status_code == 502
    assert response.json() == {"status": "error", "category": "INTERNAL_ERROR"}


def test_a_429_burst_follows_every_n_passing_requests_with_a_scaled_retry_hint():
    faults = Faults(burst_429_every=3, burst_429_len=2, burst_retry_after_s=10, time_scale=5)
    with _served(faults) as served, httpx.Client(base_url=served.base_url) as client:
        responses = [client.get("/") for _ in range(10)]
    assert [r.status_code for r in responses] == [200, 200, 200, 429, 429] * 2
    assert responses[3].headers["Retry-After"] == "2"
    assert responses[3].json() == {"policyName": "TEN_SECONDLY_ROLLING"}


def test_a_dropped_connection_is_a_protocol_error_never_a_status():
    with _served(Faults(drop_rate=1.0)) as served, pytest.raises(httpx.RemoteProtocolError):
        httpx.get(served.base_url)


def test_a_dropped_connection_over_tls_is_a_protocol_error_too():
    app = FaultMiddleware(Starlette(routes=[Route("/", _ok)]), Faults(drop_rate=1.0), _Vendor())
    with serve(app, tls=True) as served, pytest.raises(httpx.RemoteProtocolError):
        httpx.get(served.base_url, verify=ssl.create_default_context(cafile=served.ca_bundle))


def test_slow_responses_are_delayed_then_answered_normally():
    faults = Faults(slow_rate=1.0, slow_ms=30)
    assert faults.next_request() == RequestFault(Injected.NONE, delay_s=0.03)
    with _served(faults) as served:
        response = httpx.get(served.base_url)
    assert response.status_code == 200
    assert response.elapsed.total_seconds() >= 0.03


def test_faults_switch_on_and_off_while_the_server_runs():
    faults = Faults()
    with _served(faults) as served, httpx.Client(base_url=served.base_url) as client:
        assert client.get("/").status_code == 200
        faults.update(error_rate=1.0)
        assert client.get("/").status_code == 502
        faults.update(error_rate=0.0)
        assert client.get("/").status_code == 200


def test_rates_are_shares_of_requests_and_the_same_seed_gives_the_same_faults():
    a, b = Faults(error_rate=0.2, drop_rate=0.1, seed=7), Faults(error_rate=0.2, drop_rate=0.1, seed=7)
    fates_a = [a.next_request().injected for _ in range(5000)]
    fates_b = [b.next_request().injected for _ in range(5000)]
    assert fates_a == fates_b
    assert 0.08 < fates_a.count(Injected.DROP) / 5000 < 0.12
    # errors are drawn among the requests that were not dropped
    assert 0.15 < fates_a.count(Injected.SERVER_ERROR) / 5000 < 0.21
    other_seed = Faults(error_rate=0.2, drop_rate=0.1, seed=8)
    assert [other_seed.next_request().injected for _ in range(5000)] != fates_a


def test_a_token_expires_after_n_uses_and_a_fresh_token_starts_over():
    faults = Faults(expire_token_after=3)
    assert [faults.token_expired("old") for _ in range(5)] == [False, False, False, True, True]
    assert faults.token_expired("refreshed") is False


def test_tokens_never_expire_when_the_fault_is_off():
    faults = Faults()
    assert not any(faults.token_expired("t") for _ in range(1000))


def test_partial_batch_failures_fail_the_given_share_of_items_deterministically():
    def draws(seed: int) -> list[bool]:
        faults = Faults(partial_batch_failure_rate=0.25, seed=seed)
        return [faults.batch_item_fails() for _ in range(4000)]

    items = draws(3)
    assert 0.22 < sum(items) / 4000 < 0.28
    assert draws(3) == items
    assert draws(4) != items


@pytest.mark.parametrize("bad", [{"error_rate": 1.5}, {"drop_rate": -0.1}, {"time_scale": 0},
                                 {"expire_token_after": 0}, {"burst_429_len": -1}])
def test_impossible_settings_are_refused_and_leave_the_faults_unchanged(bad):
    with pytest.raises(ValueError):
        Faults(**bad)
    faults = Faults(error_rate=0.5)
    with pytest.raises(ValueError):
        faults.update(**bad)
    assert faults.error_rate == 0.5 and faults.time_scale == 1.0


def test_update_refuses_unknown_settings():
    with pytest.raises(ValueError, match="unknown fault setting"):
        Faults().update(eror_rate=0.1)


class _Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_rolling_window_admits_its_limit_then_says_when_to_retry():
    clock = _Clock()
    window = RollingWindow(limit=3, window_s=10, clock=clock)
    decisions = []
    for _ in range(4):
        decisions.append(window.try_acquire())
        clock.now += 1
    assert [d.allowed for d in decisions] == [True, True, True, False]
    assert [d.remaining for d in decisions] == [2, 1, 0, 0]
    refused = decisions[-1]
    assert refused.retry_after_s == pytest.approx(7)  # the first request leaves the window at t+10
    clock.now = 1010.0
    assert window.try_acquire().allowed


def test_a_rolling_window_counts_costs_not_requests():
    clock = _Clock()
    window = RollingWindow(limit=40, window_s=2, clock=clock)
    assert window.try_acquire(cost=20).allowed
    assert window.try_acquire(cost=20).allowed
    refused = window.try_acquire(cost=10)
    assert not refused.allowed and refused.retry_after_s == pytest.approx(2)


def test_time_scale_shrinks_the_window_and_everything_it_reports():
    clock = _Clock()
    window = RollingWindow(limit=1, window_s=10, time_scale=100, clock=clock)
    assert window.interval_s == pytest.approx(0.1)
    first = window.try_acquire()
    assert first.reset_s == pytest.approx(0.1)
    assert window.try_acquire().retry_after_s == pytest.approx(0.1)
    clock.now += 0.1
    assert window.try_acquire().allowed


def test_a_window_follows_a_time_scale_changed_at_run_time():
    clock, faults = _Clock(), Faults()
    window = RollingWindow(limit=1, window_s=10, time_scale=lambda: faults.time_scale, clock=clock)
    window.try_acquire()
    faults.update(time_scale=10)
    clock.now += 1
    assert window.try_acquire().allowed


def test_a_daily_budget_runs_out_and_refills_when_the_period_ends():
    clock = _Clock()
    budget = DailyBudget(limit=50, time_scale=86_400, clock=clock)  # a "day" of one real second
    assert budget.try_acquire(cost=40).remaining == 10
    refused = budget.try_acquire(cost=20)
    assert not refused.allowed and refused.retry_after_s == pytest.approx(1.0)
    clock.now += 1.0
    assert budget.used == 0
    assert budget.try_acquire(cost=20).remaining == 30 and budget.used == 20


@settings(max_examples=60, deadline=None)
@given(limit=st.integers(1, 20), window=st.floats(0.5, 10),
       requests=st.lists(st.tuples(st.floats(0, 3), st.integers(1, 5)), max_size=60))
def test_a_rolling_window_never_admits_more_than_its_limit_and_waiting_as_told_is_enough(limit, window, requests):
    clock = _Clock()
    limiter = RollingWindow(limit=limit, window_s=window, clock=clock)
    admitted: list[tuple[float, int]] = []
    for gap, cost in requests:
        clock.now += gap
        decision = limiter.try_acquire(cost)
        if not decision.allowed and cost <= limit:
            clock.now += decision.retry_after_s
            decision = limiter.try_acquire(cost)
            assert decision.allowed
        if decision.allowed:
            admitted.append((clock.now, cost))
            assert sum(c for t, c in admitted if t > clock.now - window) <= limit


def test_faults_count_requests_exactly_under_concurrent_use():
    faults = Faults(burst_429_every=3, burst_429_len=1)

    def hammer() -> list[Injected]:
        return [faults.next_request().injected for _ in range(1000)]

    with ThreadPoolExecutor(max_workers=8) as pool:
        fates = [f for batch in pool.map(lambda _: hammer(), range(8)) for f in batch]
    assert fates.count(Injected.TOO_MANY_REQUESTS) == 8000 // 4
