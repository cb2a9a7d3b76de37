// Commerce dashboard: the drawing helpers (SVG by hand, no library: the page works offline).
// Every drawn value is also written as data-* attributes, so a test (or a curious user)
// can read the numbers straight from the page.
"use strict";
const NS = "http://www.w3.org/2000/svg";
const COLORS = ["#1e88e5", "#43a047", "#e53935", "#fb8c00", "#8e24aa", "#00897b", "#6d4c41"];

function svg(tag, attrs, text) {
  const el = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs || {})) el.setAttribute(k, v);
  if (text !== undefined) el.textContent = text;
  return el;
}
function num(v) { return typeof v === "string" ? parseFloat(v) : v; }
// Times are UTC, as the range line says; a date is added when the view spans more than a day.
function fmtTime(ms, withDate) {
  const iso = new Date(ms).toISOString();
  return withDate ? iso.substring(5, 10) + " " + iso.substring(11, 16) : iso.substring(11, 16);
}
function fmtNum(v, digits) {
  return Number(v).toLocaleString("en-US", {maximumFractionDigits: digits === undefined ? 2 : digits});
}

// Horizontal bars: one <g class="bar" data-key data-value> per row.
function bars(container, rows, color) {
  container.replaceChildren();
  if (!rows.length) { container.textContent = "none in this range"; return; }
  const width = 420, rowH = 20, max = Math.max(...rows.map(r => r.value)) || 1;
  const root = svg("svg", {viewBox: `0 0 ${width} ${rows.length * rowH + 4}`});
  rows.forEach((r, i) => {
    const g = svg("g", {class: "bar", "data-key": r.key, "data-value": r.value});
    const w = Math.max(1, (width - 200) * r.value / max);
    g.append(svg("text", {x: 0, y: i * rowH + 14}, r.key));
    g.append(svg("rect", {x: 150, y: i * rowH + 3, width: w, height: rowH - 6, fill: color || COLORS[i % COLORS.length]}));
    g.append(svg("text", {x: 155 + w, y: i * rowH + 14, class: "value"}, String(r.value)));
    root.append(g);
  });
  container.append(root);
}

// Lines over a time grid: series = [{name, points: [[x_ms, value], ...], color, width, dash, marker, opacity}].
// Series are drawn in the order given (later ones on top); each <g class="series"> carries
// data-series and data-total, each point data-x and data-value.
function lines(container, series, xs, opts) {
  container.replaceChildren();
  const o = Object.assign({width: 900, height: 220}, opts || {});
  const width = o.width, height = o.height, left = 50, bottom = 24;
  const root = svg("svg", {viewBox: `0 0 ${width} ${height + 4}`});
  const max = Math.max(1, ...series.flatMap(s => s.points.map(p => p[1])));
  const x0 = xs.length ? xs[0] : 0, x1 = xs.length > 1 ? xs[xs.length - 1] : x0 + 1;
  const withDate = x1 - x0 > 86400000;
  const px = x => left + (width - left - 10) * (x - x0) / Math.max(1, x1 - x0);
  const py = v => height - bottom - (height - bottom - 10) * v / max;
  root.append(svg("text", {x: 0, y: 12}, fmtNum(max, max < 10 ? 2 : 0)), svg("text", {x: 0, y: height - bottom}, "0"));
  root.append(svg("line", {x1: left, y1: height - bottom, x2: width - 10, y2: height - bottom, stroke: "#90a4ae"}));
  const ticks = Math.min(o.ticks || (withDate ? 5 : 7), xs.length);
  for (let i = 0; i < ticks; i++) {
    const x = xs[Math.floor(i * (xs.length - 1) / Math.max(1, ticks - 1))];
    root.append(svg("text", {x: Math.min(width - (withDate ? 70 : 40), Math.max(left, px(x) - 14)), y: height - 6},
                    fmtTime(x, withDate)));
  }
  const legend = document.createElement("div");
  legend.className = "legend";
  series.forEach((s, i) => {
    const color = s.color || COLORS[i % COLORS.length];
    const total = s.points.reduce((acc, p) => acc + p[1], 0);
    const g = svg("g", {class: "series", "data-series": s.name, "data-total": +total.toFixed(3),
                        "data-width": s.width || 2, "data-dash": s.dash || ""});
    const line = svg("polyline", {fill: "none", stroke: color, "stroke-width": s.width || 2,
                                  points: s.points.map(p => `${px(p[0])},${py(p[1])}`).join(" ")});
    if (s.dash) line.setAttribute("stroke-dasharray", s.dash);
    if (s.opacity) line.setAttribute("stroke-opacity", s.opacity);
    g.append(line);
    for (const [x, v] of s.points) {
      const attrs = {fill: color, "data-x": x, "data-value": v};
      if (s.marker === "square") {
        g.append(svg("rect", Object.assign({x: px(x) - 2.5, y: py(v) - 2.5, width: 5, height: 5}, attrs)));
      } else {
        g.append(svg("circle", Object.assign({cx: px(x), cy: py(v), r: s.points.length > 120 ? 1 : 2.5}, attrs)));
      }
    }
    root.append(g);
    const item = document.createElement("span");
    item.style.color = color;
    item.textContent = `${s.dash ? "- - " : "— "}${s.name}: ${fmtNum(total, 3)}`;
    legend.append(item);
  });
  container.append(root, legend);
}

// Actual against the expected band, on one small axis: grey band, expected tick, actual dot.
function band(row) {
  const values = [row.actual, row.expected, row.lower, row.upper].filter(v => v !== null && v !== undefined);
  const lo = Math.min(0, ...values), hi = Math.max(...values) * 1.1 || 1;
  const w = 150, x = v => 4 + (w - 8) * (v - lo) / Math.max(1e-9, hi - lo);
  const root = svg("svg", {viewBox: `0 0 ${w} 16`, class: "band"});
  root.append(svg("line", {x1: 4, y1: 8, x2: w - 4, y2: 8, stroke: "#cfd8dc"}));
  if (row.lower !== null && row.upper !== null) {
    root.append(svg("rect", {x: x(row.lower), y: 3, width: Math.max(2, x(row.upper) - x(row.lower)), height: 10,
                             fill: "#b0bec5", class: "expected-band"}));
  }
  if (row.expected !== null) root.append(svg("rect", {x: x(row.expected) - 1, y: 1, width: 2, height: 14, fill: "#455a64"}));
  root.append(svg("circle", {cx: x(row.actual), cy: 8, r: 4, class: `actual sev-${row.severity}`}));
  return root;
}

function table(el, header, rows, cls) {
  el.replaceChildren();
  el.hidden = !rows.length;  // an empty panel says so in words instead
  const head = el.insertRow();
  header.forEach(h => { const th = document.createElement("th"); th.textContent = h; head.append(th); });
  rows.forEach(r => {
    const tr = el.insertRow();
    if (cls) tr.className = cls(r);
    r.cells.forEach(c => { const td = tr.insertCell(); if (c instanceof Node) td.append(c); else td.textContent = c; });
    for (const [k, v] of Object.entries(r.data || {})) tr.dataset[k] = v;
  });
}

function linksOf(pairs) {
  const span = document.createElement("span");
  for (const [name, href] of pairs) {
    const link = document.createElement("a");
    link.href = href; link.textContent = name; link.target = "_blank"; link.className = "trace-link";
    span.append(link, " ");
  }
  return span;
}
