"""A credential never reaches a message: in URLs of every form, in driver errors, in stored run errors."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from pipesync.cli import app
from pipesync.redaction import safe_url, scrub, url_secrets

CANARY = "Canary-5ecret-7"

URLS = [
    f"postgresql+psycopg://user:{CANARY}@127.0.0.1:5499/db",
    f"postgresql+psycopg://user@127.0.0.1:5499/db?password={CANARY}",
    f"postgresql+psycopg://user@127.0.0.1:5499/db?sslmode=require&sslpassword={CANARY}",
    f"postgresql+psycopg://user@127.0.0.1:5499/db?application_name=x&api_key={CANARY}&token={CANARY}",
]


@pytest.mark.parametrize("url", URLS)
def test_safe_url_hides_every_credential_and_keeps_the_rest(url: str) -> None:
    shown = safe_url(url)
    assert CANARY not in shown
    assert "127.0.0.1:5499/db" in shown and "***" in shown
    assert CANARY in url_secrets(url)


@pytest.mark.parametrize("text", [
    f"connection to postgresql://u:{CANARY}@h/db failed",
    f"dsn='host=h password={CANARY} dbname=x'",
    f'{{"refresh_token": "{CANARY}"}}',
    f"Authorization: Bearer {CANARY}",
    f"client_secret={CANARY}&grant_type=refresh_token",
])
def test_scrub_hides_credentials_in_free_text(text: str) -> None:
    assert CANARY not in scrub(text)


def test_scrub_keeps_ordinary_words() -> None:
    text = "deal 'Token ring upgrade' in stage Proposal: amount 1,200"
    assert scrub(text) == text


@pytest.mark.parametrize("url", URLS)
def test_a_warehouse_that_cannot_be_opened_never_prints_its_password(example_project: Path, url: str) -> None:
    result = CliRunner().invoke(app, ["sync", "--config", str(example_project / "pipesync.yaml")],
                                env={**os.environ, "PIPESYNC_WAREHOUSE": url})
    assert result.exit_code != 0
    assert "cannot open the warehouse" in result.output
    assert CANARY not in result.output
