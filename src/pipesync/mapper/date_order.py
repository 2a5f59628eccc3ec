"""Day/month order of a source's dates: what ``pipesync map`` writes as ``parse.date_order``.

A file's dates prove their order only where a day is above 12 (15/12/2026).
Such a proof is written into the mapping file, beside its evidence, so the order
is configured and visible, never guessed during a sync. Where the values prove
nothing, or contradict each other or the file, the user is told what to set.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from pipesync.model import DateStyle

_NAMES = {"DMY": "day first", "MDY": "month first", "YMD": "year first"}


@dataclass(frozen=True, slots=True)
class DateOrderAdvice:
    write: Literal["DMY", "MDY"] | None  # the order to write as parse.date_order
    message: str | None  # what the user should know, None when there is nothing to say
    problem: bool  # as the mapping would then stand, some dates are misread or quarantined


def advise_date_order(style: DateStyle | None, configured: str | None) -> DateOrderAdvice:
    """What to do about ``parse.date_order``, given the source's dates and the order already configured."""
    if style is None:
        return DateOrderAdvice(None, None, False)
    proof = style.proof
    if configured is not None:
        against = [f"{value} can only be {_NAMES[order]}" for order, value in proof.items() if order != configured]
        if not against:
            return DateOrderAdvice(None, None, False)
        return DateOrderAdvice(
            None, f"parse.date_order is {configured} ({_NAMES[configured]}), but {'; '.join(against)}", True
        )
    if style.order is not None:
        why = f"dates are {_NAMES[style.order]} ({style.order}): {proof[style.order]}; written as parse.date_order"
        return DateOrderAdvice(style.order, why, False)
    if len(proof) > 1:
        return DateOrderAdvice(
            None,
            f"dates are written both day first ({proof['DMY']}) and month first ({proof['MDY']}): no one order reads "
            "them all; set parse.date_order for most of them and correct the others in the source",
            True,
        )
    if style.ambiguous:
        return DateOrderAdvice(
            None,
            f"{style.ambiguous} date(s) read as well day first as month first (03/04/2026) and no date in the source "
            "tells which: set parse.date_order (DMY or MDY) in the mapping file, or their deals are quarantined",
            True,
        )
    return DateOrderAdvice(None, None, False)
