"""Each adapter's options are a typed model: a typo, a wrong type or a credential in the config
stops the run with the file and line, before anything is read."""

from __future__ import annotations

import subprocess
import sys
from importlib.metadata import EntryPoint

import pytest
from pydantic import ValidationError
from typer.testing import CliRunner

from pipesync import plugins
from pipesync.adapters import open_adapter
from pipesync.adapters.base import Adapter
from pipesync.adapters.docs import updated
from pipesync.cli import app
from pipesync.config import Settings, SourceConfig, load_config
from pipesync.errors import FileErrors

runner = CliRunner()
CREDENTIAL = "hunter2-0123456789"  # must never appear in a message

# type → options every source of it needs, (a misspelt option, a mistyped one)
CASES = {
    "csv": ({"path": "deals.csv"}, "delimter: ';'", "page_size: lots"),
    "salesforce": ({}, "lost_reason_fild: Why__c", "batch_size: many"),
    "hubspot": ({}, "lookback: 30", "lookback_s: soon"),
    "pipedrive": ({}, "page_sise: 50", "create_origin_field: perhaps"),
}


def config_with(tmp_path, source_type: str, option_line: str, *, secrets: str = "") -> str:
    needed = "".join(f"      {k}: {v}\n" for k, v in CASES[source_type][0].items())
    path = tmp_path / "pipesync.yaml"
    path.write_text(
        "warehouse: sqlite:///w.db\n"
        "sources:\n"
        "  - name: crm\n"
        f"    type: {source_type}\n"
        f"{secrets}"
        "    options:\n"
        f"{needed}"
        f"      {option_line}\n"
    )
    return str(path)


def line_of(config: str, text: str) -> int:
    return next(n for n, line in enumerate(open(config).read().splitlines(), 1) if text in line)


@pytest.mark.parametrize("source_type", CASES)
@pytest.mark.parametrize("which", ["misspelt", "mistyped"])
def test_a_bad_option_is_a_usage_error_with_file_line_source_and_option(tmp_path, source_type, which):
    option_line = CASES[source_type][1 if which == "misspelt" else 2]
    config = config_with(tmp_path, source_type, option_line)
    option = option_line.split(":")[0]
    result = runner.invoke(app, ["sync", "--config", config])
    assert result.exit_code == 2
    assert config in result.output
    assert f"line {line_of(config, option_line)}: sources.0.options.{option} (source 'crm')" in result.output
    with pytest.raises(FileErrors) as error:
        load_config(config)
    assert len(error.value.problems) == 1


@pytest.mark.parametrize("source_type", CASES)
@pytest.mark.parametrize("credential", ["api_key", "password", "client_secret", "refresh_token"])
def test_a_credential_written_as_an_option_is_refused_without_showing_it(tmp_path, source_type, credential):
    config = config_with(tmp_path, source_type, f"{credential}: {CREDENTIAL}")
    result = runner.invoke(app, ["config", "check", "--config", config])
    assert result.exit_code == 2
    line = line_of(config, CREDENTIAL)
    assert f"line {line}: sources.0.options.{credential} (source 'crm'): '{credential}' is a credential: " \
           "put it under secrets: as {env: VAR}" in result.output
    assert CREDENTIAL not in result.output


def test_every_problem_is_reported_at_once_and_no_credential_in_python_errors_either():
    with pytest.raises(ValidationError) as error:
        SourceConfig(name="crm", type="pipedrive", options={"api_token": CREDENTIAL, "page_size": "lots", "pagesize": 3})
    assert {e["loc"] for e in error.value.errors()} == {
        ("options", "api_token"), ("options", "page_size"), ("options", "pagesize"),
    }
    assert CREDENTIAL not in str(error.value)
    with pytest.raises(ValidationError) as error:
        Settings(sources=[{"name": "crm", "type": "hubspot", "options": {"apikey": CREDENTIAL}}])
    assert CREDENTIAL not in str(error.value)


