"""``pipesync plan --html``: the plan as a page to review — each change with its before and
after, rule and reason, and a link to the CRM record — in the report's style.

Autoescaped like the report, with a Content-Security-Policy that allows only its own
style and no script or network at all.
"""

from __future__ import annotations

import base64
import hashlib
from collections import defaultdict
from importlib import resources
from pathlib import Path
from typing import Any

from jinja2 import Environment, PackageLoader, select_autoescape
from markupsafe import Markup

from pipesync.errors import PipesyncError
from pipesync.files import write_atomically
from pipesync.pushback.plan import Plan, PlannedChange


def _shown(value: Any) -> str:
    return "(empty)" if value in (None, "") else str(value)


def render_review(plan: Plan) -> str:
    # the report's stylesheet, so a review looks like the report it came from
    css = resources.files("pipesync.report").joinpath("report.css").read_text(encoding="utf-8")
    digest = base64.b64encode(hashlib.sha256(css.encode("utf-8")).digest()).decode()
    env = Environment(loader=PackageLoader("pipesync.pushback", "."), autoescape=select_autoescape(default=True))
    by_rule: dict[str, list[PlannedChange]] = defaultdict(list)
    for c in plan.changes:
        by_rule[c.rule].append(c)
    return env.get_template("review.html").render(
        plan=plan, css=Markup(css), shown=_shown, by_rule=dict(sorted(by_rule.items())), counts=plan.counts(),
        sources=sorted({c.source for c in plan.changes}), made=plan.created_at.strftime("%Y-%m-%d %H:%M UTC"),
        csp=f"default-src 'none'; style-src 'sha256-{digest}'; base-uri 'none'; form-action 'none'",
    )


def write_review(plan: Plan, out: str | Path) -> Path:
    try:
        return write_atomically(out, render_review(plan))
    except OSError as e:
        raise PipesyncError(f"{out}: cannot write the review page: {e.strerror}") from None
