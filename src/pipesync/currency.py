"""Currencies: ISO 4217 codes (CLDR's, :mod:`pipesync.cldr`) and conversion into the reporting currency."""

from __future__ import annotations

from decimal import Decimal

from pipesync.cldr import currency_codes

_CENTS_OF_CENTS = Decimal("0.0001")  # the warehouse's amount scale (Numeric(20, 4))


class FxTable:
    """Converts amounts into the reporting currency with the configured rates.

    ``rates[c]`` is how many units of the reporting currency one unit of ``c`` buys.
    """

    def __init__(self, reporting: str, rates: dict[str, Decimal]):
        self.reporting = reporting
        self.rates = {k.upper(): Decimal(v) for k, v in rates.items()}
        self.rates[reporting] = Decimal(1)

    def check_code(self, code: str) -> str:
        c = code.strip().upper()
        if c not in currency_codes():
            raise ValueError(f"{code!r} is not an ISO 4217 currency code")
        return c

    def to_reporting(self, amount: Decimal, currency: str) -> Decimal:
        try:
            rate = self.rates[currency]
        except KeyError:
            raise ValueError(
                f"no exchange rate from {currency} to {self.reporting}: add it under fx_rates in pipesync.yaml"
            ) from None
        return (amount * rate).quantize(_CENTS_OF_CENTS)