def test_a_secret_the_adapter_does_not_read_is_reported_on_its_line(tmp_path):
    secrets = "    secrets:\n      api_tokn: {env: PIPEDRIVE_TOKEN}\n"
    config = config_with(tmp_path, "pipedrive", "page_size: 50", secrets=secrets)
    with pytest.raises(FileErrors) as error:
        load_config(config)
    assert error.value.problems == [
        f"line {line_of(config, 'api_tokn')}: sources.0.secrets.api_tokn (source 'crm'): not a secret a pipedrive "
        "source reads (it reads: access_token, api_token, client_id, client_secret, refresh_token)"
    ]


def test_options_are_typed_attributes_and_plain_dicts_still_build_a_source():
    source = SourceConfig(name="sf", type="salesforce", options={"batch_size": "500", "instance_url": "https://x.example"})
    assert source.options.batch_size == 500 and source.options.quota_reserve == 1000  # Salesforce's own default
    assert SourceConfig(name="hs", type="hubspot").options.quota_reserve == 0
    assert source.model_dump(mode="json", exclude_defaults=True)["options"] == {
        "batch_size": 500, "instance_url": "https://x.example"}


def test_an_unknown_type_lists_the_registered_adapters():
    with pytest.raises(ValidationError, match="unknown source type 'excel' .registered adapters: "
                                              "csv, hubspot, pipedrive, salesforce"):
        SourceConfig(name="x", type="excel")


def test_the_option_tables_in_the_docs_are_the_models(pytestconfig):
    doc = pytestconfig.rootpath / "docs" / "adapters.md"
    text = doc.read_text(encoding="utf-8")
    assert all(f"<!-- options: {t} -->" in text for t in plugins.registered())
    assert updated(text) == text, "regenerate: python -m pipesync.adapters.docs docs/adapters.md"


# ------------------------------------------------------------------ plugins

class AcmeOptions(plugins.AdapterOptions):
    region: str = "eu"

    def record_url(self, source_id: str) -> str | None:
        return f"https://{self.region}.acme.example/deals/{source_id}"


PLUGIN = plugins.AdapterPlugin(AcmeOptions, "tests.adapters.test_options:AcmeAdapter", "Acme CRM")


class AcmeAdapter(Adapter):
    record_noun = "deal"


@pytest.fixture
def acme_installed(monkeypatch):
    """A third-party distribution's entry point, next to the built-in ones."""
    installed = list(plugins.entry_points(group=plugins.GROUP))
    acme = EntryPoint(name="acme", value=f"{__name__}:PLUGIN", group=plugins.GROUP)
    monkeypatch.setattr(plugins, "entry_points", lambda group: [*installed, acme])
    plugins.registered.cache_clear()
    yield
    plugins.registered.cache_clear()


def test_a_third_party_adapter_registers_through_its_entry_point(acme_installed, tmp_path):
    source = SourceConfig(name="acme", type="acme", options={"region": "us"})
    assert isinstance(source.options, AcmeOptions)
    assert source.options.record_url("7") == "https://us.acme.example/deals/7"
    with open_adapter(source, Settings()) as adapter:
        assert isinstance(adapter, AcmeAdapter)
    (tmp_path / "pipesync.yaml").write_text("sources:\n  - name: acme\n    type: acme\n    options:\n      regoin: us\n")
    with pytest.raises(FileErrors, match="line 5: sources.0.options.regoin"):
        load_config(tmp_path / "pipesync.yaml")


def test_validating_options_and_linking_records_never_import_a_vendor_sdk(tmp_path):
    (tmp_path / "pipesync.yaml").write_text(
        "sources:\n"
        "  - {name: sf, type: salesforce, options: {instance_url: 'https://acme.my.salesforce.com'}}\n"
        "  - {name: hs, type: hubspot, options: {portal_id: 42}}\n"
        "  - {name: pd, type: pipedrive, options: {company_domain: acme}}\n"
        "  - {name: file, type: csv, options: {path: deals.csv}}\n"
    )
    code = (
        "import sys\nfrom pipesync.config import load_config\n"
        f"settings = load_config({str(tmp_path / 'pipesync.yaml')!r})\n"
        "assert all(s.options.record_url('1') or s.type == 'csv' for s in settings.sources)\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('simple_salesforce', 'hubspot', 'httpx')))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
