"""docs/operations.md stays true: every setting is in the configuration reference with its
real default, nothing stale is listed, every metric /metrics exposes is documented, and
the sizing figures are the ones in docs/performance.md."""

from __future__ import annotations

import re
from pathlib import Path

from fastapi.testclient import TestClient

from promocodes.app import create_app
from promocodes.config import Settings
from promocodes.db import Database

DOCS = Path(__file__).parents[2] / "docs"
GUIDE = (DOCS / "operations.md").read_text()
REFERENCE = GUIDE.split("## Configuration reference", 1)[1]
ROW = re.compile(r"^\| `PROMOCODES_([A-Z0-9_]+)` \| (.+?) \| (.+) \|$", re.M)


def _documented() -> dict[str, str]:
    return {name.lower(): default for name, default, _ in ROW.findall(REFERENCE)}


def test_every_setting_is_in_the_reference_and_nothing_else() -> None:
    documented = _documented()
    fields = set(Settings.model_fields)
    missing = fields - set(documented)
    assert not missing, f"settings missing from docs/operations.md: {sorted(missing)}"
    stale = set(documented) - fields
    assert not stale, f"docs/operations.md lists settings that do not exist: {sorted(stale)}"


def test_documented_defaults_are_the_real_ones() -> None:
    for name, documented in _documented().items():
        default = Settings.model_fields[name].default
        shown = documented.split(" (")[0].strip("`")
        if default is None:
            assert shown == "unset", name
        elif isinstance(default, bool):
            assert shown == str(default).lower(), name
        else:
            assert shown == str(default), (name, shown, default)


def test_every_exposed_metric_is_documented(sqlite_db: Database) -> None:
    client = TestClient(create_app(Settings(database_url=sqlite_db.url), sqlite_db))
    client.get("/healthz")  # so the per-request families have samples
    text = client.get("/metrics").text
    families = set(re.findall(r"^# TYPE (\S+) ", text, re.M))
    assert len(families) >= 9
    for family in families:
        assert f"`{family}`" in GUIDE, f"metric {family} is not in docs/operations.md"
    listed = set(re.findall(r"^\| `(promocodes_[a-z_]+)` \|", GUIDE, re.M))
    assert listed == families


def test_sizing_figures_are_quoted_from_performance_md() -> None:
    sizing = GUIDE.split("## Sizing", 1)[1].split("\n## ", 1)[0]
    performance = (DOCS / "performance.md").read_text()
    figures = re.findall(r"\d[\d,.]*\d", sizing.split("| what |", 1)[1])
    assert len(figures) > 20
    for figure in figures:
        assert figure in performance, f"{figure} is not a figure of docs/performance.md"
