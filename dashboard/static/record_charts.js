// The patient's charts (templates/_vital_charts.html, dashboard/record_charts.py). Every element with
// data-vital-charts is initialised, so any page including the partial gets them (the record, the
// on-call physician's phone view). The server sends data only (GET /api/patients/{id}/charts/{name});
// this script draws it with plotly.js, served by Hemma from the plotly package (dashboard/vendor_assets.py).
// Times are shown on the site's clock (data-zone) with Swedish words. Zooming (drag) fetches the
// window again at a finer bucket width; a double click goes back to the range. While the page is
// visible and not zoomed, every chart is fetched again every 30 s.
"use strict";

(function () {
  const POLL_MS = 30 * 1000;
  const COLOURS = { band: "rgba(28, 90, 140, 0.18)", mean: "#123a5e", high: "#c8102e", medium: "#b58100",
    personal: "#5b3fa6", news2: "#123a5e", weight: "#8a3a00" };
  const MARKER_SYMBOLS = { opened: "triangle-down", escalated: "triangle-down", acknowledged: "circle-open",
    resolved: "square-open", manual: "diamond", answer: "star" };
  const MARKER_LABELS = { opened: "Larm", escalated: "Larm eskalerat", acknowledged: "Kvitterat",
    resolved: "Avslutat", manual: "Manuell observation", answer: "Frågeformulär" };
  const SV_LOCALE = {
    moduleType: "locale", name: "sv",
    dictionary: { "Autoscale": "Autoskala", "Reset axes": "Återställ axlar", "Zoom": "Zooma" },
    format: {
      days: ["söndag", "måndag", "tisdag", "onsdag", "torsdag", "fredag", "lördag"],
      shortDays: ["sön", "mån", "tis", "ons", "tor", "fre", "lör"],
      months: ["januari", "februari", "mars", "april", "maj", "juni", "juli", "augusti", "september",
        "oktober", "november", "december"],
      shortMonths: ["jan", "feb", "mar", "apr", "maj", "jun", "jul", "aug", "sep", "okt", "nov", "dec"],
      date: "%Y-%m-%d", decimal: ",", thousands: " ",
    },
  };

  // --- times: UTC ISO from the server <-> the site's wall clock, which plotly draws as given -------

  function wallClock(zone) {
    const parts = new Intl.DateTimeFormat("sv-SE", { timeZone: zone, hourCycle: "h23", year: "numeric",
      month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit", second: "2-digit" });
    const toWall = (ms) => {
      const p = Object.fromEntries(parts.formatToParts(new Date(ms)).map((x) => [x.type, x.value]));
      return `${p.year}-${p.month}-${p.day} ${p.hour}:${p.minute}:${p.second}`;
    };
    const asUtcMs = (wall) => Date.parse(wall.replace(" ", "T").slice(0, 19) + "Z");
    // A wall-clock time back to UTC: subtract the zone's offset at (about) that time.
    const fromWall = (wall) => {
      const guess = asUtcMs(wall);
      const offset = asUtcMs(toWall(guess)) - guess;
      const again = asUtcMs(toWall(guess - offset)) - (guess - offset);
      return new Date(guess - again).toISOString();
    };
    return { wall: (iso) => toWall(Date.parse(iso)), fromWall };
  }

  function decimal(value, decimals) {
    return value === null || value === undefined ? "–" : value.toFixed(decimals).replace(".", ",").replace("-", "−");
  }

  // --- one chart ------------------------------------------------------------------------------

  function yRange(data) {
    const values = [];
    if (data.series) values.push(...data.series.min, ...data.series.max);
    data.limits.forEach((l) => values.push(l.value));
    data.markers.forEach((m) => { if (m.value !== null && m.value !== undefined && m.kind !== "answer") values.push(m.value); });
    if (data.news2.length) return [0, Math.max(10, ...data.news2.map((p) => p.partial_total)) + 1];
    if (!values.length) return [0, 1];
    const lo = Math.min(...values), hi = Math.max(...values);
    const pad = Math.max((hi - lo) * 0.1, 1);
    return [lo - pad, hi + pad];
  }

  function figure(data, clock) {
    const x = (list) => list.map(clock.wall);
    const traces = [], shapes = [];
    const [ylo, yhi] = yRange(data);
    if (data.series) {
      const s = data.series, t = x(s.t);
      traces.push({ x: t, y: s.min, mode: "lines", line: { width: 0 }, hoverinfo: "skip", showlegend: false, name: "min" });
      traces.push({ x: t, y: s.max, mode: "lines", line: { width: 0 }, fill: "tonexty", fillcolor: COLOURS.band,
        name: "Min–max", hoverinfo: "skip" });
      traces.push({ x: t, y: s.mean, mode: s.t.length > 60 ? "lines" : "lines+markers", name: "Medel",
        line: { color: COLOURS.mean, width: 2 }, marker: { size: 5 },
        customdata: s.t.map((_, i) => [decimal(s.min[i], data.decimals), decimal(s.max[i], data.decimals), s.n[i]]),
        hovertemplate: `%{x}<br>medel %{y:.${data.decimals}f} ${data.unit}<br>min %{customdata[0]}, max %{customdata[1]}<br>%{customdata[2]} mätningar<extra></extra>` });
    }
    data.limits.forEach((l) => {
      const colour = l.kind === "personal" ? COLOURS.personal : COLOURS[l.priority] || COLOURS.medium;
      const far = l.direction === "below" ? ylo : yhi;
      shapes.push({ type: "rect", xref: "paper", x0: 0, x1: 1, y0: l.value, y1: far, line: { width: 0 },
        fillcolor: l.priority === "high" ? "rgba(200, 16, 46, 0.07)" : "rgba(255, 210, 0, 0.10)", layer: "below" });
      shapes.push({ type: "line", xref: "paper", x0: 0, x1: 1, y0: l.value, y1: l.value,
        line: { color: colour, width: 1, dash: l.kind === "ward" ? "dot" : "dash" } });
    });
    if (data.news2.length) {
      const complete = data.news2.filter((p) => p.complete), partial = data.news2.filter((p) => !p.complete);
      traces.push({ x: x(data.news2.map((p) => p.t)), y: data.news2.map((p) => p.partial_total), mode: "lines",
        line: { color: "#9aa7b4", width: 1 }, hoverinfo: "skip", showlegend: false, name: "NEWS2" });
      traces.push({ x: x(complete.map((p) => p.t)), y: complete.map((p) => p.total), mode: "markers", name: "NEWS2",
        marker: { color: COLOURS.news2, size: 6 }, hovertemplate: "%{x}<br>NEWS2 %{y}<extra></extra>" });
      traces.push({ x: x(partial.map((p) => p.t)), y: partial.map((p) => p.partial_total), mode: "markers",
        name: "NEWS2 ofullständig (≥)", marker: { color: COLOURS.news2, size: 6, symbol: "circle-open" },
        hovertemplate: "%{x}<br>NEWS2 ≥ %{y} (ofullständig)<extra></extra>" });
      [5, 7].forEach((v) => shapes.push({ type: "line", xref: "paper", x0: 0, x1: 1, y0: v, y1: v,
        line: { color: v === 7 ? COLOURS.high : COLOURS.medium, width: 1, dash: "dot" } }));
    }
    const byKind = {};
    data.markers.forEach((m) => (byKind[m.kind] = byKind[m.kind] || []).push(m));
    Object.entries(byKind).forEach(([kind, list]) => {
      const onAxis = (m) => (m.value !== null && m.value !== undefined && kind !== "answer" ? m.value : yhi - (yhi - ylo) * 0.05);
      traces.push({ x: x(list.map((m) => m.at)), y: list.map(onAxis), mode: "markers", name: MARKER_LABELS[kind] || kind,
        text: list.map((m) => m.text), hovertemplate: "%{x}<br>%{text}<extra></extra>",
        marker: { symbol: MARKER_SYMBOLS[kind] || "circle", size: 11,
          color: list.map((m) => (m.priority === "high" ? COLOURS.high : m.priority === "medium" ? COLOURS.medium : "#5b6876")) } });
    });
    const layout = {
      margin: { l: 48, r: data.weight_rule ? 56 : 16, t: 8, b: 36 }, showlegend: true,
      legend: { orientation: "h", y: -0.25, font: { size: 11 } }, hovermode: "x", dragmode: "zoom",
      xaxis: { type: "date", range: [clock.wall(data.start), clock.wall(data.end)], fixedrange: false,
        hoverformat: "%-d %b %H:%M",
        tickformatstops: [
          { dtickrange: [null, 86400000], value: "%H:%M\n%-d %b" },
          { dtickrange: [86400000, null], value: "%-d %b" },
        ] },
      yaxis: { range: [ylo, yhi], fixedrange: true, title: { text: data.unit, font: { size: 11 } } },
      shapes, separators: ", ", font: { family: "system-ui, sans-serif", size: 12, color: "#17212b" },
      paper_bgcolor: "rgba(0,0,0,0)", plot_bgcolor: "#ffffff",
    };
    if (data.weight_rule) {
      const w = data.weight_rule;
      traces.push({ x: x(w.t), y: w.gain_kg, type: "bar", yaxis: "y2", name: "Ökning på 3 dygn",
        marker: { color: w.gain_kg.map((g) => (g > w.limit_kg ? COLOURS.high : "rgba(138, 58, 0, 0.35)")) },
        hovertemplate: "%{x}<br>+%{y:.1f} kg på 3 dygn<extra></extra>" });
      layout.yaxis2 = { overlaying: "y", side: "right", fixedrange: true, dtick: 1, showgrid: false, title: { text: "kg på 3 dygn", font: { size: 11 } },
        range: [Math.min(0, ...w.gain_kg) - 0.5, Math.max(w.limit_kg, ...w.gain_kg) + 1] };
      shapes.push({ type: "line", xref: "paper", yref: "y2", x0: 0, x1: 1, y0: w.limit_kg, y1: w.limit_kg,
        line: { color: COLOURS.high, width: 1, dash: "dash" } });
    }
    return { traces, layout };
  }

  function summary(data) {
    if (data.news2.length) {
      const last = data.news2[data.news2.length - 1];
      return last.complete ? `senast NEWS2 ${last.total}` : `senast NEWS2 ≥ ${last.partial_total} (ofullständig)`;
    }
    const s = data.series;
    if (!s || !s.t.length) return "inga mätningar i intervallet";
    const n = s.n.reduce((a, b) => a + b, 0);
    let text = `${n} mätningar, senast ${decimal(s.last[s.last.length - 1], data.decimals)} ${data.unit}`;
    if (data.weight_rule && data.weight_rule.gain_kg.length) {
      const g = data.weight_rule.gain_kg[data.weight_rule.gain_kg.length - 1];
      text += `, ${g > data.weight_rule.limit_kg ? "över" : "inom"} 3-dygnsgränsen (+${decimal(g, 1)} kg)`;
    }
    return text;
  }

  function table(data, clock) {
    const table = document.createElement("table");
    const head = table.createTHead().insertRow();
    const body = table.createTBody();
    const row = (cells) => { const r = body.insertRow(); cells.forEach((c) => (r.insertCell().textContent = c)); };
    if (data.news2.length) {
      ["Tid", "NEWS2", "Fullständig"].forEach((h) => (head.appendChild(document.createElement("th")).textContent = h));
      data.news2.forEach((p) => row([clock.wall(p.t).slice(0, 16), p.complete ? String(p.total) : `≥ ${p.partial_total}`, p.complete ? "ja" : "nej"]));
    } else if (data.series) {
      ["Från", "Min", "Medel", "Max", "Antal"].forEach((h) => (head.appendChild(document.createElement("th")).textContent = h));
      const s = data.series;
      s.t.forEach((t, i) => row([clock.wall(t).slice(0, 16), decimal(s.min[i], data.decimals),
        decimal(s.mean[i], data.decimals), decimal(s.max[i], data.decimals), String(s.n[i])]));
    }
    data.markers.forEach((m) => row([clock.wall(m.at).slice(0, 16), m.text, "", "", ""].slice(0, head.cells.length)));
    const caption = table.createCaption();
    caption.textContent = `${data.label} (${data.unit})`;
    return table;
  }

  // --- a section of charts --------------------------------------------------------------------

  function initSection(section) {
    const patientId = section.dataset.patientId;
    const clock = wallClock(section.dataset.zone || "Europe/Stockholm");
    const state = { range: section.dataset.range || "30d", zoom: null, data: {} };
    const registry = (window.hemmaCharts = window.hemmaCharts || {});
    registry[patientId] = state;
    const figures = Array.from(section.querySelectorAll("[data-chart]"));
    const error = section.querySelector(".chart-error");

    async function load(fig) {
      const name = fig.dataset.chart;
      const params = new URLSearchParams({ range: state.range });
      if (state.zoom) { params.set("from", state.zoom[0]); params.set("to", state.zoom[1]); }
      const response = await fetch(`/api/patients/${encodeURIComponent(patientId)}/charts/${encodeURIComponent(name)}?${params}`,
        { credentials: "same-origin", headers: { Accept: "application/json" } });
      if (!response.ok) throw new Error(String(response.status));
      const data = await response.json();
      state.data[name] = data;
      draw(fig, data);
    }

    function draw(fig, data) {
      const plot = fig.querySelector(".chart-plot");
      const { traces, layout } = figure(data, clock);
      if (state.zoom) layout.xaxis.range = state.zoom.map((iso) => clock.wall(iso));
      window.Plotly.react(plot, traces, layout, { displayModeBar: false, responsive: true, locale: "sv", doubleClick: "reset" });
      fig.dataset.points = String(data.series ? data.series.t.length : data.news2.length);
      fig.dataset.bucket = String(data.series ? data.series.bucket_s : "");
      fig.dataset.limits = String(data.limits.length);
      fig.dataset.markers = String(data.markers.length);
      fig.querySelector(".chart-summary").textContent = summary(data);
      const holder = fig.querySelector(".chart-table-body");
      holder.replaceChildren(table(data, clock));
      if (!plot.dataset.bound) {
        plot.dataset.bound = "1";
        plot.on("plotly_relayout", (change) => {
          if (change["xaxis.autorange"] || change["xaxis.range"] === undefined && change["xaxis.range[0]"] === undefined) {
            if (change["xaxis.autorange"] && state.zoom) { state.zoom = null; refreshAll(); }
            return;
          }
          const lo = change["xaxis.range[0]"] || change["xaxis.range"][0];
          const hi = change["xaxis.range[1]"] || change["xaxis.range"][1];
          state.zoom = [clock.fromWall(String(lo)), clock.fromWall(String(hi))];
          refreshAll();
        });
      }
    }

    async function refreshAll() {
      section.dataset.loading = "1";
      try {
        await Promise.all(figures.map(load));
        error.hidden = true;
      } catch (e) {
        error.textContent = "Diagrammen kunde inte hämtas. Försök igen om en stund.";
        error.hidden = false;
      } finally {
        delete section.dataset.loading;
        section.dataset.loads = String(Number(section.dataset.loads || "0") + 1);
      }
    }

    section.querySelectorAll(".chart-range").forEach((button) => button.addEventListener("click", () => {
      state.range = button.dataset.range;
      state.zoom = null;
      section.querySelectorAll(".chart-range").forEach((b) => b.setAttribute("aria-pressed", String(b === button)));
      refreshAll();
    }));
    setInterval(() => { if (document.visibilityState === "visible" && !state.zoom) refreshAll(); }, POLL_MS);
    document.addEventListener("visibilitychange", () => { if (document.visibilityState === "visible" && !state.zoom) refreshAll(); });
    refreshAll();
  }

  function start() {
    if (!window.Plotly) return;
    window.Plotly.register(SV_LOCALE);
    document.querySelectorAll("[data-vital-charts]").forEach(initSection);
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
