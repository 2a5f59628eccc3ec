"""The shared retry and rate-limit policy, without any network."""

from __future__ import annotations

import pytest
from hypothesis import given, strategies as st

from pipesync.adapters.policy import (
    AmbiguousWrite, Budget, DailyQuota, Pacer, Policy, TokenExpired, Transient, classify_status, hubspot_budget,
    pipedrive_budget, retry_after_seconds, salesforce_budget,
)
from pipesync.redaction import scrub
from pipesync.errors import AuthError, QuotaReserveReached, RateLimitError, SourceError


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, s: float) -> None:
        self.slept.append(s)
        self.now += s


def failing(*failures: Exception, result: str = "ok"):
    calls = []

    def send() -> str:
        calls.append(1)
        if len(calls) <= len(failures):
            raise failures[len(calls) - 1]
        return result

    return send, calls


def policy(**kw) -> Policy:
    clock = FakeClock()
    return Policy("Test", pacer=Pacer(clock=clock, sleep=clock.sleep), sleep=clock.sleep, **kw)


def test_transient_failures_are_retried_until_success():
    send, calls = failing(Transient("HTTP 503"), Transient("dropped"))
    assert policy().call(send, what="read") == "ok"
    assert len(calls) == 3


def test_retry_after_is_honoured_exactly():
    slept: list[float] = []
    p = Policy("Test", sleep=slept.append, pacer=Pacer(sleep=slept.append))
    send, _ = failing(Transient("429", retry_after=7.0, replay_safe=True))
    p.call(send, what="read")
    assert 7.0 in slept


def test_exhausted_rate_limit_becomes_rate_limit_error():
    p = policy(max_attempts=3)
    send, calls = failing(*[Transient("429", retry_after=0, replay_safe=True, rate_limited=True)] * 5)
    with pytest.raises(RateLimitError):
        p.call(send, what="read")
    assert len(calls) == 3


def test_a_retry_after_longer_than_retry_max_s_stops_resumably_instead_of_waiting():
    clock = FakeClock()
    p = Policy("Test", pacer=Pacer(clock=clock, sleep=clock.sleep), sleep=clock.sleep, max_delay=5.0)
    send, calls = failing(*[Transient("429", retry_after=600.0, replay_safe=True, rate_limited=True)] * 3)
    with pytest.raises(RateLimitError, match=r"wait 600 s .*retry_max_s \(5 s\).*resumes"):
        p.call(send, what="read deals")
    assert len(calls) == 1 and sum(clock.slept) == 0


def test_every_wait_is_logged_with_its_length(caplog: pytest.LogCaptureFixture):
    send, _ = failing(Transient("HTTP 429", retry_after=3.0, replay_safe=True, rate_limited=True))
    with caplog.at_level("WARNING"):
        policy().call(send, what="read")
    assert "waiting 3.0 s before attempt 2 of 8" in caplog.text


def test_exhausted_server_errors_become_source_error():
    send, _ = failing(*[Transient("HTTP 500")] * 5)
    with pytest.raises(SourceError, match="after 2 attempts"):
        policy(max_attempts=2).call(send, what="read")


def test_a_create_is_not_replayed_after_an_ambiguous_failure():
    send, calls = failing(Transient("HTTP 502"))
    with pytest.raises(AmbiguousWrite):
        policy().call(send, what="create", idempotent=False)
    assert len(calls) == 1


def test_a_create_is_replayed_after_a_429_because_it_was_never_executed():
    send, calls = failing(Transient("429", retry_after=0, replay_safe=True, rate_limited=True))
    assert policy().call(send, what="create", idempotent=False) == "ok"
    assert len(calls) == 2


def test_an_expired_token_is_refreshed_once_and_the_request_replayed():
    refreshed = []
    send, calls = failing(TokenExpired())
    assert policy(refresh=lambda: refreshed.append(1)).call(send, what="read") == "ok"
    assert refreshed == [1] and len(calls) == 2


def test_a_token_refused_after_refresh_is_an_auth_error_not_a_loop():
    refreshed = []
    send, calls = failing(TokenExpired(), TokenExpired(), TokenExpired())
    with pytest.raises(AuthError):
        policy(refresh=lambda: refreshed.append(1)).call(send, what="read")
    assert refreshed == [1] and len(calls) == 2


