// Coffeeshop Analytics: the data version pushed to the page (Server-Sent Events from /events).
//
// `CoffeeshopLive.connect({ headers, onVersion, onLive })` opens the stream and calls
// onVersion(n, body) for each `version` event (body: the /pipeline body the event carries,
// null from a server that sends the version alone), onLive(true) once the stream delivers and
// onLive(false) when it fails: the page then polls as before, and calls `answered()` after
// each poll the API answered; that reopens the stream, at most as often as a backoff allows
// (1 s, 2 s … 30 s), so a server that is away gets no more requests than the polls. The
// stream is read with fetch, not EventSource, because
// EventSource cannot send the Authorization header a protected API wants. A stream silent
// for longer than three heartbeats is dropped and reopened (a proxy that cut it quietly). A
// 401 or a 503 (the server's streams are all taken) ends the attempt like any failure.
"use strict";

window.CoffeeshopLive = (() => {
  const RETRY_FIRST_MS = 1000;
  const RETRY_MAX_MS = 30000;
  const SILENT_MS = 45000; // the server sends a heartbeat every 15 s

  // The events of a chunk of the stream: [{event, data}], and the unfinished rest.
  function parse(text) {
    const blocks = text.replace(/\r\n?/g, "\n").split("\n\n");
    const rest = blocks.pop();
    const events = [];
    for (const block of blocks) {
      let event = "message";
      const data = [];
      for (const line of block.split("\n")) {
        if (line.startsWith(":")) continue; // a comment: the heartbeat
        const colon = line.indexOf(":");
        const field = colon < 0 ? line : line.slice(0, colon);
        const value = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
        if (field === "event") event = value;
        else if (field === "data") data.push(value);
      }
      if (data.length) events.push({ event, data: data.join("\n") });
    }
    return { events, rest };
  }

  function connect({ headers, onVersion, onLive }) {
    let live = false;
    let failures = 0;
    let retryAt = 0; // performance.now() from which a failed stream may be reopened
    let controller = null; // of the stream open or being opened; null while down

    function setLive(value) {
      if (live === value) return;
      live = value;
      document.documentElement.dataset.push = value ? "live" : "off"; // for tests and styling
      onLive(value);
    }

    async function read(response, signal, watchdog) {
      const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
      let buffer = "";
      while (!signal.aborted) {
        const { value, done } = await reader.read();
        if (done) return;
        watchdog();
        const { events, rest } = parse(buffer + value);
        buffer = rest;
        for (const { event, data } of events) {
          if (event !== "version") continue;
          failures = 0;
          setLive(true);
          const body = JSON.parse(data);
          onVersion(body.data_version, body.totals ? body : null);
        }
      }
    }

    async function open() {
      const mine = new AbortController();
      controller = mine;
      let silence = 0;
      const watchdog = () => {
        clearTimeout(silence);
        silence = setTimeout(() => mine.abort(), SILENT_MS);
      };
      try {
        watchdog();
        const response = await fetch("events", {
          headers: headers("text/event-stream"),
          cache: "no-store",
          signal: mine.signal,
        });
        if (!response.ok || !response.body) throw new Error(`events: HTTP ${response.status}`);
        await read(response, mine.signal, watchdog);
      } catch (_) {
        /* a failed or cut stream: polling carries on, and this tries again */
      } finally {
        clearTimeout(silence);
      }
      if (controller !== mine) return; // restarted meanwhile
      controller = null;
      failures += 1;
      const delay = Math.min(RETRY_MAX_MS, RETRY_FIRST_MS * 2 ** (failures - 1));
      retryAt = performance.now() + delay * (0.8 + 0.4 * Math.random());
      setLive(false);
    }

    // A poll was answered: reopen a failed stream once its backoff has passed.
    function answered() {
      if (!controller && performance.now() >= retryAt) open();
    }

    // Drop the stream and open a new one now (e.g. with a new token).
    function restart() {
      const old = controller;
      controller = null;
      if (old) old.abort();
      failures = 0;
      setLive(false);
      open();
    }

    document.documentElement.dataset.push = "off";
    open();
    return { answered, restart, isLive: () => live };
  }

  return { connect, parse };
})();
