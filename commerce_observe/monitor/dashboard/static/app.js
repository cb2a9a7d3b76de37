// Commerce dashboard: fetches /api/summary and fills the panels (drawing helpers: charts.js).
// What needs acting on comes first: headline numbers, open alerts, anomalies, findings and
// payment failures fit a 1400x1000 window; trends and breakdowns follow below.
"use strict";
const params = new URLSearchParams(location.search);
const SCOPE = {orders: "product", revenue: "currency", payment_failures: "payment method"};
const METRIC = {orders: "orders", revenue: "revenue", payment_failures: "payment failure ratio"};

function rangeWords(minutes) {
  return minutes % 1440 === 0 ? `last ${minutes / 1440} d` : minutes % 60 === 0 ? `last ${minutes / 60} h` : `last ${minutes} min`;
}
function perWords(bucket) {
  return bucket === 1 ? "per minute" : bucket === 60 ? "per hour" : bucket % 60 === 0 ? `per ${bucket / 60} h` : `per ${bucket} min`;
}
function duration(ms) {
  const m = Math.round(ms / 60000);
  return m < 60 ? `${m} min` : m < 2880 ? `${Math.floor(m / 60)} h ${m % 60 ? (m % 60) + " min" : ""}`.trim() : `${Math.round(m / 1440)} d`;
}
function when(ms, d) { return fmtTime(ms, d.range.end_ms - ms > 86400000); }

function tile(key, value, sub, state) {
  const el = document.querySelector(`#headline .tile[data-key="${key}"]`);
  el.querySelector(".value").textContent = value;
  el.querySelector(".sub").textContent = sub;
  el.dataset.value = value;
  el.dataset.state = state || "";
}

function headline(d) {
  const h = d.headline, words = rangeWords(d.minutes || (d.range.end_ms - d.range.start_ms) / 60000);
  tile("orders", fmtNum(h.orders, 0), words);
  const revenue = h.revenue.map(r => `${fmtNum(num(r.revenue))} ${r.currency}`).join("\n") || "0";
  tile("revenue", revenue, `${h.revenue_means}, ${words}`);
  document.querySelector('#headline .tile[data-key="revenue"]').classList.toggle("multi", h.revenue.length > 1);
  tile("failure-rate", h.failure_rate_pct === null ? "–" : `${h.failure_rate_pct.toFixed(1)} %`,
       `${h.payment_failures} of ${h.payments} payment attempts failed`, h.payment_failures ? "warn" : "");
  tile("lost", String(h.lost), `events never handled, ${words}`, h.lost ? "bad" : "ok");
  tile("duplicate", String(h.duplicate), `events handled twice, ${words}`, h.duplicate ? "bad" : "ok");
  tile("open-alerts", String(h.open_alerts), "firing now", h.open_alerts ? "bad" : "ok");
}

function openAlerts(d) {
  const el = document.querySelector("#open-alerts table");
  document.querySelector("#open-alerts .empty").textContent = d.open_alerts.length ? "" : "no alert is firing";
  table(el, ["", "Alert", "Where", "Since", "How bad"], d.open_alerts.map(a => ({
    cells: [a.severity, a.title, a.where, `${when(a.since_ms, d)} (${duration(d.range.end_ms - a.since_ms)})`,
            a.links.length ? (() => { const s = document.createElement("span"); s.append(a.measure + " ", linksOf(a.links.slice(0, 2))); return s; })() : a.measure],
    data: {id: a.id, rule: a.rule, severity: a.severity, since: a.since_ms},
  })), r => `sev-${r.data.severity}`);
}

function anomalies(d) {
  const el = document.querySelector("#anomalies table");
  document.querySelector("#anomalies .empty").textContent = d.anomalies.length ? "" : "nothing abnormal in this range";
  table(el, ["Where", "Actual against expected", "Score", "Since"], d.anomalies.map(a => {
    const scope = !a.entity || a.entity === "__all__" ? "whole shop" : `${SCOPE[a.metric] || a.metric} ${a.entity}`;
    const what = document.createElement("span");
    what.append(Object.assign(document.createElement("b"), {textContent: scope}), ` · ${METRIC[a.metric] || a.metric}`);
    const vs = document.createElement("span");
    const range = a.lower !== null && a.upper !== null ? ` (${fmtNum(a.lower)}–${fmtNum(a.upper)})` : "";
    vs.append(band(a), Object.assign(document.createElement("div"), {className: "vs",
      textContent: `${fmtNum(a.actual)} vs ${a.expected === null ? "?" : fmtNum(a.expected)} expected${range}`}));
    const since = a.ongoing ? `${when(a.since_ms, d)}, ongoing` : `${when(a.since_ms, d)} – ${when(a.at_ms, d)}`;
    return {cells: [what, vs, Math.round(a.score), since],
            data: {series: a.series, score: a.score, actual: a.actual, expected: a.expected === null ? "" : a.expected,
                   lower: a.lower === null ? "" : a.lower, upper: a.upper === null ? "" : a.upper,
                   since: a.since_ms, ongoing: a.ongoing, severity: a.severity}};
  }), r => `sev-${r.data.severity}`);
}

