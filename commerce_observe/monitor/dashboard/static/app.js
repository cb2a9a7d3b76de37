// Commerce dashboard: fetches /api/summary and draws every chart as SVG by hand.
// Every drawn value is also written as data-* attributes and text, so a test (or a
// curious user) can read the numbers straight from the page.
"use strict";
const NS = "http://www.w3.org/2000/svg";
const COLORS = ["#1e88e5", "#43a047", "#e53935", "#fb8c00", "#8e24aa", "#00897b", "#6d4c41"];
const params = new URLSearchParams(location.search);

function svg(tag, attrs, text) {
  const el = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs || {})) el.setAttribute(k, v);
  if (text !== undefined) el.textContent = text;
  return el;
}
function fmtTime(ms) { return new Date(ms).toISOString().substring(11, 16); }
function num(v) { return typeof v === "string" ? parseFloat(v) : v; }

// Horizontal bars: one <g class="bar" data-key data-value> per row.
function bars(container, rows) {
  container.replaceChildren();
  if (!rows.length) { container.textContent = "no data"; return; }
  const width = 420, rowH = 22, max = Math.max(...rows.map(r => r.value)) || 1;
  const root = svg("svg", {viewBox: `0 0 ${width} ${rows.length * rowH + 4}`});
  rows.forEach((r, i) => {
    const g = svg("g", {class: "bar", "data-key": r.key, "data-value": r.value});
    const w = Math.max(1, (width - 190) * r.value / max);
    g.append(svg("text", {x: 0, y: i * rowH + 15}, r.key));
    g.append(svg("rect", {x: 140, y: i * rowH + 3, width: w, height: rowH - 6, fill: COLORS[i % COLORS.length]}));
    g.append(svg("text", {x: 145 + w, y: i * rowH + 15, class: "value"}, String(r.value)));
    root.append(g);
  });
  container.append(root);
}

// Lines over time: series = {name: [[x_ms, value], ...]}; points carry data-series/x/value.
function lines(container, series, xs) {
  container.replaceChildren();
  const names = Object.keys(series);
  const width = 900, height = 220, left = 50, bottom = 24;
  const root = svg("svg", {viewBox: `0 0 ${width} ${height + 20}`});
  const all = names.flatMap(n => series[n].map(p => p[1]));
  const max = Math.max(1, ...all);
  const x0 = xs.length ? xs[0] : 0, x1 = xs.length > 1 ? xs[xs.length - 1] : x0 + 1;
  const px = x => left + (width - left - 10) * (x - x0) / Math.max(1, x1 - x0);
  const py = v => height - bottom - (height - bottom - 10) * v / max;
  root.append(svg("text", {x: 0, y: 12}, max.toFixed(max < 10 ? 2 : 0)), svg("text", {x: 0, y: height - bottom}, "0"));
  root.append(svg("line", {x1: left, y1: height - bottom, x2: width - 10, y2: height - bottom, stroke: "#90a4ae"}));
  const ticks = Math.min(8, xs.length);
  for (let i = 0; i < ticks; i++) {
    const x = xs[Math.floor(i * (xs.length - 1) / Math.max(1, ticks - 1))];
    root.append(svg("text", {x: Math.min(width - 40, Math.max(left, px(x) - 14)), y: height - 6}, fmtTime(x)));
  }
  const legend = document.createElement("div");
  legend.className = "legend";
  names.forEach((name, i) => {
    const color = COLORS[i % COLORS.length];
    const pts = series[name];
    const total = pts.reduce((s, p) => s + p[1], 0);
    const g = svg("g", {class: "series", "data-series": name, "data-total": +total.toFixed(3)});
    g.append(svg("polyline", {fill: "none", stroke: color, "stroke-width": 2,
                              points: pts.map(p => `${px(p[0])},${py(p[1])}`).join(" ")}));
    for (const [x, v] of pts) {
      g.append(svg("circle", {cx: px(x), cy: py(v), r: 2.5, fill: color, "data-x": x, "data-value": v}));
    }
    root.append(g);
    const item = document.createElement("span");
    item.style.color = color;
    item.textContent = `${name}: ${+total.toFixed(3)}`;
    legend.append(item);
  });
  container.append(root, legend);
}

