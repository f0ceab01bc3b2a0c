"""Page helpers for the Airflow 3.3 UI (React + Chakra UI), found by trying them.

- The DAG page (`/dags/<dag_id>`) has a header button whose text is "Trigger" and whose
  accessible name is its aria-label, "Trigger Dag". It opens a modal (role `dialog`)
  titled "Trigger Dag - <dag_id>".
- In the modal, the Params form is an accordion (`data-testid="config-form"`) with one
  item per Param section ("Run Parameters" by default) and "Advanced Options" (run id,
  JSON conf, note). The final submit button, in the footer, is named exactly "Trigger".
- The form marks an invalid value in two ways. A field that starts out invalid gets
  Chakra's `data-invalid` on its `field` root (red border, "This field is required").
  But a required Param whose default is `""` is only flagged on its SECTION: the
  accordion item's title turns red and gains an error icon (an svg beside the title,
  not the open/close chevron), and the Trigger button is disabled. So both are checked.
- The Params load with a second request after the modal opens; the button is enabled
  until then. `TriggerDialog.open` waits until every Param the REST API lists is shown,
  and `state()` waits until what it reads stops changing.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from typing import Any

from playwright.sync_api import Locator, Page, expect


@dataclass
class FormState:
    submit_enabled: bool
    section_errors: list[str] = field(default_factory=list)
    invalid_fields: list[str] = field(default_factory=list)
    error_texts: list[str] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        return self.submit_enabled and not (
            self.section_errors or self.invalid_fields or self.error_texts
        )


def _text(locator: Locator) -> str:
    return re.sub(r"\s+", " ", locator.inner_text()).replace("*", "").strip()


class TriggerDialog:
    """The trigger modal of one DAG, opened from its DAG page."""

    def __init__(self, page: Page, dag_id: str, params: dict[str, Any]) -> None:
        self.page = page
        self.dag_id = dag_id
        self.params = params
        self.dialog = page.get_by_role("dialog")
        self.submit = self.dialog.get_by_role("button", name="Trigger", exact=True)

    @classmethod
    def open(cls, page: Page, dag_id: str, params: dict[str, Any]) -> TriggerDialog:
        """Go to the DAG page, click its Trigger button, wait for the Params form."""
        page.goto(f"/dags/{dag_id}")
        page.get_by_role("button", name="Trigger Dag", exact=True).click()
        self = cls(page, dag_id, params)
        expect(self.dialog).to_be_visible()
        expect(self.dialog.get_by_text(f"Trigger Dag - {dag_id}")).to_be_visible()
        expect(self.submit).to_be_visible()
        labels = self.dialog.locator('[data-scope="field"][data-part="label"]')
        for name, spec in params.items():
            title = (spec.get("schema") or {}).get("title") or name
            expect(
                labels.filter(has_text=re.compile(rf"^\s*{re.escape(title)}\s*\*?\s*$"))
            ).to_be_visible()
        return self

    def read(self) -> FormState:
        triggers = self.dialog.locator('[data-scope="accordion"][data-part="item-trigger"]')
        sections = [
            _text(t)
            for t in triggers.all()
            # the error icon sits beside the title; the chevron is the item-indicator
            if t.locator(':scope > :not([data-part="item-indicator"]) svg').count()
        ]
        invalid = [
            _text(root.locator('[data-part="label"]').first)
            if root.locator('[data-part="label"]').count()
            else root.get_attribute("id") or "?"
            for root in self.dialog.locator(
                '[data-scope="field"][data-part="root"][data-invalid]'
            ).all()
        ]
        invalid += [
            el.get_attribute("name") or el.get_attribute("id") or "?"
            for el in self.dialog.locator('[aria-invalid="true"]:not([data-invalid])').all()
        ]
        errors = [_text(e) for e in self.dialog.locator('[data-part="error-text"]').all()]
        return FormState(self.submit.is_enabled(), sections, invalid, errors)

    def state(self, settle: float = 0.6, timeout: float = 10) -> FormState:
        """The form's state once it has stayed the same for `settle` seconds."""
        deadline = time.monotonic() + timeout
        last, since = self.read(), time.monotonic()
        while time.monotonic() < deadline:
            time.sleep(0.15)
            now = self.read()
            if now != last:
                last, since = now, time.monotonic()
            elif time.monotonic() - since >= settle:
                break
        return last

    def screenshot(self, path: str) -> None:
        self.dialog.screenshot(path=path)
