"""The CSV adapter's options."""

from __future__ import annotations

import codecs

from pydantic import Field, field_validator

from pipesync.plugins import AdapterOptions, AdapterPlugin


class CsvOptions(AdapterOptions):
    path: str = Field(description="the file, relative to the config's folder: CSV or text, or a workbook (.xlsx, "
                                  ".xlsm, .xlsb, .xls, .ods) read directly", examples=["exports/opportunities.csv"])
    format: str = Field("generic", description="the export's system, read by its own headers (adapters/csv_presets."
                                               "yaml): salesforce_report, hubspot_export, pipedrive_export, zoho_crm, "
                                               "zoho_bigin, monday_crm, salesflare, zendesk_sell, vtiger, jiandaoyun "
                                               "(简道云); canonical (pipesync's own columns: a warehouse export syncs "
                                               "back); or generic (common English headers; a bare 'source' column is "
                                               "never taken for the lead source); a mapping file's fields: overrides "
                                               "any column", examples=["salesforce_report"])
    encoding: str = Field("auto", description="auto: a BOM, then UTF-16 by its zero bytes, then UTF-8, then the code "
                                              "page Excel saved the file in (Windows-1252, else Shift-JIS, GBK, UHC or "
                                              "Big5); a Python codec name forces one")
    delimiter: str = Field("auto", description="auto: Excel's sep= line, else sniffed among , ; tab |; or the character")
    sheet: str | None = Field(None, description="a workbook's sheet to read (.xlsx, .xlsm, .xlsb, .xls, .ods); "
                                                "unset: the first sheet whose header the format's columns (or the "
                                                "mapping's fields:) recognize", examples=["Deals"])
    page_size: int = Field(1000, gt=0, description="rows committed per transaction (with workers writing side by side, "
                                                   "shorter transactions keep each from waiting on the other)")
    external_refs: dict[str, str] = Field({}, description="{column: source}: the column holds the same deal's id in "
                                                          "that source ({Salesforce Opportunity ID: sf}); the ids become "
                                                          "that source's deal keys, so consolidation joins the deals")

    def files(self) -> dict[str, str]:
        return {"path": self.path}

    @field_validator("format")
    @classmethod
    def _known_format(cls, name: str) -> str:
        from pipesync.adapters.csv_file import load_presets  # the presets file, read only to check a format

        presets = load_presets()
        if name not in presets:
            raise ValueError(f"unknown CSV format {name!r} (known: {', '.join(presets)})")
        return name

    @field_validator("encoding")
    @classmethod
    def _known_codec(cls, name: str) -> str:
        if name != "auto":
            try:
                codecs.lookup(name)
            except LookupError:
                raise ValueError(f"unknown encoding {name!r} (auto, or a Python codec name such as cp1252)") from None
        return name

    @field_validator("delimiter")
    @classmethod
    def _one_character(cls, value: str) -> str:
        if value != "auto" and len(value) != 1:
            raise ValueError("auto, or one character")
        return value


PLUGIN = AdapterPlugin(CsvOptions, "pipesync.adapters.csv_file:CsvAdapter",
                       "CSV and Excel exports: Salesforce reports, HubSpot and Pipedrive exports, any spreadsheet")
