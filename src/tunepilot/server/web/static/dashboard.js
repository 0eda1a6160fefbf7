// tunepilot dashboard: live stat cards and runs table, and Plotly charts.
// Every string from the server is put in the page as text (textContent) or, for
// Plotly, HTML-escaped first: Plotly reads a little HTML in labels.
"use strict";

(function () {
  const POLL_MS = 2000;
  const IDLE_POLL_MS = 15000;

  function esc(text) {
    return String(text).replace(/[&<>"']/g, (c) => ({
      "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;",
    })[c]);
  }

  function fmtValue(value) {
    if (value === null || value === undefined) return "–";
    if (typeof value === "number") return Number.isInteger(value) ? String(value) : String(Number(value.toPrecision(6)));
    return String(value);
  }

  function fmtSeconds(value) {
    if (value === null || value === undefined) return "–";
    if (value < 60) return value.toFixed(1) + " s";
    if (value < 3600) return (value / 60).toFixed(1) + " min";
    return (value / 3600).toFixed(1) + " h";
  }

  function el(tag, text, className) {
    const node = document.createElement(tag);
    if (text !== undefined && text !== null) node.textContent = text;
    if (className) node.className = className;
    return node;
  }

  function badge(kind, text) {
    return el("span", text, "badge " + kind + "-" + String(text).replace(/[^a-z_]/g, ""));
  }

  async function getJSON(url) {
    const response = await fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } });
    if (response.status === 401) { window.location.reload(); throw new Error("logged out"); }
    if (!response.ok) throw new Error(url + ": HTTP " + response.status);
    return response.json();
  }

  // --- live updates -------------------------------------------------------
  function renderRows(body, rows) {
    const fresh = document.createDocumentFragment();
    for (const row of rows) {
      const tr = el("tr");
      tr.dataset.run = row.id;
      const link = el("a", row.label);
      link.href = row.href;
      const first = el("td"); first.appendChild(link); tr.appendChild(first);
      tr.appendChild(el("td", row.trial));
      const state = el("td"); state.appendChild(badge("state", row.state)); tr.appendChild(state);
      tr.appendChild(el("td", fmtValue(row.value)));
      tr.appendChild(el("td", row.agent || "–"));
      tr.appendChild(el("td", row.started || "–"));
      tr.appendChild(el("td", fmtSeconds(row.duration)));
      tr.appendChild(el("td", row.params, "params"));
      fresh.appendChild(tr);
    }
    body.replaceChildren(fresh);
  }

  // The lifecycle buttons a state offers, as the server renders them (finish and
  // cancel behind a confirmation).
  const DESTRUCTIVE = { finish: "Finish: no more runs are handed out.",
                        cancel: "Cancel: running runs are asked to stop." };

  function actionForm(sweepAction, next, label, dataAction, className) {
    const form = el("form");
    form.method = "post";
    form.action = sweepAction;
    const hidden = el("input");
    hidden.type = "hidden"; hidden.name = "next"; hidden.value = next;
    form.appendChild(hidden);
    // The form token the server rendered into the page (see server/web/_csrf.py).
    const csrf = el("input");
    const meta = document.querySelector("meta[name=csrf-token]");
    csrf.type = "hidden"; csrf.name = "csrf"; csrf.value = meta ? meta.content : "";
    form.appendChild(csrf);
    const button = el("button", label, className);
    button.type = "submit";
    button.dataset.action = dataAction;
    form.appendChild(button);
    return form;
  }

  function renderActions(actions) {
    const holder = document.getElementById("actions");
    const live = document.getElementById("live");
    if (!holder || !live || !live.dataset.actionBase) return;
    const next = window.location.pathname + window.location.search;
    const box = el("div", null, "actions");
    for (const action of actions) {
      const target = live.dataset.actionBase + "/" + action;
      const title = action.charAt(0).toUpperCase() + action.slice(1);
      if (action in DESTRUCTIVE) {
        const details = el("details", null, "confirm");
        details.appendChild(el("summary", title + "…", "button danger"));
        const form = actionForm(target, next, "Yes, " + action + " it", action + "-confirm", "danger");
        form.insertBefore(el("span", DESTRUCTIVE[action]), form.lastChild);
        details.appendChild(form);
        box.appendChild(details);
      } else {
        box.appendChild(actionForm(target, next, title, action));
      }
    }
    holder.replaceChildren(box);
  }

  function applyLive(data, live) {
    for (const node of document.querySelectorAll("[data-stat]")) {
      const key = node.dataset.stat;
      if (key === "best_link") {
        node.hidden = !data.stats.best_href;
        if (data.stats.best_href) { node.href = data.stats.best_href; node.textContent = data.stats.best_label; }
      } else if (key === "best_value") {
        node.textContent = fmtValue(data.stats.best_value);
      } else if (key in data.stats) {
        node.textContent = String(data.stats[key]);
      }
    }
    const holder = document.getElementById("state-badge");
    const current = holder && holder.textContent.trim();
    if (holder && current !== data.state) {
      holder.replaceChildren(badge("state", data.state));
      renderActions(data.actions);
    }
    const reason = document.getElementById("state-reason");
    if (reason) reason.textContent = data.state_reason || "";
    const body = document.getElementById("runs-body");
    if (body) {
      renderRows(body, data.rows);
      const empty = document.getElementById("runs-empty");
      if (empty) empty.hidden = data.rows.length > 0;
    }
    const total = data.stats.finished;
    if (live.lastFinished !== undefined && live.lastFinished !== total) drawCharts();
    live.lastFinished = total;
  }

  function startLive() {
    const live = document.getElementById("live");
    if (!live) return;
    const params = new URLSearchParams({ sort: live.dataset.sort, order: live.dataset.order, page: live.dataset.page });
    const url = live.dataset.src + "?" + params.toString();
    const state = {};
    async function tick() {
      let delay = POLL_MS;
      try {
        const data = await getJSON(url);
        applyLive(data, state);
        live.dataset.updated = String(Date.now());
        // Ended and nothing running: nothing changes often any more.
        const ended = ["finished", "failed", "canceled"].includes(data.state);
        if (ended && data.stats.running === 0) delay = IDLE_POLL_MS;
      } catch (error) {
        live.dataset.error = String(error);
      }
      window.setTimeout(tick, delay);
    }
    window.setTimeout(tick, POLL_MS);
  }

  // --- charts --------------------------------------------------------------
  const CONFIG = { displaylogo: false, responsive: true };
  const LAYOUT = { margin: { l: 60, r: 30, t: 30, b: 50 }, paper_bgcolor: "#fff", plot_bgcolor: "#fff" };

  function note(div, text) {
    const p = div.parentElement.querySelector("[data-chart-note]");
    if (p) p.textContent = text || "";
  }

  function importance(div, data) {
    const entries = Object.entries(data.importances).sort((a, b) => a[1] - b[1]);
    if (!entries.length) return note(div, "No parameters to compare.");
    Plotly.react(div, [{
      type: "bar", orientation: "h", x: entries.map((e) => e[1]), y: entries.map((e) => esc(e[0])),
      marker: { color: "#3b6ea8" },
    }], { ...LAYOUT, margin: { ...LAYOUT.margin, l: 160 }, xaxis: { title: { text: "importance" } },
          height: Math.max(260, 40 * entries.length + 80) }, CONFIG);
    note(div, "Parameter importance (" + data.evaluator + " evaluator, Optuna) over finished runs.");
  }

  function parallel(div, data) {
    const rows = data.rows.slice();
    if (!rows.length) return note(div, "No finished runs with the metric yet.");
    // The best run is drawn last, on top, in its own colour.
    rows.sort((a, b) => (a.run_id === data.best_run_id) - (b.run_id === data.best_run_id));
    const dims = data.params.map((name) => {
      const values = rows.map((r) => r.params[name]);
      const numeric = values.every((v) => typeof v === "number");
      if (numeric) return { label: esc(name), values: values };
      const levels = Array.from(new Set(values.map((v) => String(v)))).sort();
      return { label: esc(name), values: values.map((v) => levels.indexOf(String(v))),
               tickvals: levels.map((_, i) => i), ticktext: levels.map(esc) };
    });
    dims.push({ label: "value", values: rows.map((r) => r.value) });
    Plotly.react(div, [{
      type: "parcoords", dimensions: dims,
      line: { color: rows.map((r) => (r.run_id === data.best_run_id ? 1 : 0)),
              colorscale: [[0, "#9fb3c8"], [1, "#d62728"]], cmin: 0, cmax: 1 },
    }], { ...LAYOUT, margin: { ...LAYOUT.margin, t: 70 }, height: 480 }, CONFIG);
    note(div, rows.length + " finished runs; the best run is red.");
  }

  function history(div, data) {
    const pts = data.points;
    if (!pts.length) return note(div, "No finished runs with the metric yet.");
    Plotly.react(div, [
      { type: "scatter", mode: "markers", name: "value", x: pts.map((p) => p.trial_number), y: pts.map((p) => p.value),
        marker: { color: "#3b6ea8", size: 6 } },
      { type: "scatter", mode: "lines", name: "best so far", line: { shape: "hv", color: "#d62728" },
        x: pts.map((p) => p.trial_number), y: pts.map((p) => p.best_value) },
    ], { ...LAYOUT, height: 420, xaxis: { title: { text: "trial" } }, yaxis: { title: { text: "value (" + data.goal + ")" } } }, CONFIG);
    note(div, pts.length + " finished runs.");
  }

  function metrics(div, data) {
    const names = Object.keys(data.series);
    if (!names.length) return note(div, "No metrics logged.");
    Plotly.react(div, names.map((name) => ({
      type: "scatter", mode: "lines+markers", name: esc(name),
      x: data.series[name].steps, y: data.series[name].values,
    })), { ...LAYOUT, height: 400, xaxis: { title: { text: "step" } } }, CONFIG);
    note(div, data.truncated ? "Only the first rows are shown." : "");
  }

  const DRAW = { importance, parallel, history, metrics };

  // Parameter importance fits a model over every finished run (seconds on large
  // sweeps): while runs keep finishing, it is redrawn at most this often.
  const REDRAW_MS = { importance: 30000 };

  async function drawCharts() {
    if (typeof Plotly === "undefined") return;
    for (const div of document.querySelectorAll("[data-chart]")) {
      const last = Number(div.dataset.drawnAt || 0);
      if (last && Date.now() - last < (REDRAW_MS[div.dataset.chart] || 0)) continue;
      div.dataset.drawnAt = String(Date.now());
      try {
        const data = await getJSON(div.dataset.src);
        if (data.unavailable) { note(div, data.unavailable); continue; }
        DRAW[div.dataset.chart](div, data);
        div.dataset.drawn = "true";
      } catch (error) {
        note(div, "Could not draw this chart: " + error);
      }
    }
  }

  document.addEventListener("DOMContentLoaded", () => {
    drawCharts();
    startLive();
  });
})();
