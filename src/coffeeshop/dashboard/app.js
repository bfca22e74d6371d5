// Coffeeshop Analytics: the live dashboard.
//
// Every POLL_MS the page asks the API for the pipeline state and the four tables. The tables
// are sent with If-None-Match: until the pipeline commits, the API answers 304 from its cache
// (no body, no database), so polling twice a second is cheap and a commit shows within a
// second. All requests are relative to the page, so it also works behind a path prefix.
"use strict";

(() => {
  const POLL_MS = 500;
  const HIDDEN_POLL_MS = 5000; // a background tab polls slowly
  const TICK_MS = 250; // how often "updated N s ago" is rewritten
  const MONTHS_SHOWN = 3;
  const TOP_PRODUCTS = 10;
  const TOKEN_KEY = "coffeeshop.token";

  const COLORS = {
    espresso: "#3b2417",
    roast: "#6f4428",
    caramel: "#c98b4f",
    latte: "#e0c3a0",
    muted: "#7a6a5f",
    grid: "#efe6dc",
    foam: "#f6efe7",
  };
  const MONTH_COLORS = [COLORS.latte, COLORS.caramel, COLORS.espresso]; // oldest to newest

  const ENDPOINTS = {
    summary: "receipts_summary",
    monthly: "store_monthly",
    products: `item_performance?limit=${TOP_PRODUCTS}`,
    peaks: "store_peak_hours",
    hours: "store_hours",
  };

  const $ = (id) => document.getElementById(id);
  const money = new Intl.NumberFormat(undefined, {
    minimumFractionDigits: 2,
    maximumFractionDigits: 2,
  });
  const integer = new Intl.NumberFormat(undefined, { maximumFractionDigits: 0 });
  const compact = new Intl.NumberFormat(undefined, { notation: "compact", maximumFractionDigits: 1 });
  const monthName = new Intl.DateTimeFormat(undefined, {
    month: "short",
    year: "numeric",
    timeZone: "UTC",
  });

  class Unauthorized extends Error {}

  const state = {
    token: null,
    etags: {}, // endpoint -> ETag of the body we hold
    bodies: {}, // endpoint -> parsed body
    dirty: {}, // endpoint -> body not drawn yet
    pipeline: null,
    pipelineAt: 0, // performance.now() when `pipeline` arrived
    failing: false,
    locked: false,
    timer: 0,
  };

  // -- token -----------------------------------------------------------------------------------

  function loadToken() {
    const match = /(?:^|[#&])token=([^&]*)/.exec(window.location.hash);
    if (match) {
      sessionStorage.setItem(TOKEN_KEY, decodeURIComponent(match[1]));
      // Keep the secret out of the address bar, the history and shared links.
      history.replaceState(null, "", window.location.pathname + window.location.search);
    }
    state.token = sessionStorage.getItem(TOKEN_KEY);
  }

  function askForToken() {
    state.locked = true;
    setStatus("locked", "token needed");
    const dialog = $("token-dialog");
    $("token-error").hidden = !state.token;
    if (!dialog.open) dialog.showModal();
  }

  function onTokenSubmit() {
    const value = $("token-input").value.trim();
    if (!value) return;
    sessionStorage.setItem(TOKEN_KEY, value);
    state.token = value;
    state.locked = false;
    state.etags = {};
    schedule(0);
  }

  // -- fetching --------------------------------------------------------------------------------

  async function fetchJSON(path, etag) {
    const headers = { Accept: "application/json" };
    if (etag) headers["If-None-Match"] = etag;
    if (state.token) headers.Authorization = `Bearer ${state.token}`;
    const response = await fetch(path, { headers, cache: "no-store" });
    if (response.status === 304) return { changed: false };
    if (response.status === 401) throw new Unauthorized();
    if (!response.ok) throw new Error(`${path}: HTTP ${response.status}`);
    return { changed: true, etag: response.headers.get("ETag"), body: await response.json() };
  }

  async function fetchTable(name) {
    const result = await fetchJSON(ENDPOINTS[name], state.etags[name]);
    if (!result.changed) return;
    state.etags[name] = result.etag;
    state.bodies[name] = result.body;
    state.dirty[name] = true;
  }

  async function poll() {
    const names = Object.keys(ENDPOINTS);
    const [pipeline, ...tables] = await Promise.allSettled([
      fetchJSON("pipeline"),
      ...names.map(fetchTable),
    ]);
    const failed = [pipeline, ...tables].filter((r) => r.status === "rejected");
    if (failed.some((r) => r.reason instanceof Unauthorized)) {
      askForToken();
      return; // polling resumes once a token is entered
    }
    state.failing = failed.length > 0;
    try {
      if (pipeline.status === "fulfilled") {
        state.pipeline = pipeline.value.body;
        state.pipelineAt = performance.now();
        renderPipeline();
      }
      const due = new Set(); // two endpoints feed the heat map: draw it once
      for (const name of names) {
        if (!state.dirty[name]) continue;
        state.dirty[name] = false;
        due.add(RENDER[name]);
      }
      for (const render of due) render();
      renderFreshness();
    } finally {
      schedule(document.hidden ? HIDDEN_POLL_MS : POLL_MS);
    }
  }

  function schedule(delay) {
    clearTimeout(state.timer);
    if (!state.locked) state.timer = setTimeout(poll, delay);
  }

  // -- rendering -------------------------------------------------------------------------------

  function setText(element, text) {
    if (element.textContent === text) return;
    element.textContent = text;
    if (element.classList.contains("value")) {
      element.classList.add("bump");
      setTimeout(() => element.classList.remove("bump"), 350);
    }
  }

  function setStatus(kind, text) {
    const status = $("status");
    status.dataset.state = kind;
    setText($("freshness"), text);
  }

  function ago(seconds) {
    if (seconds < 1.5) return "updated just now";
    if (seconds < 90) return `updated ${Math.round(seconds)} s ago`;
    if (seconds < 5400) return `updated ${Math.round(seconds / 60)} min ago`;
    if (seconds < 172800) return `updated ${Math.round(seconds / 3600)} h ago`;
    return `updated ${Math.round(seconds / 86400)} days ago`;
  }

  function renderFreshness() {
    if (state.locked) return;
    const pipeline = state.pipeline;
    const since = pipeline ? pipeline.totals.seconds_since_commit : null;
    if (!pipeline) {
      setStatus(state.failing ? "offline" : "connecting", state.failing ? "offline, retrying…" : "connecting…");
      return;
    }
    if (since === null) {
      setStatus(state.failing ? "offline" : "stale", "no batch committed yet");
      return;
    }
    const age = since + (performance.now() - state.pipelineAt) / 1000;
    if (state.failing) setStatus("offline", `offline, retrying · ${ago(age)}`);
    else setStatus(age < 30 ? "live" : "stale", ago(age));
  }

  function renderPipeline() {
    const { totals, data_version: version } = state.pipeline;
    setText($("kpi-quarantined"), integer.format(totals.quarantined));
    setText($("kpi-applied"), integer.format(totals.applied));
    setText($("kpi-batches"), `in ${integer.format(totals.batches)} batches`);
    setText($("version"), `data version ${integer.format(version)}`);
  }

  function renderSummary() {
    const rows = state.bodies.summary;
    const today = rows.length ? rows[rows.length - 1] : null; // oldest first: the last is today
    if (!today) return;
    setText($("kpi-spend"), money.format(today.spend_per_rcpt));
    setText($("kpi-items"), money.format(today.items_per_rcpt));
    setText($("kpi-this-week"), money.format(today.this_week_sales));
    setText($("kpi-last-week"), money.format(today.last_week_sales));
    const change = $("kpi-change");
    change.classList.remove("up", "down");
    if (today.last_week_sales > 0) {
      const pct = (100 * (today.this_week_sales - today.last_week_sales)) / today.last_week_sales;
      setText(change, `${pct >= 0 ? "▲ +" : "▼ −"}${Math.abs(pct).toFixed(1)} %`);
      change.classList.add(pct >= 0 ? "up" : "down");
    } else {
      setText(change, "–");
    }
  }

  function renderMonthly() {
    const rows = state.bodies.monthly;
    const months = [...new Set(rows.map((r) => r.month))].sort().slice(-MONTHS_SHOWN);
    const stores = [...new Set(rows.map((r) => r.store_id))].sort((a, b) => a - b);
    const sales = new Map(rows.map((r) => [`${r.month}|${r.store_id}`, r.sales]));
    const palette = MONTH_COLORS.slice(-months.length);
    const datasets = months.map((month, i) => ({
      label: monthLabel(month),
      data: stores.map((store) => sales.get(`${month}|${store}`) ?? 0),
      backgroundColor: palette[i],
      borderRadius: 3,
      maxBarThickness: 28,
    }));
    setText(
      $("monthly-note"),
      months.length > 1 ? `${monthLabel(months[0])} – ${monthLabel(months.at(-1))}` : "",
    );
    updateChart(charts.monthly, stores.map((s) => `Store ${s}`), datasets);
  }

  function monthLabel(month) {
    const [year, mm] = month.split("-").map(Number);
    return monthName.format(new Date(Date.UTC(year, mm - 1, 1)));
  }

  function renderProducts() {
    const rows = state.bodies.products;
    updateChart(
      charts.products,
      rows.map((r) => r.item_name),
      [
        {
          label: "Units sold",
          data: rows.map((r) => r.total_sold),
          backgroundColor: COLORS.caramel,
          borderRadius: 3,
          maxBarThickness: 22,
        },
      ],
    );
  }

  function updateChart(chart, labels, datasets) {
    chart.data.labels = labels;
    const current = chart.data.datasets;
    datasets.forEach((dataset, i) => {
      if (current[i]) Object.assign(current[i], dataset); // in place: bars animate, not redraw
      else current.push(dataset);
    });
    current.length = datasets.length;
    chart.update();
  }

  // The store × hour heat map: every hour's receipts from /store_hours, shaded against the
  // busiest cell of all; each store's peak hour (from /store_peak_hours) carries its count.
  function renderHeat() {
    const grid = $("heatmap");
    const rows = [...(state.bodies.peaks ?? [])].sort((a, b) => a.store_id - b.store_id);
    const counts = new Map();
    for (const r of state.bodies.hours ?? []) {
      if (!counts.has(r.store_id)) counts.set(r.store_id, new Array(24).fill(0));
      counts.get(r.store_id)[r.hour] = r.receipts;
    }
    let max = 1;
    for (const row of rows) max = Math.max(max, row.tx_count, ...(counts.get(row.store_id) ?? []));
    const cells = [];
    cells.push(el("div", "row", [
      el("span", "label", "store"),
      ...Array.from({ length: 24 }, (_, h) =>
        el("span", h % 6 === 0 ? "hour major" : "hour", String(h), { role: "columnheader" }),
      ),
      el("span", "peaktext", "peak"),
    ], { role: "row" }));
    for (const row of rows) {
      const byHour = counts.get(row.store_id) ?? new Array(24).fill(0);
      byHour[row.peak_hour] = Math.max(byHour[row.peak_hour], row.tx_count);
      const hours = byHour.map((n, h) => {
        const peak = h === row.peak_hour;
        const cell = el("span", peak ? "cell peak" : "cell", peak ? compact.format(n) : "", {
          role: "cell",
          title: `Store ${row.store_id}, ${hourRange(h)}: ${integer.format(n)} receipts` +
            (peak ? " (busiest hour)" : ""),
        });
        if (n > 0) {
          const share = n / max;
          cell.style.background = mix(COLORS.foam, COLORS.espresso, 0.08 + 0.92 * share);
          if (peak && share < 0.45) cell.style.color = COLORS.espresso;
        }
        return cell;
      });
      const text = el("span", "peaktext", "");
      text.append(el("b", "", `${String(row.peak_hour).padStart(2, "0")}:00`));
      text.append(el("span", "count full", ` · ${integer.format(row.tx_count)}`));
      text.append(el("span", "count short", ` ${compact.format(row.tx_count)}`));
      cells.push(el("div", "row", [el("span", "label", `Store ${row.store_id}`), ...hours, text], {
        role: "row",
        "data-store": String(row.store_id),
      }));
    }
    if (!rows.length) cells.push(el("p", "empty", "No receipts yet."));
    grid.replaceChildren(...cells);
  }

  function hourRange(h) {
    const pad = (n) => String(n).padStart(2, "0");
    return `${pad(h)}:00–${pad((h + 1) % 24)}:00`;
  }

  function el(tag, className, content, attributes = {}) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (Array.isArray(content)) node.append(...content);
    else if (content) node.textContent = content;
    for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, value);
    return node;
  }

  function mix(from, to, t) {
    const a = from.match(/\w\w/g).map((x) => parseInt(x, 16));
    const b = to.match(/\w\w/g).map((x) => parseInt(x, 16));
    return `rgb(${a.map((v, i) => Math.round(v + (b[i] - v) * t)).join(",")})`;
  }

  const RENDER = {
    summary: renderSummary,
    monthly: renderMonthly,
    products: renderProducts,
    peaks: renderHeat,
    hours: renderHeat,
  };

  // -- charts ----------------------------------------------------------------------------------

  const charts = {};

  function makeCharts() {
    Chart.defaults.font.family = getComputedStyle(document.body).fontFamily;
    Chart.defaults.color = COLORS.muted;
    const base = {
      responsive: true,
      maintainAspectRatio: false,
      animation: { duration: 300 },
      interaction: { mode: "index", intersect: false },
    };
    charts.monthly = new Chart($("chart-monthly"), {
      type: "bar",
      data: { labels: [], datasets: [] },
      options: {
        ...base,
        plugins: {
          legend: { position: "top", align: "end", labels: { boxWidth: 12, boxHeight: 12 } },
          tooltip: {
            callbacks: { label: (c) => ` ${c.dataset.label}: ${money.format(c.parsed.y)}` },
          },
        },
        scales: {
          x: { grid: { display: false }, ticks: { autoSkip: true, maxRotation: 0 } },
          y: {
            beginAtZero: true,
            grid: { color: COLORS.grid },
            ticks: { callback: (v) => compact.format(v) },
          },
        },
      },
    });
    charts.products = new Chart($("chart-products"), {
      type: "bar",
      data: { labels: [], datasets: [] },
      options: {
        ...base,
        indexAxis: "y",
        interaction: { mode: "nearest", axis: "y", intersect: false },
        plugins: {
          legend: { display: false },
          tooltip: {
            callbacks: { label: (c) => ` ${integer.format(c.parsed.x)} units` },
          },
        },
        scales: {
          x: {
            beginAtZero: true,
            grid: { color: COLORS.grid },
            ticks: { callback: (v) => compact.format(v) },
          },
          y: { grid: { display: false }, ticks: { color: "#2a211c", autoSkip: false } },
        },
      },
    });
  }

  // -- start -----------------------------------------------------------------------------------

  function start() {
    loadToken();
    makeCharts();
    $("token-form").addEventListener("submit", onTokenSubmit);
    document.addEventListener("visibilitychange", () => {
      if (!document.hidden) schedule(0);
    });
    setInterval(renderFreshness, TICK_MS);
    schedule(0);
  }

  start();
})();