def test_final_errors_pass_through_untouched():
    send, calls = failing(AuthError("revoked"))
    with pytest.raises(AuthError, match="revoked"):
        policy().call(send, what="read")
    assert len(calls) == 1


def test_pacer_never_exceeds_the_window():
    clock = FakeClock()
    pacer = Pacer(limit=10, window=2.0, clock=clock, sleep=clock.sleep)
    sent = []
    for _ in range(35):
        pacer.acquire()
        sent.append(clock.now)
    for t in sent:
        assert sum(1 for s in sent if t <= s < t + 2.0) <= 10


def test_pacer_learns_the_window_from_headers_and_waits_out_an_empty_budget():
    clock = FakeClock()
    pacer = Pacer(clock=clock, sleep=clock.sleep)
    pacer.acquire()
    pacer.observe(pipedrive_budget({"x-ratelimit-limit": "40", "x-ratelimit-remaining": "1", "x-ratelimit-reset": "1.5"}))
    pacer.acquire()
    assert pacer.limit == 40 and clock.slept == []
    pacer.observe(pipedrive_budget({"x-ratelimit-limit": "40", "x-ratelimit-remaining": "0", "x-ratelimit-reset": "1.5"}))
    pacer.acquire()
    assert clock.slept == [1.5]


def test_quota_reserve_stops_before_the_reserve_is_spent():
    quota = DailyQuota(reserve=1000, system="Salesforce")
    quota.observe(salesforce_budget({"Sforce-Limit-Info": "api-usage=14001/15000"}))
    with pytest.raises(QuotaReserveReached, match="999 of 15000"):
        quota.check()
    p = Policy("Salesforce", quota=quota)
    with pytest.raises(QuotaReserveReached):
        p.call(lambda: "never sent", what="read")


def test_vendor_headers_are_parsed():
    hs = hubspot_budget({"X-HubSpot-RateLimit-Max": "190", "X-HubSpot-RateLimit-Remaining": "12",
                         "X-HubSpot-RateLimit-Interval-Milliseconds": "10000"})
    assert hs == Budget(limit=190, remaining=12, window=10.0)
    assert salesforce_budget({"sforce-limit-info": "api-usage=18/5000; per-app-api-usage=17/250(appName=x)"}).daily_remaining == 4982
    assert retry_after_seconds({"Retry-After": "3"}) == 3.0
    assert retry_after_seconds({}) is None


def test_status_classification():
    assert isinstance(classify_status(429, {"Retry-After": "2"}, "", "X", "read"), Transient)
    assert classify_status(429, {"Retry-After": "2"}, "", "X", "read").replay_safe
    assert not classify_status(503, {}, "", "X", "read").replay_safe
    assert isinstance(classify_status(403, {}, "", "X", "read"), AuthError)
    assert isinstance(classify_status(404, {}, "", "X", "read"), SourceError)


@given(st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-", min_size=8, max_size=60))
def test_scrub_removes_tokens_wherever_they_appear(token):
    texts = [
        f"GET https://x/api?api_token={token}&a=1",
        f"Authorization: Bearer {token}",
        f'{{"access_token": "{token}", "refresh_token": "{token}"}}',
        f"failed for {token} today",
    ]
    for text in texts:
        assert token not in scrub(text, secrets=[token])


def test_scrub_catches_token_shapes_without_being_told_the_secret():
    assert "00Dxx0000001gPF!AQ" not in scrub("session 00Dxx0000001gPF!AQ4AQFakeSessionIdValue expired")
    assert "pat-na1-" not in scrub("token pat-na1-11111111-2222-3333-4444-555555555555 refused")
    assert "abc123" not in scrub("https://x/oauth?refresh_token=abc123&client_id=y")


def test_pacer_leaves_the_share_other_clients_used():
    clock = FakeClock()
    pacer = Pacer(limit=10, window=2.0, clock=clock, sleep=clock.sleep)
    pacer.acquire()
    pacer.acquire()
    # The server counted 7 requests in the window; we sent 2: others sent 5.
    pacer.observe(hubspot_budget({"X-HubSpot-RateLimit-Max": "10", "X-HubSpot-RateLimit-Remaining": "3",
                                  "X-HubSpot-RateLimit-Interval-Milliseconds": "2000"}))
    for _ in range(3):
        pacer.acquire()
    assert clock.slept == []
    pacer.acquire()
    assert clock.slept and clock.slept[0] > 0
