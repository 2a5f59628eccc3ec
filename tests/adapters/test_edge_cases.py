"""The edge cases peers get wrong: rotating refresh tokens, revoked grants, the Salesforce
quota reserve, merges as aliases, and large reads through the Bulk API."""

from __future__ import annotations

import json
import subprocess
import sys
import threading

import pytest
from pydantic import SecretStr

from pipesync.adapters import open_adapter
from pipesync.adapters.auth import Grant, TokenStore, Tokens
from pipesync.config import SecretRef, Settings
from pipesync.errors import AuthError, QuotaReserveReached
from pipesync.model import Change, ChangeKind, ChangeOutcome, Cursor
from pipesync_sandbox.faults import Faults
from pipesync_sandbox.generator import generate

from .sandbox_env import running


@pytest.fixture(scope="module")
def world():
    return generate(23, 300)


def test_one_refresh_runs_at_a_time_and_the_rotated_token_is_stored_before_use(tmp_path):
    store = TokenStore(tmp_path / "oauth.json")
    issued, lock = [], threading.Lock()

    def fetch(refresh: SecretStr | None) -> Grant:
        with lock:
            issued.append(refresh.get_secret_value())  # type: ignore[union-attr]
            n = len(issued)
        return Grant(access_token=SecretStr(f"access-{n}"), refresh_token=SecretStr(f"refresh-{n}"))

    tokens = Tokens(fetch, refresh_token=SecretStr("refresh-0"), store=store)
    tokens.access_token()
    seen = tokens.generation
    threads = [threading.Thread(target=tokens.refresh, args=(seen,)) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # Eight callers saw the same expired token: one refresh, which used the rotated token.
    assert issued == ["refresh-0", "refresh-1"]
    assert json.loads((tmp_path / "oauth.json").read_text()) == {"refresh_token": "refresh-2"}
    assert oct((tmp_path / "oauth.json").stat().st_mode & 0o777) == "0o600"
    # A new process starts from the stored token, not the (now revoked) configured one.
    again = Tokens(fetch, refresh_token=SecretStr("refresh-0"), store=store)
    again.access_token()
    assert issued[-1] == "refresh-2"


@pytest.mark.parametrize("system", ["hubspot", "pipedrive"])
def test_rotating_refresh_tokens_survive_expiry_and_persist_across_runs(system, world, tmp_path):
    with running(system, world, tmp_path, faults=Faults(expire_token_after=3), oauth=True) as env:
        with env.adapter() as adapter:
            first = len([d for p in adapter.read_deals(None) for d in p.deals])
            assert adapter.api.policy.stats.refreshes >= 1
        # The configured refresh token was rotated away; the next run must use the stored one.
        with env.adapter() as adapter:
            assert len([d for p in adapter.read_deals(None) for d in p.deals]) == first


# One process reads every deal, refreshing its (short-lived) token many times over.
_READ_ALL = """
import sys, time
from pathlib import Path
from pipesync.adapters import open_adapter
from pipesync.config import Settings, SourceConfig
source = SourceConfig.model_validate_json(Path(sys.argv[1]).read_text())
with open_adapter(source, Settings()) as adapter:
    while not Path(sys.argv[2]).exists():  # both processes hold the configured token: start together
        time.sleep(0.005)
    n = sum(len(p.deals) for p in adapter.read_deals(None))
    print(n, adapter.api.policy.stats.refreshes)
"""


@pytest.mark.parametrize("system", ["hubspot", "pipedrive"])
def test_two_processes_sharing_a_token_store_never_revoke_each_others_grant(system, world, tmp_path):
    # Each refresh rotates the refresh token; a process refreshing with the one the other just
    # rotated away would be told the grant is revoked. Refreshes of one store take turns.
    with running(system, world, tmp_path, faults=Faults(expire_token_after=2), oauth=True) as env:
        config, go = tmp_path / "source.json", tmp_path / "go"
        config.write_text(env.source.model_dump_json())
        runs = [subprocess.Popen([sys.executable, "-c", _READ_ALL, str(config), str(go)],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
        go.touch()
        results = [run.communicate(timeout=240) for run in runs]
    for run, (out, err) in zip(runs, results):
        assert run.returncode == 0, err[-2000:]
        deals, refreshes = map(int, out.split())
        assert deals == len(env.seeded_live_ids()) and refreshes >= 2


@pytest.mark.parametrize("system", ["hubspot", "pipedrive"])
def test_a_revoked_grant_is_an_auth_error_without_any_secret(system, world, tmp_path):
    with running(system, world, tmp_path, oauth=True) as env:
        store = env.source.options.oauth_store
        TokenStore(store).save({"refresh_token": "revoked-or-stolen-0000"})
        with env.adapter() as adapter, pytest.raises(AuthError) as error:
            list(adapter.read_deals(None))
    message = str(error.value)
    assert "revoked-or-stolen-0000" not in message
    assert all(v not in message for v in env.sandbox.credentials.values())
    assert error.value.exit_code == 2


def test_salesforce_stops_before_the_quota_reserve_and_resumes_from_its_last_page(tmp_path):
    bigger = generate(23, 1500)  # several query batches of 200
    with running("salesforce", bigger, tmp_path, options={"batch_size": 200}) as env:
        live = env.seeded_live_ids()
        # The org's allocation is 100,000 calls: a reserve just under it leaves room for a few calls.
        source = env.source.model_copy(update={"options": env.source.options.model_copy(update={"quota_reserve": 100_000 - 6})})
        pages = []
        with open_adapter(source, Settings()) as adapter, pytest.raises(QuotaReserveReached, match="reserve"):
            for page in adapter.read_deals(None):
                pages.append(page)
        with env.adapter() as adapter:
            rest = list(adapter.read_deals(pages[-1].cursor))
    assert pages and len(pages) < 4
    ids = [d.source_id for p in pages + rest for d in p.deals]
    assert set(ids) == live


def test_salesforce_merges_become_aliases_to_the_survivor(world, tmp_path):
    with running("salesforce", world, tmp_path) as env:
        with env.adapter() as adapter:
            cursor = list(adapter.read_deals(None))[-1].cursor
            survivor, loser = sorted(env.seeded_live_ids())[:2]
            env.store.merge_deals(survivor, loser)
            pages = list(adapter.read_deals(cursor))
    assert {loser: survivor} == {k: v for p in pages for k, v in p.aliases.items()}
    assert loser in {i for p in pages for i in p.deleted_ids}


def test_hubspot_merge_through_the_api_returns_the_new_survivor_and_reads_alias_both_ids(world, tmp_path):
    with running("hubspot", world, tmp_path) as env:
        with env.adapter() as adapter:
            cursor = list(adapter.read_deals(None))[-1].cursor
            primary, other = sorted(env.seeded_live_ids())[:2]
            name = env.source.name
            [result] = adapter.write([Change(deal_key=f"{name}:{other}", kind=ChangeKind.MERGE, rule="dup",
                                             reason="same deal", merge_into=f"{name}:{primary}")])
            assert result.outcome is ChangeOutcome.APPLIED
            pages = list(adapter.read_deals(cursor))
    aliases = {k: v for p in pages for k, v in p.aliases.items()}
    assert result.new_source_id not in (primary, other)
    assert aliases[primary] == aliases[other] == result.new_source_id


def test_salesforce_reads_above_the_bulk_threshold_through_bulk_api_2(world, tmp_path):
    with running("salesforce", world, tmp_path, options={"bulk_threshold": 10}) as env:
        with env.adapter() as adapter:
            pages = list(adapter.read_deals(None))
            changed = set(env.store.touch_deals(0.05))
            again = list(adapter.read_deals(pages[-1].cursor))
    deals = [d for p in pages for d in p.deals]
    assert {d.source_id for d in deals} == env.seeded_live_ids() and len(deals) == len(env.seeded_live_ids())
    assert all(d.values["owner_email"] for d in deals if d.raw.get("OwnerId"))
    assert changed <= {d.source_id for p in again for d in p.deals}


def test_salesforce_session_mode_reports_an_expired_session_as_a_config_error(world, tmp_path):
    with running("salesforce", world, tmp_path) as env:
        (tmp_path / "session").write_text("00D000000000001!expired.session.value")
        source = env.source.model_copy(update={
            "options": env.source.options.model_copy(update={
                "username": None, "client_id": None, "auth": "session", "instance_url": env.sandbox.base_url}),
            "secrets": {"session_id": SecretRef(file=str(tmp_path / "session"))},
        })
        with open_adapter(source, Settings()) as adapter, pytest.raises(AuthError) as error:
            adapter.discover()
    assert "expired.session.value" not in str(error.value)


def test_cursor_from_an_empty_dict_is_a_full_read(world, tmp_path):
    with running("pipedrive", world, tmp_path) as env, env.adapter() as adapter:
        assert list(adapter.read_deals(Cursor(value={})))[-1].snapshot_complete