function findings(d) {
  const counts = Object.fromEntries(d.findings.map(c => [c.key, c.count]));
  const stats = document.querySelector("#findings .stats");
  stats.dataset.lost = counts.LOST || 0; stats.dataset.duplicate = counts.DUPLICATE || 0;
  stats.textContent = d.findings.length ? d.findings.map(c => `${c.key} ${c.count}`).join(" · ") : "no lost, duplicated or late event";
  table(document.querySelector("#findings table"), ["Time", "Kind", "Event", "Order / payment", "Trace"],
    d.finding_list.map(f => {
      const links = linksOf(Object.entries(f.links || {}));
      if (!links.childNodes.length && f.trace_id) links.textContent = f.trace_id;
      return {cells: [when(f.at_ms, d), f.kind, `${f.event_type || "event"} ${f.event_id || ""}`.trim(),
                      f.order_id || f.payment_id || "", links],
              data: {kind: f.kind, eventId: f.event_id || "", traceId: f.trace_id || ""}};
    }), r => `kind-${r.data.kind}`);
}

function charts(d) {
  const per = perWords(d.bucket_minutes);
  document.querySelectorAll("h2 .per").forEach(el => { el.textContent = per; });
  const pb = d.per_bucket;
  // Orders dashed and on top of a wider, paler payments line: equal counts stay visible.
  lines(document.querySelector("#per-minute .chart"), [
    {name: "payments", points: pb.map(r => [r.minute_ms, r.payments]), color: "#43a047", width: 5, opacity: 0.45},
    {name: "orders", points: pb.map(r => [r.minute_ms, r.orders]), color: "#1e88e5", width: 2, dash: "6 4", marker: "square"},
    {name: "payment failures", points: pb.map(r => [r.minute_ms, r.payment_failures]), color: "#e53935", width: 2},
  ], d.grid, {width: 440, height: 190, ticks: 4});
  const trend = {};
  if (!d.sales_trend.length) {
    document.querySelector("#sales-trend .chart").textContent = "no orders in this range";
  }
  for (const r of d.sales_trend) (trend[r.currency] = trend[r.currency] || {})[r.bucket_ms] = num(r.revenue);
  if (d.sales_trend.length) lines(document.querySelector("#sales-trend .chart"),
        Object.entries(trend).map(([c, byT]) => ({name: c, points: d.grid.map(t => [t, byT[t] || 0])})), d.grid,
        {width: 1400, height: 200});
  bars(document.querySelector("#failure-reasons .chart"), d.failures_by_reason.map(c => ({key: c.key, value: c.count})), "#e53935");
  bars(document.querySelector("#failure-methods .chart"), d.failures_by_method.map(c => ({key: c.key, value: c.count})), "#fb8c00");
  bars(document.querySelector("#top-products .chart"), d.top_products.map(p => ({key: p.product_id, value: p.quantity})));
  table(document.querySelector("#revenue table"), ["Currency", "Orders", "Revenue", "Avg order value"],
    d.revenue.map(r => ({cells: [r.currency, r.orders, r.revenue, r.average_order_value],
                         data: {currency: r.currency, orders: r.orders, revenue: r.revenue, aov: r.average_order_value}})));
  const lat = d.latency, stats = document.querySelector("#latency .stats");
  stats.dataset.count = lat.count; stats.dataset.avg = lat.avg_ms; stats.dataset.max = lat.max_ms;
  stats.textContent = lat.count ? `${lat.count} messages, average ${lat.avg_ms} ms, max ${lat.max_ms} ms` : "no handled messages";
  bars(document.querySelector("#latency .chart"),
       lat.histogram.map(b => ({key: b.lt_ms === null ? "slower" : `< ${b.lt_ms} ms`, value: b.count})));
}

// Where each panel landed, for tests and for anyone checking what fits the window.
function noteLayout() {
  document.body.dataset.viewport = `${innerWidth}x${innerHeight}`;
  document.querySelectorAll("main > section").forEach(s => {
    const box = s.getBoundingClientRect();
    s.dataset.top = Math.round(box.top + scrollY);
    s.dataset.bottom = Math.round(box.bottom + scrollY);
  });
}

function render(d) {
  headline(d);
  openAlerts(d);
  anomalies(d);
  findings(d);
  charts(d);
  document.getElementById("range").textContent =
    `${new Date(d.range.start_ms).toISOString().substring(0, 16).replace("T", " ")} – ` +
    `${new Date(d.range.end_ms).toISOString().substring(0, 16).replace("T", " ")} UTC`;
  noteLayout();
}

async function refresh() {
  const status = document.getElementById("status");
  const q = new URLSearchParams(params);
  if (!q.has("start_ms")) q.set("minutes", document.getElementById("minutes").value);
  try {
    const resp = await fetch("/api/summary?" + q.toString());
    const data = await resp.json();
    if (!resp.ok) throw new Error(data.error || resp.status);
    render(data);
    status.dataset.state = "ok";
    status.textContent = "updated " + new Date().toISOString().substring(11, 19) + " UTC";
  } catch (e) {
    status.dataset.state = "error";
    status.textContent = "error: " + e.message;
  }
}

async function main() {
  let refreshS = 5;
  try { refreshS = (await (await fetch("/api/config")).json()).refresh_s || 5; } catch (e) { /* keep default */ }
  if (params.has("minutes")) document.getElementById("minutes").value = params.get("minutes");
  document.getElementById("minutes").addEventListener("change", refresh);
  await refresh();
  setInterval(refresh, refreshS * 1000);
}
main();
