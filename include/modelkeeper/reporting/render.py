"""Every HTML page modelkeeper writes goes through here: Jinja2, autoescape on.

Templates are `templates/*.html.j2` in this package (the base layout, the chart macro,
the backtest report, the model card). The Airflow plugin keeps its own pages in its own
folder and gets them with `environment(folder)`: its templates can extend and import the
core's. Undefined names raise (StrictUndefined) instead of rendering as blanks.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

from jinja2 import ChoiceLoader, Environment, FileSystemLoader, PackageLoader, StrictUndefined

DASH = "—"  # what a missing value shows as


def num(value: Any, digits: int = 3, trim: bool = False) -> str:
    """A float with `digits` decimals (`trim`: without trailing zeros), an int as it is,
    None as a dash."""
    if value is None:
        return DASH
    if isinstance(value, float):
        text = f"{value:.{digits}f}"
        return text.rstrip("0").rstrip(".") if trim and "." in text else text
    return str(value)


def dash(value: Any) -> Any:
    """The value, or a dash for None."""
    return DASH if value is None else value


@cache
def environment(*folders: str | Path) -> Environment:
    """The environment for templates in `folders` first, then the core's."""
    env = Environment(
        loader=ChoiceLoader(
            [FileSystemLoader([str(f) for f in folders]), PackageLoader("modelkeeper.reporting")]
        ),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(num=num, dash=dash)
    return env


def render(template: str, /, **context: Any) -> str:
    """The core's `template` filled in with `context`; every value is escaped unless it is
    `markupsafe.Markup` (HTML that is already safe, like rendered Markdown)."""
    return environment().get_template(template).render(**context)
