// Coffeeshop Analytics: the live dashboard.
//
// Every POLL_MS the page asks the API for the pipeline state (one small request); while the
// event stream of live.js delivers, the pipeline state is pushed with each new data version:
// the page writes the counts it carries at once, then asks for the panels (and polls only
// every LIVE_POLL_MS, for "today so far"). Only when
// the data version moved, a filter changed or the hour turned does it ask for the panels,
// each with If-None-Match, so an unchanged table costs a 304 and no database read; each panel
// is drawn as soon as its answer is in, not after the slowest. When the
// API cannot be reached the polls back off (1 s, 2 s, 4 s … 30 s); when the server answers
// but its database does not (503), the page says so instead of "offline". All requests are
// relative to the page (it works behind a path prefix) and none leaves this origin.
"use strict";

(() => {
  const POLL_MS = 500;
  const HIDDEN_POLL_MS = 5000; // a background tab polls slowly
  const LIVE_POLL_MS = 15000; // while /events pushes the data version
  // New data alone redraws the panels at most this often (a filter at once): at 1,000
  // receipts/s the counts are pushed at once, and the panels' queries do not take the cores
  // the writer and the push need.
  const PANELS_EVERY_MS = 250;
  const BACKOFF_FIRST_MS = 1000;
  const BACKOFF_MAX_MS = 30000;
  const COMPARE_EVERY_MS = 60000; // "today so far" moves with the clock, not only with data
  const TOP_PRODUCTS = 10;
  const RECENT_QUARANTINE = 8;
  const MONTHS_SHOWN = 3; // without a range of days
  // A change in % needs this many receipts on each side. A count of n receipts varies by
  // about 1/sqrt(n) from chance alone (18 % at 30): below it, right after midnight or in a
  // quiet store, the percentage says nothing and would read ▲ +14,793 % or ▼ −99.9 %.
  const MIN_COMPARED_RECEIPTS = 30;
  const VERDICTS = { normal: "within its usual range", above: "above its usual range", below: "below its usual range" };
  const WEEKDAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"];
  const TOKEN_KEY = "coffeeshop.token";

  const COLORS = {
    espresso: "#3b2417",
    roast: "#6f4428",
    caramel: "#b8763a",
    latte: "#d9b88f",
    muted: "#6b5a4e",
    grid: "#efe6dc",
    foam: "#f6efe7",
  };
  const MONTH_COLORS = [COLORS.latte, COLORS.caramel, COLORS.roast, COLORS.espresso];

  const $ = (id) => document.getElementById(id);
  const integer = new Intl.NumberFormat(undefined, { maximumFractionDigits: 0 });
  const oneDecimal = new Intl.NumberFormat(undefined, { minimumFractionDigits: 1, maximumFractionDigits: 1 });
  const decimal = new Intl.NumberFormat(undefined, { minimumFractionDigits: 2, maximumFractionDigits: 2 });
  const compact = new Intl.NumberFormat(undefined, { notation: "compact", maximumFractionDigits: 1 });
  const monthName = new Intl.DateTimeFormat(undefined, { month: "short", year: "numeric", timeZone: "UTC" });
  const dayName = new Intl.DateTimeFormat(undefined, { weekday: "short", day: "numeric", month: "short", timeZone: "UTC" });
  const clockTime = new Intl.DateTimeFormat(undefined, {
    weekday: "short", day: "numeric", month: "short", hour: "2-digit", minute: "2-digit", hourCycle: "h23", timeZone: "UTC",
  });
  const shortDay = new Intl.DateTimeFormat(undefined, { day: "numeric", month: "short", timeZone: "UTC" });
  const dateLabel = new Intl.DateTimeFormat(undefined, { day: "numeric", month: "short", year: "numeric", timeZone: "UTC" });

  class Unauthorized extends Error {}
  class Unavailable extends Error {} // the server answered: its database cannot
  class Unreachable extends Error {} // no answer at all

  const state = {
    token: null,
    display: { currency: null, store_names: {}, timezone: "", now: "" },
    money: decimal,
    moneyCompact: compact,
    etags: {}, // request -> ETag of the body held
    held: {}, // request -> body
    shown: {}, // panel -> request whose body it shows
    bodies: {}, // panel -> body shown
    drawnOf: {}, // panel -> the filters its shown body was asked for

    pipeline: null,
    pipelineAt: 0,
    pushed: null, // the pipeline state the stream pushed since the last poll
    freshnessTimer: 0,
    version: null, // data version the panels were last asked for
    panelsKey: "", // filters the panels were last asked for
    comparedAt: 0,
    panelsAt: 0, // performance.now() when the panels were last asked for
    problem: null, // null, "offline" or "unavailable"
    problemText: "",
    failures: 0,
    locked: false,
    timer: 0,
    live: null, // the event stream (live.js), when the page has it
    polling: false, // a poll is running
    again: false, // a poll is due when the running one ends (a filter or the version moved)
    heat: { row: null, hour: null }, // the cell read out: a store's or a weekday's row
    stores: [],
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
    state.held = {};
    state.shown = {};
    state.version = null;
    if (state.live) state.live.restart();
    schedule(0);
  }

  // -- fetching --------------------------------------------------------------------------------

  function headers(accept, etag) {
    const h = { Accept: accept };
    if (etag) h["If-None-Match"] = etag;
    if (state.token) h.Authorization = `Bearer ${state.token}`;
    return h;
  }

  async function request(path, accept, etag) {
    let response;
    try {
      response = await fetch(path, { headers: headers(accept, etag), cache: "no-store" });
    } catch (error) {
      throw new Unreachable(String(error));
    }
    if (response.status === 401) throw new Unauthorized();
    if (response.status === 503) {
      let detail = "the database is unavailable";
      try {
        detail = (await response.json()).detail || detail;
      } catch (_) {
        /* not JSON: keep the generic text */
      }
      const error = new Unavailable(detail);
      error.retryAfter = Number(response.headers.get("Retry-After")) || 0;
      throw error;
    }
    return response;
  }

  async function fetchJSON(path, etag) {
    const response = await request(path, "application/json", etag);
    if (response.status === 304) return { changed: false };
    if (!response.ok) throw new Error(`${path}: HTTP ${response.status}`);
    return { changed: true, etag: response.headers.get("ETag"), body: await response.json() };
  }

  // The panels' requests, from the filters.
  function filters() {
    const store = $("filter-store").value;
    let from = dateFilter($("filter-from"));
    let to = dateFilter($("filter-to"));
    if (from && to && from > to) [from, to] = [to, from];
    const window = Number(document.querySelector("input[name=window]:checked").value);
    // The time of day of the top products: both hours included (07 to 10 is 07:00–10:59).
    let hourFrom = $("products-hour-from").value;
    let hourTo = $("products-hour-to").value;
    if (hourFrom && hourTo && Number(hourFrom) > Number(hourTo)) [hourFrom, hourTo] = [hourTo, hourFrom];
    return { store, from, to, window, hourFrom, hourTo };
  }

  function query(params) {
    const parts = Object.entries(params)
      .filter(([, v]) => v !== "" && v !== null && v !== undefined)
      .map(([k, v]) => `${k}=${encodeURIComponent(v)}`);
    return parts.length ? `?${parts.join("&")}` : "";
  }

  // The wall clock of the shops' zone (COFFEESHOP_TIMEZONE, from /display), advanced by the
  // time since /display answered: never the browser's own zone. `date` is that wall-clock
  // time written as if it were UTC, so UTC getters and formatters read it unchanged.
  function clock() {
    const now = state.display.now ? Date.parse(`${state.display.now}Z`) : Date.now();
    const moved = state.displayAt ? performance.now() - state.displayAt : 0;
    const date = new Date(now + moved);
    return { date, day: date.getUTCDate(), hour: date.getUTCHours(), iso: date.toISOString() };
  }

  function today() {
    return clock().iso.slice(0, 10);
  }

  function addDays(day, n) {
    const d = new Date(`${day}T00:00:00Z`);
    d.setUTCDate(d.getUTCDate() + n);
    return d.toISOString().slice(0, 10);
  }

  // A day filter's value: "" (open) when it holds its default, the data's first or last day,
  // or nothing; a day typed past today reads as today.
  function dateFilter(input) {
    const value = input.value;
    if (!value || value === input.dataset.default) return "";
    return input.id === "filter-to" && value > today() ? today() : value;
  }

  // The days of the day filters, both included; empty ends: every day on record.
  function dayRange(f) {
    return { day_from: f.from, day_to: f.to };
  }

  // The months the days cover (for the month-based panels): "" for an open end.
  function monthRange(f) {
    return { month_from: f.from.slice(0, 7), month_to: f.to.slice(0, 7) };
  }

  function dayLabel(day) {
    return dateLabel.format(new Date(`${day}T00:00:00Z`));
  }

  function rangeText(f) {
    if (!f.from && !f.to) return "all days on record";
    if (f.from === f.to) return dayLabel(f.from);
    return `${f.from ? dayLabel(f.from) : "the first day"} – ${f.to ? dayLabel(f.to) : "today"}`;
  }

  // The filters the panels on show were asked for (the selects may have moved on since).
  // The filters a panel's shown body was asked for: a panel is drawn with its own body's
  // filters, never with those of a poll whose answer for it is still on the way (the heat map
  // once read an all-stores body as one store's weekdays for a moment).
  function drawn(name) {
    return state.drawnOf[name] ?? filters();
  }

  function endpoints(f = filters()) {
    const end = f.to || today();
    let start = addDays(end, 1 - f.window);
    if (f.from && f.from > start) start = f.from;
    const range = dayRange(f);
    const total = state.quarantineTotal ?? 0;
    return {
      comparison: `sales_comparison${query({ store_id: f.store })}`,
      check: `day_check${query({ day: addDays(today(), -1), store_id: f.store })}`,
      trend: `daily_sales${query({ store_id: f.store, day_from: start, day_to: end })}`,
      monthly: `store_monthly${query({ store_id: f.store, ...monthRange(f) })}`,
      mtd: `store_month_to_date${query({ month: (f.to || today()).slice(0, 7) })}`,
      first: "daily_sales?limit=1", // the first day on record: the day filters' bound
      products: `item_sales${query({ store_id: f.store, ...range, hour_from: f.hourFrom, hour_to: f.hourTo, limit: TOP_PRODUCTS })}`,
      peaks: "store_peak_hours", // the stores to choose from
      weekdays: `store_weekday_hours${query({ store_id: f.store, ...range })}`,
      reasons: "quarantine_reasons?by=field",
      recent: `quarantine${query({ limit: RECENT_QUARANTINE, offset: Math.max(0, total - RECENT_QUARANTINE) })}`,
    };
  }

  const CSV_OF = {
    check: "csv-check",
    trend: "csv-trend",
    monthly: "csv-monthly",
    mtd: "csv-mtd",
    products: "csv-products",
    weekdays: "csv-heat",
    reasons: "csv-reasons",
  };

  // The body of each request held with its ETag: going back to a filter seen before is a 304,
  // and the page shows what it already holds for that request.
  async function fetchPanel(name, path, f) {
    const key = `${name}|${path}`;
    const result = await fetchJSON(path, state.etags[key]);
    if (result.changed) {
      state.etags[key] = result.etag;
      state.held[key] = result.body;
    } else if (state.shown[name] === key) {
      return false;
    }
    state.bodies[name] = state.held[key];
    state.shown[name] = key;
    state.drawnOf[name] = f;
    return true;
  }

  // One poll at a time: anything that asks for one while one is under way gets another after
  // it (two at once could finish in either order and leave older panels marked as current).
  async function poll() {
    if (state.polling) {
      state.again = true;
      return;
    }
    state.polling = true;
    state.again = false;
    try {
      if (!state.displayAt) await loadDisplay(); // the API was away at the start
      const pushed = state.pushed;
      state.pushed = null;
      if (!pushed) {
        state.pipeline = (await fetchJSON("pipeline")).body;
        state.pipelineAt = performance.now();
        renderEngine(); // the counts first, the panels after
      }
      const version = state.pipeline.data_version;
      const f = filters();
      const paths = endpoints(f);
      const key = JSON.stringify(paths);
      const clock = performance.now() - state.comparedAt > COMPARE_EVERY_MS;
      const moved = version !== state.version;
      let next = document.hidden ? HIDDEN_POLL_MS : state.live?.isLive() ? LIVE_POLL_MS : POLL_MS;
      const wait = state.panelsAt + PANELS_EVERY_MS - performance.now();
      if (moved && key === state.panelsKey && wait > 0) {
        next = Math.min(next, wait); // drawn just now: the new data at the end of the gap
        state.again = false;
      } else if (moved || key !== state.panelsKey || clock) {
        state.panelsAt = performance.now();
        await refreshPanels(paths, moved || key !== state.panelsKey, f);
        state.version = version;
        // The panels now show filters `f` (the quarantine offset may have moved): filters
        // changed meanwhile give another key, so the next poll fetches them.
        state.panelsKey = JSON.stringify(endpoints(f));
      }
      recovered();
      if (state.live) state.live.answered();
      schedule(next);
    } catch (error) {
      if (error instanceof Unauthorized) {
        askForToken();
        return; // polling resumes once a token is entered
      }
      failed(error);
    } finally {
      state.polling = false;
      if (state.again && !state.problem) schedule(0);
      renderFreshness();
    }
  }

  // The event stream pushed a data version (and the pipeline state with it, from a current
  // server): its counts are written at once; the panels are asked for unless shown already.
  function onPushedVersion(version, body) {
    if (state.locked || state.problem) return;
    if (body && !(state.pipeline?.data_version > body.data_version)) {
      state.pipeline = body;
      state.pipelineAt = performance.now();
      state.pushed = body;
      renderEngine();
      renderFreshness();
    }
    if (version !== state.version) pollSoon();
  }

  // Poll now, or right after the poll that is running.
  function pollSoon() {
    if (state.polling) state.again = true;
    else schedule(0);
  }

  // The panels of `paths`, all at once, each drawn as soon as its answer is in. The latest
  // quarantine entries sit at an offset the counts give: those after the counts.
  async function refreshPanels(paths, all, f) {
    const names = all ? Object.keys(paths).filter((name) => name !== "recent") : ["comparison"];
    // The downloads follow the filters as the panels are asked for them.
    for (const [name, id] of Object.entries(CSV_OF)) $(id).href = csvHref(paths[name]);
    $("csv-quarantine").href = csvHref("quarantine?limit=1000"); // the hardened API caps a page at 1,000
    const draw = async (name) => {
      if (await fetchPanel(name, paths[name], f)) RENDER[name]();
    };
    const recent = async () => {
      await draw("reasons");
      paths.recent = endpoints(f).recent;
      await draw("recent");
    };
    await Promise.all(names.map((name) => (all && name === "reasons" ? recent() : draw(name))));
    state.comparedAt = performance.now();
    renderDates(); // today may have turned
  }

  function csvHref(path) {
    return `${path}${path.includes("?") ? "&" : "?"}format=csv`;
  }

  function recovered() {
    state.failures = 0;
    state.problem = null;
  }

  function failed(error) {
    state.failures += 1;
    let delay = Math.min(BACKOFF_MAX_MS, BACKOFF_FIRST_MS * 2 ** (state.failures - 1));
    if (error instanceof Unavailable) {
      state.problem = "unavailable";
      state.problemText = error.message;
      delay = Math.max(delay, (error.retryAfter || 0) * 1000);
    } else if (error instanceof Unreachable) {
      state.problem = "offline";
      state.problemText = "";
    } else {
      state.problem = "offline";
      state.problemText = String(error.message || error);
    }
    delay *= 0.8 + 0.4 * Math.random(); // many tabs do not retry in step
    state.retryAt = performance.now() + delay;
    schedule(delay);
  }

  function schedule(delay) {
    clearTimeout(state.timer);
    if (!state.locked) state.timer = setTimeout(poll, delay);
  }

  // -- display settings --------------------------------------------------------------------------

  async function loadDisplay() {
    try {
      const result = await fetchJSON("display");
      state.display = result.body;
      state.displayAt = performance.now();
      renderFreshness(); // the shops' clock, and its timer
    } catch (error) {
      return; // poll() says why, and tries again once the API answers
    }
    const currency = state.display.currency;
    if (currency) {
      try {
        state.money = new Intl.NumberFormat(undefined, { style: "currency", currency });
        state.moneyCompact = new Intl.NumberFormat(undefined, {
          style: "currency",
          currency,
          notation: "compact",
          maximumFractionDigits: 1,
        });
      } catch (_) {
        /* a code this browser does not know: plain numbers */
      }
    }
  }

  function storeName(id) {
    return state.display.store_names?.[String(id)] ?? `Store ${id}`;
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
    $("status").dataset.state = kind;
    setText($("freshness"), text);
  }

  // The age of the last commit in steps (5 s, then minutes, hours, days), so the line is
  // rewritten a dozen times in its first minute and then once a minute, not every second.
  function ageStep(seconds) {
    return seconds < 60 ? 5 : seconds < 5400 ? 60 : seconds < 172800 ? 3600 : 86400;
  }

  function ago(seconds) {
    const n = Math.floor(seconds / ageStep(seconds));
    if (seconds < 5) return "updated just now";
    if (seconds < 60) return `updated ${5 * n} s ago`;
    if (seconds < 5400) return `updated ${n} min ago`;
    if (seconds < 172800) return `updated ${n} h ago`;
    return `updated ${n} days ago`;
  }

  // Milliseconds until the freshness line or the clock next reads differently: the next age
  // step (30 s, where "live" turns "stale", is one), the next minute, or 1 s while a retry
  // counts down.
  function nextFreshness() {
    if (state.problem) return 1000;
    const minute = 60000 - (clock().date.getTime() % 60000);
    const since = state.pipeline?.totals?.seconds_since_commit;
    if (state.locked || since === null || since === undefined) return minute;
    const age = since + (performance.now() - state.pipelineAt) / 1000;
    const step = ageStep(age);
    return Math.min(minute, (step * (Math.floor(age / step) + 1) - age) * 1000 + 20);
  }

  function retryText() {
    const left = Math.max(0, (state.retryAt - performance.now()) / 1000);
    return left >= 1.5 ? `retrying in ${Math.round(left)} s` : "retrying…";
  }

  function renderClock() {
    if (!state.displayAt) return;
    setText($("clock"), `${clockTime.format(clock().date)} · ${state.display.timezone}`);
  }

  function renderFreshness() {
    clearTimeout(state.freshnessTimer);
    state.freshnessTimer = setTimeout(renderFreshness, nextFreshness());
    renderClock();
    if (state.locked) return;
    if (state.problem === "unavailable") {
      setStatus("unavailable", `server up, database unavailable: ${state.problemText} · ${retryText()}`);
      return;
    }
    if (state.problem === "offline") {
      setStatus("offline", `offline: the server does not answer · ${retryText()}`);
      return;
    }
    const pipeline = state.pipeline;
    if (!pipeline) {
      setStatus("connecting", "connecting…");
      return;
    }
    const since = pipeline.totals.seconds_since_commit;
    if (since === null) {
      setStatus("stale", "no batch committed yet");
      return;
    }
    const age = since + (performance.now() - state.pipelineAt) / 1000;
    setStatus(age < 30 ? "live" : "stale", ago(age));
  }

  function renderEngine() {
    const { totals, data_version: version } = state.pipeline;
    const behind = totals.behind === null ? "" : ` · ${integer.format(totals.behind)} bytes behind`;
    setText(
      $("engine"),
      `engine: ${integer.format(totals.applied)} changes applied in ${integer.format(totals.batches)} batches` +
        ` · ${integer.format(totals.quarantined)} quarantined · data version ${integer.format(version)}${behind}`,
    );
  }

  // The change from `before` to `now` in %, or "too few receipts" when either side counts
  // fewer than MIN_COMPARED_RECEIPTS (`receipts`: [now, before]): { text, kind, title }.
  function changeOf(pct, receipts) {
    if (Math.min(...receipts) < MIN_COMPARED_RECEIPTS) {
      const title = `${integer.format(receipts[0])} receipts against ${integer.format(receipts[1])}: ` +
        `a change is shown from ${MIN_COMPARED_RECEIPTS} receipts on each side`;
      return { text: "too few receipts to compare", kind: "few", title };
    }
    if (pct === null) return { text: "–", kind: "", title: "" };
    if (Math.abs(pct) < 0.05) return { text: "± 0.0 %", kind: "", title: "" }; // not ▼ −0.0 %
    return { text: `${pct >= 0 ? "▲ +" : "▼ −"}${Math.abs(pct).toFixed(1)} %`, kind: pct >= 0 ? "up" : "down", title: "" };
  }

  function change(element, now, before, receipts) {
    const pct = Number(before) > 0 ? (100 * (now - before)) / before : null;
    const shown = changeOf(pct, receipts);
    element.classList.remove("up", "down", "few");
    if (shown.kind) element.classList.add(shown.kind);
    element.title = shown.title;
    setText(element, shown.text);
  }

  function hourEnd(h) {
    return `${String(h).padStart(2, "0")}:59`;
  }

  function renderComparison() {
    const rows = Object.fromEntries((state.bodies.comparison ?? []).map((r) => [r.period, r]));
    const { today: t, same_day_last_week: tl, week_to_date: w, same_period_last_week: wl } = rows;
    if (!t || !tl || !w || !wl) return; // an answer from an older API: keep what is shown
    const day = (d) => dayName.format(new Date(`${d}T00:00:00Z`));
    setText($("kpi-today"), state.money.format(t.sales));
    const daily = [t.receipts, tl.receipts];
    const week = [w.receipts, wl.receipts];
    change($("kpi-today-change"), t.sales, tl.sales, daily);
    setText($("kpi-today-note"), `until ${hourEnd(t.until_hour)} vs ${day(tl.last_day)} until ${hourEnd(tl.until_hour)}`);
    setText($("kpi-week"), state.money.format(w.sales));
    change($("kpi-week-change"), w.sales, wl.sales, week);
    const span = (p) =>
      `${p.first_day === p.last_day ? "" : `${day(p.first_day)} – `}${day(p.last_day)} until ${hourEnd(p.until_hour)}`;
    setText($("kpi-week-note"), `vs ${state.money.format(wl.sales)}, ${span(wl)}`);
    setText($("kpi-receipts"), integer.format(w.receipts));
    change($("kpi-receipts-change"), w.receipts, wl.receipts, week);
    setText($("kpi-receipts-note"), `vs ${integer.format(wl.receipts)} the same days of last week`);
    setText($("kpi-spend"), state.money.format(w.spend_per_rcpt));
    change($("kpi-spend-change"), w.spend_per_rcpt, wl.spend_per_rcpt, week);
    setText($("kpi-spend-note"), `per receipt this week, vs ${state.money.format(wl.spend_per_rcpt)}`);
    setText($("kpi-items"), decimal.format(w.items_per_rcpt));
    change($("kpi-items-change"), w.items_per_rcpt, wl.items_per_rcpt, week);
    setText($("kpi-items-note"), `units this week, vs ${decimal.format(wl.items_per_rcpt)}`);
  }

  // Yesterday against the same weekday of the previous weeks (/day_check): the chain's (or
  // the chosen store's) sales and verdict, then every store whose sales left their range.
  function verdictOf(row) {
    if (!row.sales_outside) return "normal";
    return Number(row.sales) > Number(row.sales_max) ? "above" : "below";
  }

  function renderCheck() {
    const rows = state.bodies.check ?? [];
    const f = drawn("check");
    const row = rows.find((r) => (f.store ? String(r.store_id) === f.store : r.store_id === null));
    const verdict = $("yesterday-verdict");
    const scope = f.store ? storeName(f.store) : "All stores";
    if (!row) {
      verdict.dataset.verdict = "none";
      setText(verdict, `${scope}: no receipts yesterday or on the same weekday of the weeks before.`);
      $("yesterday-stores").replaceChildren();
      return;
    }
    const date = new Date(`${row.day}T00:00:00Z`);
    const weekday = WEEKDAYS[(date.getUTCDay() + 6) % 7];
    setText($("yesterday-note"), `${dayName.format(date)}, against the same weekday of the ${row.weeks} weeks before`);
    verdict.dataset.verdict = verdictOf(row);
    const range = (r) => `${state.money.format(r.sales_min)}–${state.money.format(r.sales_max)}`;
    setText(
      verdict,
      `${scope}: ${state.money.format(row.sales)} in ${integer.format(row.receipts)} receipts, ` +
        `${VERDICTS[verdictOf(row)]} — a usual ${weekday}: ${state.money.format(row.sales_mean)} (${range(row)})`,
    );
    const odd = rows.filter((r) => r.store_id !== null && r.sales_outside && (!f.store || String(r.store_id) === f.store));
    const items = odd.map((r) => el("li", verdictOf(r), `${storeName(r.store_id)}: ${state.money.format(r.sales)}, ${VERDICTS[verdictOf(r)]} (${range(r)})`));
    if (!f.store) items.unshift(el("li", "lead", odd.length ? "Outside their usual range:" : "Every store within its usual range."));
    $("yesterday-stores").replaceChildren(...items);
  }

  // This month so far against the same days of last month, per store, in the API's ranking
  // (largest change first: the weakest stores are at the bottom); the chosen store is marked.
  function renderMonthToDate() {
    const rows = state.bodies.mtd ?? [];
    const f = filters();
    const first = rows[0];
    const span = (a, b) => `${shortDay.format(new Date(`${a}T00:00:00Z`))} – ${shortDay.format(new Date(`${b}T00:00:00Z`))}`;
    const to = drawn("mtd").to;
    const which = to ? `the month of ${dayLabel(to)}: ` : "";
    setText(
      $("mtd-note"),
      first
        ? `${which}${span(first.day_from, first.day_to)}${first.so_far ? " (so far)" : ""} against ${span(first.previous_day_from, first.previous_day_to)}, largest change first`
        : `${which}no receipts in this month`,
    );
    const body = rows.map((r) => {
      const pct = r.change_pct === null ? null : Number(r.change_pct);
      const shown = changeOf(pct, [r.receipts, r.previous_receipts]);
      return el("tr", String(r.store_id) === f.store ? "chosen" : "", [
        el("td", "rank", String(r.rank)),
        el("th", "", storeName(r.store_id), { scope: "row" }),
        el("td", "num", state.money.format(r.sales)),
        el("td", "num previous", state.money.format(r.previous_sales)),
        el("td", `num change ${shown.kind}`, shown.text, shown.title ? { title: shown.title } : {}),
      ], { "data-store": String(r.store_id) });
    });
    $("mtd-table").tBodies[0].replaceChildren(...body);
  }

  // Today is not over: its point is labelled "so far" and reached by a dashed line, so a
  // low last point reads as a day in progress, not as a collapse.
  function renderTrend() {
    const rows = state.bodies.trend ?? [];
    const f = drawn("trend");
    const scope = f.store ? storeName(f.store) : "all stores";
    const label = (day) => shortDay.format(new Date(`${day}T00:00:00Z`));
    const partial = rows.length > 0 && rows.at(-1).day === today();
    const first = rows.length ? label(rows[0].day) : "";
    const last = rows.length ? label(rows.at(-1).day) : "";
    const sofar = partial ? ` (today so far, until ${hourEnd(clock().hour)})` : "";
    setText($("trend-note"), rows.length ? `${scope}, ${first} – ${last}${sofar}` : `${scope}: no receipts in these days`);
    const lastIndex = rows.length - 1;
    const isPartial = (i) => partial && i === lastIndex;
    updateChart(
      charts.trend,
      rows.map((r, i) => (isPartial(i) ? `${label(r.day)} (so far)` : label(r.day))),
      [
        {
          label: "Sales",
          data: rows.map((r) => r.sales),
          borderColor: COLORS.roast,
          backgroundColor: "rgba(184, 118, 58, 0.18)",
          fill: true,
          tension: 0.25,
          pointRadius: (c) => (isPartial(c.dataIndex) ? 4 : rows.length > 40 ? 0 : 2),
          pointStyle: (c) => (isPartial(c.dataIndex) ? "rectRot" : "circle"),
          segment: { borderDash: (c) => (isPartial(c.p1DataIndex) ? [5, 4] : undefined) },
        },
      ],
    );
  }

  function renderMonthly() {
    const rows = state.bodies.monthly ?? [];
    const f = drawn("monthly");
    let months = [...new Set(rows.map((r) => r.month))].sort();
    if (!f.from && !f.to) months = months.slice(-MONTHS_SHOWN);
    months = months.slice(-12);
    const stores = [...new Set(rows.map((r) => r.store_id))].sort((a, b) => a - b);
    const sales = new Map(rows.map((r) => [`${r.month}|${r.store_id}`, r.sales]));
    const palette = months.length <= MONTH_COLORS.length ? MONTH_COLORS.slice(-months.length) : null;
    const current = today().slice(0, 7);
    const datasets = months.map((month, i) => ({
      label: month === current ? `${monthLabel(month)} so far` : monthLabel(month),
      data: stores.map((store) => sales.get(`${month}|${store}`) ?? 0),
      backgroundColor: palette ? palette[i] : mix(COLORS.foam, COLORS.espresso, 0.25 + (0.75 * i) / Math.max(1, months.length - 1)),
      borderRadius: 3,
      maxBarThickness: 28,
    }));
    const sofar = months.at(-1) === current ? `, ${monthLabel(current)} so far (to the ${ordinal(clock().day)})` : "";
    // By whole months: with days chosen, the months they fall in, and the note says so.
    const covers = f.from || f.to ? ` — whole months: the months ${rangeText(f)} falls in` : "";
    setText(
      $("monthly-note"),
      months.length ? `${monthLabel(months[0])} – ${monthLabel(months.at(-1))}${sofar}${covers}` : "no sales in these months",
    );
    updateChart(charts.monthly, stores.map(storeName), datasets);
  }

  function ordinal(n) {
    const suffix = n % 100 >= 11 && n % 100 <= 13 ? "th" : ["th", "st", "nd", "rd"][n % 10] ?? "th";
    return `${n}${suffix}`;
  }

  function monthLabel(month) {
    const [year, mm] = month.split("-").map(Number);
    return monthName.format(new Date(Date.UTC(year, mm - 1, 1)));
  }

  function hoursText(f) {
    if (!f.hourFrom && !f.hourTo) return "all day";
    return `${f.hourFrom || "00"}:00–${f.hourTo || "23"}:59`;
  }

  function renderProducts() {
    const rows = state.bodies.products ?? [];
    const f = drawn("products");
    const scope = f.store ? storeName(f.store) : "all stores";
    setText($("products-note"), `units sold, ${scope}, ${rangeText(f)}, ${hoursText(f)}`);
    updateChart(
      charts.products,
      rows.map((r) => r.product),
      [
        {
          label: "Units sold",
          data: rows.map((r) => r.units),
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

  // The heat map, over the chosen stores and days (/store_weekday_hours):
  // * all stores: a row per store, its receipts in each hour of the range; with a weekday
  //   chosen, the receipts of an average such day;
  // * one store: a row per weekday (Monday first), the receipts of an average such day, so
  //   the hours that need more baristas stand out per weekday.
  // Cells are shaded against the busiest cell shown; each row's busiest hour carries its
  // figure. A tap (or the arrow keys, with the map focused) reads a cell out below the map.
  function heatModel() {
    const f = drawn("weekdays");
    const rows = state.bodies.weekdays ?? [];
    const weekday = Number($("heat-weekday").value) || 0;
    const lines = new Map();
    const line = (id, label, attr) => {
      if (!lines.has(id)) lines.set(id, { id, label, attr, counts: new Array(24).fill(0) });
      return lines.get(id);
    };
    if (f.store) {
      for (let d = 1; d <= 7; d++) line(d, WEEKDAYS[d - 1], "data-weekday");
      for (const r of rows) line(r.weekday).counts[r.hour] += Number(r.average_receipts);
      return { average: true, lines: [...lines.values()], what: (row) => `${storeName(Number(f.store))}, ${WEEKDAYS[row.id - 1]}s` };
    }
    for (const r of [...rows].sort((a, b) => a.store_id - b.store_id)) {
      const row = line(r.store_id, storeName(r.store_id), "data-store");
      if (!weekday) row.counts[r.hour] += r.receipts;
      else if (r.weekday === weekday) row.counts[r.hour] += Number(r.average_receipts);
    }
    const when = weekday ? `, ${WEEKDAYS[weekday - 1]}s` : "";
    return { average: weekday > 0, lines: [...lines.values()], what: (row) => `${row.label}${when}` };
  }

  function renderHeat() {
    const model = heatModel();
    const format = (n) => (model.average ? oneDecimal.format(n) : integer.format(n));
    state.heatModel = model;
    let max = 0;
    for (const row of model.lines) {
      row.peak = row.counts.indexOf(Math.max(...row.counts));
      max = Math.max(max, row.counts[row.peak]);
    }
    const head = model.lines[0]?.attr === "data-weekday" ? "weekday" : "store";
    const cells = [el("div", "row", [
      el("span", "label", head, { role: "columnheader" }),
      ...Array.from({ length: 24 }, (_, h) => el("span", h % 3 === 0 ? "hour major" : "hour", String(h), { role: "columnheader" })),
      el("span", "peaktext", "peak", { role: "columnheader" }),
    ], { role: "row" })];
    for (const row of model.lines) {
      const busiest = row.counts[row.peak];
      const hours = row.counts.map((n, h) => {
        const peak = busiest > 0 && h === row.peak;
        const selected = state.heat.row === row.id && state.heat.hour === h;
        const cell = el("span", `cell${peak ? " peak" : ""}${selected ? " selected" : ""}`, peak ? compact.format(n) : "", {
          role: "gridcell",
          title: `${model.what(row)}, ${hourRange(h)}: ${format(n)} receipts${model.average ? " on average" : ""}`,
          "data-hour": String(h),
          "data-count": String(n),
        });
        if (n > 0) {
          const share = n / max;
          const background = mix(COLORS.foam, COLORS.espresso, 0.08 + 0.92 * share);
          cell.style.background = background;
          // The peak's figure in white or espresso where either reaches AA's 4.5:1 on its
          // shade, else in black: on mid shades white and espresso both stay under 3.9:1
          // (a fixed share threshold left some at 3.3), and one of white and black always
          // reaches 4.58.
          if (peak) {
            const inks = ["#ffffff", COLORS.espresso, "#000000"];
            const ink = inks.find((c) => contrast(background, c) >= 4.5) ?? "#000000";
            if (ink !== "#ffffff") cell.style.color = ink;
          }
        }
        return cell;
      });
      const text = el("span", "peaktext", "");
      if (busiest > 0) {
        text.append(el("b", "", `${String(row.peak).padStart(2, "0")}:00`));
        text.append(el("span", "count full", ` · ${format(busiest)}`));
        text.append(el("span", "count short", ` ${compact.format(busiest)}`));
      }
      cells.push(el("div", "row", [el("span", "label", row.label, { role: "rowheader" }), ...hours, text], {
        role: "row",
        [row.attr]: String(row.id),
      }));
    }
    if (!model.lines.length) cells.push(el("p", "empty", "No receipts in these days."));
    $("heatmap").replaceChildren(...cells);
    setText($("heat-note"), heatNote(model));
    if (state.heat.row !== null) showCell(state.heat.row, state.heat.hour, false);
  }

  function heatNote(model) {
    const f = drawn("weekdays");

    const range = rangeText(f);
    if (f.store) return `${storeName(Number(f.store))}: receipts on an average day of each weekday, ${range}, by the hour on the receipt.`;
    if (model.average) return `Receipts on an average ${WEEKDAYS[Number($("heat-weekday").value) - 1]} per store, ${range}.`;
    return `Receipts per store and hour of day, ${range}. The number marks each store's busiest hour.`;
  }

  function showCell(id, hour, focus) {
    const model = state.heatModel;
    const row = model?.lines.find((r) => r.id === id);
    if (!row) return;
    state.heat = { row: id, hour };
    for (const node of document.querySelectorAll("#heatmap .cell.selected")) node.classList.remove("selected");
    const cell = document.querySelector(`#heatmap [${row.attr}='${id}'] .cell[data-hour='${hour}']`);
    if (!cell) return;
    cell.classList.add("selected");
    const n = Number(cell.dataset.count);
    const shown = model.average ? `${oneDecimal.format(n)} receipts on average` : `${integer.format(n)} receipts`;
    const peak = cell.classList.contains("peak") ? " — the busiest hour" : "";
    setText($("heat-readout"), `${model.what(row)}, ${hourRange(hour)}: ${shown}${peak}`);
    if (focus) cell.scrollIntoView({ block: "nearest", inline: "nearest" });
  }

  function onHeatClick(event) {
    const cell = event.target.closest(".cell");
    if (!cell) return;
    const row = cell.closest(".row");
    const id = Number(row.dataset.store ?? row.dataset.weekday);
    showCell(id, Number(cell.dataset.hour), false);
  }

  function onHeatKey(event) {
    const rows = state.heatModel?.lines ?? [];
    if (!rows.length) return;
    const moves = { ArrowLeft: [0, -1], ArrowRight: [0, 1], ArrowUp: [-1, 0], ArrowDown: [1, 0], Home: [0, -24], End: [0, 24] };
    const move = moves[event.key];
    if (!move) return;
    event.preventDefault();
    let index = rows.findIndex((r) => r.id === state.heat.row);
    let hour = state.heat.hour;
    if (index < 0 || hour === null) {
      index = 0;
      hour = rows[0].peak;
    } else {
      index = Math.min(rows.length - 1, Math.max(0, index + move[0]));
      hour = Math.min(23, Math.max(0, hour + move[1]));
    }
    showCell(rows[index].id, hour, true);
  }

  function hourRange(h) {
    const pad = (n) => String(n).padStart(2, "0");
    return `${pad(h)}:00–${pad((h + 1) % 24)}:00`;
  }

  // -- quarantine ------------------------------------------------------------------------------

  function renderReasons() {
    const rows = state.bodies.reasons ?? [];
    const total = rows.reduce((n, r) => n + r.entries, 0);
    state.quarantineTotal = total;
    setText($("quarantine-note"), `${integer.format(total)} inputs rejected by validation, never counted`);
    const max = Math.max(1, ...rows.map((r) => r.entries));
    const items = rows.slice(0, 8).map((r) => {
      const bar = el("span", "bar", "");
      bar.style.width = `${Math.max(2, (100 * r.entries) / max)}%`;
      return el("li", "", [el("span", "what", r.reason), el("span", "n", integer.format(r.entries)), bar]);
    });
    if (!rows.length) items.push(el("li", "empty", "Nothing quarantined."));
    $("quarantine-reasons").replaceChildren(...items);
  }

  // Each entry's whole raw input is served by /quarantine/{id}/raw (the list carries only a
  // preview). With a bearer token, a click fetches it with the token and opens the text.
  function rawHref(entry) {
    return entry.raw_url ?? `quarantine/${entry.id}/raw`;
  }

  async function onRawLink(event) {
    const link = event.target.closest("a.raw");
    if (!link || !state.token) return;
    event.preventDefault();
    const opened = window.open("", "_blank");
    try {
      const response = await request(link.getAttribute("href"), "text/plain");
      if (!response.ok) throw new Error(`HTTP ${response.status}`);
      const url = URL.createObjectURL(await response.blob());
      if (opened) opened.location = url;
      setTimeout(() => URL.revokeObjectURL(url), 60000);
    } catch (error) {
      if (opened) opened.close();
      if (error instanceof Unauthorized) askForToken();
    }
  }

  function renderRecent() {
    const rows = [...(state.bodies.recent ?? [])].reverse(); // newest first
    const body = rows.map((q) => {
      const link = el("a", "raw", "raw text", { href: rawHref(q), target: "_blank", rel: "noopener" });
      const preview = el("code", "", q.raw.length > 60 ? `${q.raw.slice(0, 60)}…` : q.raw);
      // Roles kept explicit: on a phone the rows are restyled as blocks (app.css).
      return el("tr", "", [
        el("td", "id", String(q.id), { role: "cell" }),
        el("td", "reason", q.reason, { role: "cell" }),
        el("td", "where", `${q.position}`, { title: q.source, role: "cell" }),
        el("td", "input", [preview, el("br", "", ""), link], { role: "cell" }),
      ], { role: "row" });
    });
    if (!rows.length) body.push(el("tr", "", [el("td", "empty", "Nothing quarantined.", { colspan: "4" })]));
    $("quarantine-table").tBodies[0].replaceChildren(...body);
  }

  function el(tag, className, content, attributes = {}) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (Array.isArray(content)) node.append(...content);
    else if (content) node.textContent = content;
    for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, value);
    return node;
  }

  // A colour's red, green and blue (0-255), from "#rrggbb" or "rgb(r,g,b)" (as `mix` gives).
  function channels(color) {
    return color.startsWith("#") ? color.match(/\w\w/g).map((x) => parseInt(x, 16)) : color.match(/\d+/g).map(Number);
  }

  function mix(from, to, t) {
    const a = channels(from);
    const b = channels(to);
    return `rgb(${a.map((v, i) => Math.round(v + (b[i] - v) * t)).join(",")})`;
  }

  // WCAG 2 contrast ratio of two colours (any form `channels` reads).
  function contrast(first, second) {
    const luminance = (color) => {
      const [r, g, b] = channels(color).map((v) => {
        const c = v / 255;
        return c <= 0.04045 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4;
      });
      return 0.2126 * r + 0.7152 * g + 0.0722 * b;
    };
    const [light, dark] = [luminance(first), luminance(second)].sort((x, y) => y - x);
    return (light + 0.05) / (dark + 0.05);
  }

  function renderFilters() {
    // Stores to choose from: every store with sales (unfiltered).
    const peaks = state.bodies.peaks ?? [];
    const f = filters();
    if (!f.store) {
      const stores = peaks.map((r) => r.store_id).sort((a, b) => a - b);
      if (stores.join() !== state.stores.join()) {
        state.stores = stores;
        fillSelect($("filter-store"), "All stores", stores.map((s) => [String(s), storeName(s)]));
      }
    }
  }

  // The day filters run from the first day on record to today (the shops' zone): those are
  // their bounds and, until the owner picks a day, their values (which read as "no bound":
  // a filter at its default follows a new first day or a new today). Reset returns to them.
  function renderDates() {
    const first = state.bodies.first?.[0]?.day ?? "";
    const bounds = { "filter-from": first, "filter-to": today() };
    for (const [id, value] of Object.entries(bounds)) {
      const input = $(id);
      const open = !input.value || input.value === input.dataset.default;
      input.min = first;
      input.max = today();
      input.dataset.default = value;
      input.defaultValue = value;
      if (open) input.value = value;
    }
  }

  function fillSelect(select, blank, options) {
    const value = select.value;
    select.replaceChildren(el("option", "", blank, { value: "" }), ...options.map(([v, t]) => el("option", "", t, { value: v })));
    select.value = value;
  }

  const RENDER = {
    comparison: renderComparison,
    trend: renderTrend,
    monthly: renderMonthly,
    first: renderDates,
    check: renderCheck,
    mtd: renderMonthToDate,
    products: renderProducts,
    peaks: renderFilters,
    weekdays: renderHeat,
    reasons: renderReasons,
    recent: renderRecent,
  };

  // -- downloads ---------------------------------------------------------------------------------

  // A download link fetches its CSV itself, so the bearer token goes with it when one is set.
  async function onDownload(event) {
    const link = event.target.closest("a.download");
    if (!link || link.dataset.fetched) return;
    event.preventDefault();
    try {
      const response = await request(link.getAttribute("href"), "text/csv");
      if (!response.ok) throw new Error(`HTTP ${response.status}`);
      const url = URL.createObjectURL(await response.blob());
      const save = el("a", "", "", { href: url, download: link.getAttribute("download") });
      document.body.append(save);
      save.click();
      save.remove();
      setTimeout(() => URL.revokeObjectURL(url), 10000);
    } catch (error) {
      if (error instanceof Unauthorized) askForToken();
    }
  }

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
    // A chart of `type` in the canvas `id`, empty until rendered: `base` and then `options`.
    const chart = (id, type, options) =>
      new Chart($(id), { type, data: { labels: [], datasets: [] }, options: { ...base, ...options } });
    const moneyAxis = {
      beginAtZero: true,
      grid: { color: COLORS.grid },
      ticks: { callback: (v) => state.moneyCompact.format(v) },
    };
    charts.trend = chart("chart-trend", "line", {
      plugins: {
        legend: { display: false },
        tooltip: { callbacks: { label: (c) => ` ${state.money.format(c.parsed.y)}` } },
      },
      scales: { x: { grid: { display: false }, ticks: { autoSkip: true, maxRotation: 0 } }, y: moneyAxis },
    });
    charts.monthly = chart("chart-monthly", "bar", {
      plugins: {
        legend: { position: "top", align: "end", labels: { boxWidth: 12, boxHeight: 12 } },
        tooltip: {
          callbacks: { label: (c) => ` ${c.dataset.label}: ${state.money.format(c.parsed.y)}` },
        },
      },
      scales: {
        // Every store's name, each word on its own line (never skipped): twelve fit at 1440 px.
        x: {
          grid: { display: false },
          ticks: {
            autoSkip: false,
            maxRotation: 90,
            font: { size: 11 },
            callback(value) {
              const name = this.getLabelForValue(value);
              // Wrapped only where there is room to stand upright (a phone tilts them).
              return this.chart.width >= 600 && name.includes(" ") ? name.split(" ") : name;
            },
          },
        },
        y: moneyAxis,
      },
    });
    charts.products = chart("chart-products", "bar", {
      indexAxis: "y",
      interaction: { mode: "nearest", axis: "y", intersect: false },
      plugins: {
        legend: { display: false },
        tooltip: { callbacks: { label: (c) => ` ${integer.format(c.parsed.x)} units` } },
      },
      scales: {
        x: { beginAtZero: true, grid: { color: COLORS.grid }, ticks: { callback: (v) => compact.format(v) } },
        y: { grid: { display: false }, ticks: { color: "#2a211c", autoSkip: false } },
      },
    });
  }

  // -- start -----------------------------------------------------------------------------------

  function onFilters() {
    state.heat = { row: null, hour: null }; // the rows may now be weekdays instead of stores
    $("heat-days").hidden = Boolean(filters().store); // one store: its weekdays are the rows
    renderMonthToDate(); // the same ranking, another store marked
    renderHeat(); // the weekday shown is the page's own choice
    pollSoon(); // after a poll in flight, never beside it: its answer would be shown last
  }

  function fillHours() {
    const hours = Array.from({ length: 24 }, (_, h) => String(h).padStart(2, "0"));
    fillSelect($("products-hour-from"), "00:00", hours.map((h) => [h, `${h}:00`]));
    fillSelect($("products-hour-to"), "23:59", hours.map((h) => [h, `${h}:59`]));
  }

  async function start() {
    loadToken();
    makeCharts();
    $("token-form").addEventListener("submit", onTokenSubmit);
    $("filters").addEventListener("change", onFilters);
    $("filters").addEventListener("submit", (event) => event.preventDefault());
    $("filters").addEventListener("reset", () => setTimeout(onFilters, 0));
    fillHours();
    for (const form of ["products-hours", "heat-days"]) {
      $(form).addEventListener("change", onFilters);
      $(form).addEventListener("submit", (event) => event.preventDefault());
    }
    $("heatmap").addEventListener("click", onHeatClick);
    $("heatmap").addEventListener("keydown", onHeatKey);
    document.addEventListener("click", onDownload);
    document.addEventListener("click", onRawLink);
    document.addEventListener("visibilitychange", () => {
      if (!document.hidden && !state.problem) schedule(0);
    });
    renderFreshness(); // and again each time its text would change
    schedule(0);
    if (window.CoffeeshopLive) {
      state.live = window.CoffeeshopLive.connect({
        headers: (accept) => headers(accept),
        onVersion: onPushedVersion,
        onLive: (on) => on || state.problem || pollSoon(), // the stream broke: poll as before
      });
    }
  }

  start();
})();
