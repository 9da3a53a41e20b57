// Sluice dashboard: refreshes each live region from its own URL, and runs the action buttons.
// A live region is an element with data-live="URL": the server renders the same HTML there.
// With data-events="URL" (/api/events, server-sent events) it is refreshed when a job event
// comes, and polled only slowly, as a safety net; while the stream is down it polls every
// data-interval ms as before (the browser reconnects the stream by itself).
// An action is a button with data-action="URL" (data-method, data-confirm, data-done,
// data-then): it calls the HTTP API with the login cookie and the X-Requested-With header.
"use strict";

(() => {
  const HEADERS = { "X-Requested-With": "sluice" };
  const shown = new WeakMap();

  function flash(text, ok) {
    const box = document.getElementById("flash");
    box.textContent = text;
    box.className = ok ? "ok" : "bad";
    box.hidden = false;
    clearTimeout(flash.timer);
    flash.timer = setTimeout(() => { box.hidden = true; }, 6000);
  }

  async function refresh(region) {
    try {
      const response = await fetch(region.dataset.live, {
        headers: HEADERS, credentials: "same-origin", cache: "no-store",
      });
      if (!response.ok) throw new Error(`HTTP ${response.status}`);
      const html = await response.text();
      if (shown.get(region) !== html) {
        region.innerHTML = html;
        shown.set(region, html);
      }
      region.classList.remove("stale");
      region.removeAttribute("title");
    } catch (error) {
      region.classList.add("stale");  // keep the last view, marked as out of date
      region.title = `not updating: ${error.message}`;
    }
  }

  function refreshAll() {
    return Promise.all([...document.querySelectorAll("[data-live]")].map(refresh));
  }

  const SLOW_MS = 15000;  // the poll while the event stream is up
  const GAP_MS = 500;  // at most one refresh this often, however many events come
  const TRAIL_MS = 2500;  // and one more after the last, past the server's 2 s job listing cache

  function poll(region) {
    const every = Number(region.dataset.interval) || 1500;
    const stream = region.dataset.events && window.EventSource
      ? new EventSource(region.dataset.events) : null;
    const up = () => stream !== null && stream.readyState === EventSource.OPEN;
    let timer = null;
    let soon = null;
    const schedule = (ms) => {
      clearTimeout(timer);
      timer = setTimeout(tick, ms);
    };
    const tick = async () => {
      if (!document.hidden) await refresh(region);
      schedule(up() ? SLOW_MS : every);
    };
    if (stream) {
      stream.onmessage = () => {
        if (soon === null && !document.hidden) {
          soon = setTimeout(() => { soon = null; refresh(region); }, GAP_MS);
        }
        schedule(TRAIL_MS);
      };
      stream.onopen = () => schedule(SLOW_MS);
      stream.onerror = () => schedule(every);  // down: poll as before until it reopens
    }
    document.addEventListener("visibilitychange", () => {
      if (!document.hidden) schedule(0);
    });
    schedule(every);
  }

  async function act(button) {
    if (button.dataset.confirm && !window.confirm(button.dataset.confirm)) return;
    button.disabled = true;
    try {
      const response = await fetch(button.dataset.action, {
        method: button.dataset.method || "POST", headers: HEADERS, credentials: "same-origin",
      });
      const body = await response.json().catch(() => ({}));
      if (!response.ok) {
        flash(body.message || `failed: HTTP ${response.status}`, false);
      } else if (button.dataset.then) {
        window.location.assign(button.dataset.then);
        return;
      } else {
        flash(button.dataset.done || "done", true);
      }
    } catch (error) {
      flash(`failed: ${error.message}`, false);
    } finally {
      button.disabled = false;
    }
    await refreshAll();
  }

  document.addEventListener("click", (event) => {
    const button = event.target.closest("[data-action]");
    if (!button) return;
    event.preventDefault();
    act(button);
  });

  document.addEventListener("DOMContentLoaded", () => {
    document.querySelectorAll("[data-live]").forEach(poll);
  });
})();
