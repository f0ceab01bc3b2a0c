"""Where things are spelled: checks on the source tree that keep the layers honest.

- no operator pulls an XCom by a literal task id (the factory wires stages);
- nothing but the registry adapter reaches MLflow's client;
- lineage tags and artifact names are literals in modelkeeper/lineage.py only;
- JSON is written by modelkeeper.contracts.jsonio only (strict: no NaN, no `default=str`).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from modelkeeper.contracts import lineage

ROOT = Path(__file__).resolve().parents[1]
PRODUCT = [ROOT / "include" / "modelkeeper", ROOT / "plugins", ROOT / "dags", ROOT / "scripts"]
# Words of the vocabulary that are also ordinary words elsewhere (a task state, a folder).
COMMON = {"failed", "model", "owner", "reference", "outcome"}
JSONIO = ROOT / "include" / "modelkeeper" / "contracts" / "jsonio.py"
# Still on json.dumps(default=str): moves to jsonio.dumps with the backtest's rewrite.


def _sources() -> list[Path]:
    return sorted(p for folder in PRODUCT for p in folder.rglob("*.py"))


def _vocabulary() -> dict[str, str]:
    return {
        value: name
        for name, value in vars(lineage).items()
        # NOTIFY_*: event names (alarm, failure...) are also ordinary task ids and kinds.
        if name.isupper()
        and isinstance(value, str)
        and value not in COMMON
        and not name.startswith("NOTIFY_")
    }


class TestLayout:
    def test_the_checks_see_the_tree(self):
        names = {p.name for p in _sources()}
        assert {"factory.py", "promote.py", "registry.py", "lineage.py"} <= names
        assert {"data_end", "reference/reference.parquet", "promoted_in"} <= set(_vocabulary())

    @pytest.mark.parametrize("path", _sources(), ids=lambda p: str(p.relative_to(ROOT)))
    def test_source_file(self, path):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        problems = []
        vocabulary = _vocabulary() if path.name != "lineage.py" else {}
        # template_fields name the operator's own arguments, not lineage.
        fields = {
            id(c)
            for node in ast.walk(tree)
            if isinstance(node, ast.Assign | ast.AnnAssign)
            and "template_fields"
            in ast.unparse(node.targets[0] if isinstance(node, ast.Assign) else node.target)
            for c in ast.walk(node.value)
        }
        for node in ast.walk(tree):
            problems += _json_writers(node, path)
            if isinstance(node, ast.Call) and getattr(node.func, "attr", "") == "xcom_pull":
                for kw in node.keywords:
                    if kw.arg == "task_ids" and isinstance(kw.value, ast.Constant):
                        problems.append(f"line {node.lineno}: xcom_pull of a literal task id")
            if (
                isinstance(node, ast.Attribute)
                and node.attr == "client"
                and path.name != "registry.py"
            ):
                problems.append(f"line {node.lineno}: .client outside the registry adapter")
            if (
                isinstance(node, ast.Constant)
                and node.value in vocabulary
                and id(node) not in fields
            ):
                name = vocabulary[node.value]
                problems.append(f"line {node.lineno}: {node.value!r} spelled out (lineage.{name})")
        assert not problems, "\n".join(problems)


def _json_writers(node: ast.AST, path: Path) -> list[str]:
    """json.dump(s) outside jsonio, and `default=str` anywhere: both let NaN or a str()
    of an object into what readers parse as JSON."""
    if not isinstance(node, ast.Call):
        return []
    problems = []
    func = node.func
    if (
        isinstance(func, ast.Attribute)
        and func.attr in ("dump", "dumps")
        and isinstance(func.value, ast.Name)
        and func.value.id == "json"
        and path != JSONIO
    ):
        problems.append(f"line {node.lineno}: json.{func.attr} (write JSON with jsonio.dumps)")
    for kw in node.keywords:
        if kw.arg == "default" and isinstance(kw.value, ast.Name) and kw.value.id == "str":
            problems.append(f"line {node.lineno}: default=str (jsonio converts or refuses)")
    return problems
