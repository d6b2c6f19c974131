"""The trace store in the observability profile: Tempo takes OTLP/HTTP where .env.example
points the services, Grafana has it as a data source, and a log line's trace_id links to it
(and a trace back to its log lines)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import orjson
import yaml

from tests.ops.dashboard import EVERY_LINE, documented_fields

ROOT = Path(__file__).resolve().parents[2]
OBSERVABILITY = ROOT / "deploy/observability"
TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"


def datasources() -> dict[str, dict[str, Any]]:
    provisioned = yaml.safe_load(
        (OBSERVABILITY / "grafana/provisioning/datasources/chatstream.yml").read_text()
    )
    return {d["uid"]: d for d in provisioned["datasources"]}


def test_tempo_receives_otlp_http_where_the_services_are_told_to_send() -> None:
    tempo = yaml.safe_load((OBSERVABILITY / "tempo.yml").read_text())
    endpoint = tempo["distributor"]["receivers"]["otlp"]["protocols"]["http"]["endpoint"]
    port = endpoint.rsplit(":", 1)[1]
    suggested = re.search(
        r"^#\s?OTEL_EXPORTER_OTLP_ENDPOINT=(\S+)$", (ROOT / ".env.example").read_text(), re.M
    )
    assert suggested is not None and suggested.group(1) == f"http://tempo:{port}"
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    service = compose["services"]["tempo"]
    assert port in service["expose"]
    assert any(v.endswith(":/etc/tempo/tempo.yml:ro") for v in service["volumes"])
    assert "tempo" in compose["services"]["grafana"]["depends_on"]
    # Grafana queries Tempo on the port Tempo serves.
    assert datasources()["tempo"]["url"] == f"http://tempo:{tempo['server']['http_listen_port']}"


def test_a_log_lines_trace_id_links_to_its_trace() -> None:
    loki = datasources()["loki"]
    [field] = loki["jsonData"]["derivedFields"]
    assert field["datasourceUid"] == "tempo" and datasources()["tempo"]["type"] == "tempo"
    # A line as the services write it (orjson, as shared/logging.py renders).
    line = orjson.dumps({"event": "stream.closed", "trace_id": TRACE_ID, "span_id": "0" * 16})
    match = re.search(field["matcherRegex"], line.decode())
    assert match is not None and match.group(1) == TRACE_ID
    # Grafana reads $$ in a provisioning file as a literal $.
    assert field["url"] == "$${__value.raw}"


def test_a_trace_links_back_to_its_log_lines_by_a_documented_field() -> None:
    to_logs = datasources()["tempo"]["jsonData"]["tracesToLogsV2"]
    assert to_logs["datasourceUid"] == "loki"
    assert 'trace_id = "$${__trace.traceId}"' in to_logs["query"]
    assert {"trace_id", "span_id"} <= documented_fields()[EVERY_LINE]
