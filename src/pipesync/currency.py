"""Currencies: ISO 4217 codes and conversion into the reporting currency."""

from __future__ import annotations

from decimal import Decimal

_CENTS_OF_CENTS = Decimal("0.0001")  # the warehouse's amount scale (Numeric(20, 4))

# Active ISO 4217 codes (2026), plus XAU/XAG-style funds left out on purpose: deals are not priced in them.
ISO_4217 = frozenset(
    """AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BHD BIF BMD BND BOB BRL BSD BTN BWP BYN BZD
    CAD CDF CHF CLP CNY COP CRC CUP CVE CZK DJF DKK DOP DZD EGP ERN ETB EUR FJD FKP GBP GEL GHS GIP GMD GNF
    GTQ GYD HKD HNL HTG HUF IDR ILS INR IQD IRR ISK JMD JOD JPY KES KGS KHR KMF KPW KRW KWD KYD KZT LAK LBP
    LKR LRD LSL LYD MAD MDL MGA MKD MMK MNT MOP MRU MUR MVR MWK MXN MYR MZN NAD NGN NIO NOK NPR NZD OMR PAB
    PEN PGK PHP PKR PLN PYG QAR RON RSD RUB RWF SAR SBD SCR SDG SEK SGD SHP SLE SOS SRD SSP STN SVC SYP SZL
    THB TJS TMT TND TOP TRY TTD TWD TZS UAH UGX USD UYU UZS VES VND VUV WST XAF XCD XCG XOF XPF YER ZAR ZMW ZWG""".split()
)


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
        if c not in ISO_4217:
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
