"""``flowmail dashboard``: the operators' live page. Throughput and latency by priority,
provider health (failures, breaker, taken out by an alert), consumer lag, raised alerts and
the campaigns of the day with their progress, pushed to the page every few seconds over
server-sent events. An operator tool: it listens on 127.0.0.1 unless told otherwise.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import requests
from aiohttp import web

from core.opensearch_client import http_session
from core.settings import Settings
from flowmail.campaign_control import all_runs
from flowmail.supervisor import layout, process_count
from processors.campaign_runs import progress
from processors.dashboard import breaker_states, campaigns_query, query, raised, snapshot
from streams.groups import group_lag
from streams.partition_reader import read_partition
from streams.quarantine import RULE as PROVIDER_RULE
from streams.topics import ALERTS


def _breakers(settings: Settings) -> dict[str, bool | None]:
    """From the /metrics of the worker processes on this host (best effort)."""
    states: dict[str, bool | None] = {}
    for child in layout(settings, process_count(settings)):
        try:
            text = requests.get(f"http://127.0.0.1:{child.web_port}/metrics", timeout=0.5).text
        except requests.RequestException:
            continue
        for name, is_open in breaker_states(text).items():
            states[name] = bool(states.get(name)) or is_open
    return states


def gather(settings: Settings) -> dict[str, Any]:
    now = int(time.time() * 1000)
    session = http_session(settings)
    url = f"{settings.opensearch_url.rstrip('/')}/{settings.index_prefix}-*/_search"
    params = {"ignore_unavailable": "true", "allow_no_indices": "true"}
    answer = session.post(url, params=params, json=query(now), timeout=10).json()
    campaigns = session.post(url, params=params, json=campaigns_query(now), timeout=10).json()
    lag: dict[str, int] = {}
    for row in group_lag(settings.kafka_bootstrap, settings.app_id, timeout_s=10):
        lag[row.group] = lag.get(row.group, 0) + row.lag
    since = now - int(settings.alert_window_s * 1000) - 24 * 3600 * 1000
    alerts = raised([json.loads(v) for v in read_partition(settings.kafka_bootstrap, ALERTS,
                                                            since, None) if v[:1] == b"{"])
    out = sorted({str(a.get("key")) for a in alerts if a.get("rule") == PROVIDER_RULE}
                 ) if settings.alert_take_provider_out else []
    runs = {key: progress(found) for key, found in all_runs(settings).items()}
    return snapshot(answer, campaigns, lag, alerts, _breakers(settings), out, now, runs=runs)


class Dashboard:
    def __init__(self, settings: Settings, refresh_s: float = 2.0) -> None:
        self.settings, self.refresh_s = settings, refresh_s
        self._last: tuple[float, dict[str, Any]] | None = None
        self._lock = asyncio.Lock()

    async def current(self) -> dict[str, Any]:
        """One snapshot per refresh, however many pages are open."""
        async with self._lock:
            if self._last is None or time.monotonic() - self._last[0] >= self.refresh_s:
                found = await asyncio.get_running_loop().run_in_executor(
                    None, gather, self.settings)
                self._last = (time.monotonic(), found)
            return self._last[1]

    async def page(self, _request: web.Request) -> web.Response:
        return web.Response(text=PAGE, content_type="text/html")

    async def snapshot(self, _request: web.Request) -> web.Response:
        return web.json_response(await self.current())

    async def events(self, request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream",
                                               "Cache-Control": "no-cache"})
        await response.prepare(request)
        while True:
            try:
                found = await self.current()
                await response.write(f"data: {json.dumps(found)}\n\n".encode())
            except (ConnectionResetError, asyncio.CancelledError):
                return response
            except Exception as err:  # noqa: BLE001 - the page says so and keeps trying
                await response.write(
                    f"event: trouble\ndata: {json.dumps(type(err).__name__)}\n\n".encode())
            await asyncio.sleep(self.refresh_s)

    def app(self) -> web.Application:
        app = web.Application()
        app.add_routes([web.get("/", self.page), web.get("/snapshot", self.snapshot),
                        web.get("/events", self.events)])
        return app


PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>flowmail dashboard</title>
<style>
body{font-family:Arial,Helvetica,sans-serif;margin:24px;color:#18181b;background:#f4f4f5}
h1{font-size:20px}h2{font-size:15px;margin:18px 0 6px}
section{background:#fff;border-radius:6px;padding:12px 16px;margin-bottom:12px}
table{border-collapse:collapse;font-size:13px}td,th{padding:3px 10px;text-align:right}
td:first-child,th:first-child{text-align:left}.bad{color:#dc2626}.muted{color:#71717a}
.bar{display:inline-block;height:8px;background:#2563eb;vertical-align:middle}
</style></head>
<body><main id="dashboard" data-updates="0">
<h1>flowmail <span class="muted" id="updated">connecting...</span></h1>
<section><h2>Throughput, last <span id="minutes">15</span> min
(<span id="sent-total">0</span> sent)</h2><table id="priorities"></table>
<div id="series"></div></section>
<section><h2>Latency, publish to provider accept (ms)</h2><table id="latency"></table></section>
<section><h2>Providers</h2><table id="providers"></table></section>
<section><h2>Consumer lag (<span id="lag-total">0</span> behind)</h2><table id="lag"></table>
</section>
<section><h2>Alerts raised</h2><table id="alerts"></table></section>
<section><h2>Campaigns, last 24 h</h2><table id="campaigns"></table></section>
</main>
<script>
const view = document.getElementById("dashboard");
function table(id, header, rows) {
  const t = document.getElementById(id); t.replaceChildren();
  const head = t.insertRow(); header.forEach(h => { const c = document.createElement("th");
    c.textContent = h; head.appendChild(c); });
  rows.forEach(r => { const row = t.insertRow(); r.forEach(v => {
    const c = row.insertCell(); if (v instanceof Node) c.appendChild(v);
    else c.textContent = v === null || v === undefined ? "-" : String(v); }); });
}
const pct = v => v === null || v === undefined ? "-" : (v * 100).toFixed(1) + " %";
function bar(share) { const b = document.createElement("span"); b.className = "bar";
  b.style.width = Math.round(Math.max(0, Math.min(1, share)) * 160) + "px"; return b; }
function render(s) {
  document.getElementById("minutes").textContent = s.minutes;
  document.getElementById("sent-total").textContent = s.sent_total;
  document.getElementById("lag-total").textContent = s.lag_total;
  const p = Object.entries(s.priorities);
  table("priorities", ["priority", "sent", "per minute", "failed", "deferred"],
        p.map(([k, v]) => [k, v.sent, v.per_minute, v.failed, v.deferred]));
  p.forEach(([k, v], i) => document.getElementById("priorities").rows[i + 1].dataset.priority = k);
  const most = Math.max(1, ...s.series.map(m => Object.values(m).slice(1)
    .reduce((a, b) => a + b, 0)));
  const series = document.getElementById("series"); series.replaceChildren();
  s.series.forEach(m => { const sum = Object.entries(m).filter(([k]) => k !== "at")
    .reduce((a, [, v]) => a + v, 0); const line = document.createElement("div");
    line.appendChild(bar(sum / most)); line.append(" " + sum); series.appendChild(line); });
  table("latency", ["priority", "p50", "p95", "p99"],
        Object.entries(s.latency).map(([k, v]) => [k, v.p50, v.p95, v.p99]));
  table("providers", ["provider", "sent", "failed", "failure rate", "breaker", "taken out"],
        s.providers.map(v => [v.name, v.sent, v.failed, pct(v.failure_rate),
          v.breaker_open === null || v.breaker_open === undefined ? "?" :
          (v.breaker_open ? "OPEN" : "closed"), v.out ? "yes" : "no"]));
  table("lag", ["consumer group", "behind"], Object.entries(s.lag));
  table("alerts", ["rule", "of", "rate", "threshold"],
        s.alerts.map(a => [a.rule, a.key, pct(a.rate), pct(a.threshold)]));
  table("campaigns", ["campaign", "shop", "phase", "targeted", "handed out", "sent",
                     "failed", "suppressed", "other", "winner", ""],
        s.campaigns.map(c => [c.campaign_id, c.shop_id, c.phase ?? "", c.targeted ?? "",
          c.queued ?? "", c.sent, c.failed, c.suppressed, c.other, c.winner ?? "",
          bar(c.targeted ? c.sent / c.targeted : (c.emails ? c.sent / c.emails : 0))]));
  document.getElementById("updated").textContent =
    "updated " + new Date(s.at).toISOString().slice(11, 19) + " UTC";
  view.dataset.updates = String(Number(view.dataset.updates) + 1);
}
const source = new EventSource("events");
source.onmessage = m => render(JSON.parse(m.data));
source.addEventListener("trouble", m => {
  document.getElementById("updated").textContent = "trouble: " + JSON.parse(m.data); });
</script></body></html>
"""