function table(el, header, rows, cls) {
  el.replaceChildren();
  const head = el.insertRow();
  header.forEach(h => { const th = document.createElement("th"); th.textContent = h; head.append(th); });
  rows.forEach(r => {
    const tr = el.insertRow();
    if (cls) tr.className = cls(r);
    r.cells.forEach(c => { const td = tr.insertCell(); if (c instanceof Node) td.append(c); else td.textContent = c; });
    for (const [k, v] of Object.entries(r.data || {})) tr.dataset[k] = v;
  });
}

function render(d) {
  const pm = d.per_minute;
  const xs = pm.map(r => r.minute_ms);
  lines(document.querySelector("#per-minute .chart"), {
    orders: pm.map(r => [r.minute_ms, r.orders]),
    payments: pm.map(r => [r.minute_ms, r.payments]),
    "payment failures": pm.map(r => [r.minute_ms, r.payment_failures]),
  }, xs);
  const trend = {}, buckets = [];
  for (let t = d.range.start_ms; t < d.range.end_ms; t += d.bucket_minutes * 60000) buckets.push(t);
  for (const r of d.sales_trend) (trend[r.currency] = trend[r.currency] || {})[r.bucket_ms] = num(r.revenue);
  const trendSeries = {};
  for (const [c, byT] of Object.entries(trend)) trendSeries[c] = buckets.map(t => [t, byT[t] || 0]);
  lines(document.querySelector("#sales-trend .chart"), trendSeries, buckets);
  table(document.querySelector("#revenue table"), ["Currency", "Orders", "Revenue", "Avg order value"],
    d.revenue.map(r => ({cells: [r.currency, r.orders, r.revenue, r.average_order_value],
                         data: {currency: r.currency, orders: r.orders, revenue: r.revenue, aov: r.average_order_value}})));
  bars(document.querySelector("#top-products .chart"), d.top_products.map(p => ({key: p.product_id, value: p.quantity})));
  bars(document.querySelector("#failure-reasons .chart"), d.failures_by_reason.map(c => ({key: c.key, value: c.count})));
  bars(document.querySelector("#failure-methods .chart"), d.failures_by_method.map(c => ({key: c.key, value: c.count})));
  const lat = d.latency;
  const stats = document.querySelector("#latency .stats");
  stats.dataset.count = lat.count; stats.dataset.avg = lat.avg_ms; stats.dataset.max = lat.max_ms;
  stats.textContent = lat.count ? `${lat.count} messages, average ${lat.avg_ms} ms, max ${lat.max_ms} ms` : "no handled messages";
  bars(document.querySelector("#latency .chart"),
       lat.histogram.map(b => ({key: b.lt_ms === null ? "slower" : `< ${b.lt_ms} ms`, value: b.count})));
  const f = document.querySelector("#findings .stats");
  const counts = Object.fromEntries(d.findings.map(c => [c.key, c.count]));
  f.dataset.lost = counts.LOST || 0; f.dataset.duplicate = counts.DUPLICATE || 0;
  f.textContent = `LOST ${counts.LOST || 0} · DUPLICATE ${counts.DUPLICATE || 0}` +
    Object.entries(counts).filter(([k]) => k !== "LOST" && k !== "DUPLICATE").map(([k, v]) => ` · ${k} ${v}`).join("");
  table(document.querySelector("#alerts table"), ["Time", "Kind", "What", "Order / payment", "Trace"],
    d.alerts.map(a => {
      const links = document.createElement("span");
      for (const [name, href] of Object.entries(a.links || {})) {
        const link = document.createElement("a");
        link.href = href; link.textContent = name; link.target = "_blank"; link.className = "trace-link";
        links.append(link, " ");
      }
      if (!links.childNodes.length && a.trace_id) links.textContent = a.trace_id;
      return {cells: [new Date(a.at_ms).toISOString().replace("T", " ").substring(0, 19), a.kind, a.detail || "",
                      a.order_id || a.payment_id || "", links],
              data: {kind: a.kind, eventId: a.event_id || "", traceId: a.trace_id || ""}};
    }), r => `kind-${r.cells[1]}`);
  document.getElementById("range").textContent =
    `${new Date(d.range.start_ms).toISOString().substring(0, 16)} – ${new Date(d.range.end_ms).toISOString().substring(11, 16)} UTC`;
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
    status.textContent = "updated " + new Date().toISOString().substring(11, 19);
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
