"""The plugin's HTML templates: the model health pages (ui/render.py) and the notification
e-mail (notify.py). They render in the core's Jinja environment (autoescape on), so they
can extend and import the core's templates (base.html.j2, charts.html.j2)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from modelkeeper.reporting.render import environment

FOLDER = Path(__file__).parent


def render(template: str, /, **context: Any) -> str:
    """This folder's `template` filled in with `context`, every value escaped."""
    return environment(FOLDER).get_template(template).render(**context)
