"""Reading the Grafana dashboard and docs/logging.md: which log fields each panel queries, and
which fields the docs promise for each event."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
DASHBOARD = ROOT / "deploy/observability/grafana/dashboards/chatstream.json"
LOGGING_DOC = ROOT / "docs/logging.md"

# Fields present on every line, whatever its event; the docs list them under "Every line".
EVERY_LINE = "*"

_MATCHER = re.compile(r'(\w+)\s*(?:=~|!~|!=|=)\s*"([^"]*)"')
_LABEL_FILTER = re.compile(r"\|\s*(\w+)\s*(?:=~|!~|!=|==|>=|<=|=|>|<)")
_UNWRAP = re.compile(r"\bunwrap\s+(\w+)")
_BY = re.compile(r"\bby\s*\(([^)]*)\)")
_NOT_FIELDS = {"__error__", "le"}


def load_dashboard() -> dict[str, Any]:
    value = json.loads(DASHBOARD.read_text())
    assert isinstance(value, dict)
    return value


def panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    """Every panel that queries something (rows and their children flattened)."""
    found: list[dict[str, Any]] = []
    for panel in dashboard["panels"]:
        found.extend(panels({"panels": panel.get("panels", [])}))
        if panel.get("targets"):
            found.append(panel)
    return found


def queries(dashboard: dict[str, Any], datasource_type: str) -> list[str]:
    return [
        target["expr"]
        for panel in panels(dashboard)
        for target in panel["targets"]
        if (target.get("datasource") or panel["datasource"])["type"] == datasource_type
    ]


def logql_fields(expr: str) -> tuple[str, set[str]]:
    """The event a LogQL query reads (EVERY_LINE when it names none) and the fields it uses:
    stream-selector labels, label filters, ``unwrap`` and ``by (...)``."""
    selector = expr[expr.index("{") + 1 : expr.index("}")]
    labels = dict(_MATCHER.findall(selector))
    event = labels.get("event")
    if event is None or not re.fullmatch(r"[\w.]+", event):
        event = EVERY_LINE
    fields = set(labels)
    fields |= set(_LABEL_FILTER.findall(expr[expr.index("}") :])) - {"json"}
    fields |= set(_UNWRAP.findall(expr))
    for group in _BY.findall(expr):
        fields |= {name.strip() for name in group.split(",") if name.strip()}
    return event, fields - _NOT_FIELDS


def dashboard_log_fields() -> dict[str, set[str]]:
    """Every field the dashboard's log panels query, by event."""
    wanted: dict[str, set[str]] = {}
    for expr in queries(load_dashboard(), "loki"):
        event, fields = logql_fields(expr)
        wanted.setdefault(event, set()).update(fields)
    return wanted


def documented_fields() -> dict[str, set[str]]:
    """docs/logging.md: each ``### `event` `` heading, then a table whose first column names
    the fields (in backticks). The "Every line" heading holds the fields of all lines."""
    documented: dict[str, set[str]] = {}
    current: str | None = None
    for line in LOGGING_DOC.read_text().splitlines():
        heading = re.match(r"^###\s+(.*)$", line)
        if heading:
            title = heading.group(1).strip()
            named = re.fullmatch(r"`([\w.]+)`.*", title)
            current = named.group(1) if named else EVERY_LINE if title == "Every line" else None
            if current is not None:
                documented.setdefault(current, set())
            continue
        cell = re.match(r"^\|\s*`(\w+)`", line)
        if current is not None and cell:
            documented[current].add(cell.group(1))
    return documented
