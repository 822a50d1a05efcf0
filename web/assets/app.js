// usrsvcweb's page script: live updates without reloading, buttons through
// the JSON API, log tails that follow. The page works without it: the
// buttons are plain forms and every value is rendered by the server.
"use strict";
(function () {
  const body = document.body;
  let offset = Number(body.dataset.now) * 1000 - Date.now(); // server clock − ours

  // Formatting, as the server renders it.
  function duration(s) {
    s = Math.max(0, Math.floor(s));
    if (s < 60) return s + "s";
    if (s < 3600) return Math.floor(s / 60) + "m " + (s % 60) + "s";
    if (s < 86400) return Math.floor(s / 3600) + "h " + Math.floor((s % 3600) / 60) + "m";
    return Math.floor(s / 86400) + "d " + Math.floor((s % 86400) / 3600) + "h";
  }
  function bytes(b) {
    if (!b || b <= 0) return "–";
    if (b < 1024) return b + " B";
    const u = "KMGTPE";
    let i = -1;
    do { b /= 1024; i++; } while (b >= 1024 && i < u.length - 1);
    return b.toFixed(1) + " " + u[i] + "iB";
  }
  function cpu(p) {
    if (p === undefined || p === null) return "–";
    return (p < 10 ? p.toFixed(1) : p.toFixed(0)) + "%";
  }
  function set(root, sel, text) {
    const el = root.querySelector(sel);
    if (el && el.textContent !== text) el.textContent = text;
    return el;
  }
  function setState(el, state) {
    for (const c of Array.from(el.classList)) if (c.startsWith("state-")) el.classList.remove(c);
    el.classList.add("state-" + state);
  }

  // One program's element: its row on /, its section on /program/NAME.
  function programEl(name) { return document.getElementById("p-" + name); }

  function newRow(name) {
    const tpl = document.getElementById("row-template");
    const tbody = document.querySelector("#programs tbody");
    if (!tpl || !tbody) return null;
    const row = tpl.content.firstElementChild.cloneNode(true);
    row.id = "p-" + name;
    row.dataset.name = name;
    const link = row.querySelector('[data-f="link"]');
    link.href = "/program/" + encodeURIComponent(name);
    link.textContent = name;
    for (const f of row.querySelectorAll("form.act")) {
      f.action = "/program/" + encodeURIComponent(name);
      f.dataset.api = "/api/v1/programs/" + encodeURIComponent(name) + "/";
    }
    // In name order, as the server lists them.
    const next = Array.from(tbody.rows).find((r) => r.dataset.name > name);
    tbody.insertBefore(row, next || null);
    return row;
  }

  function updateProgram(p) {
    let el = programEl(p.name);
    if (!el) {
      if (document.querySelector("main.program")) return; // another program's page
      el = newRow(p.name);
      if (!el) return;
    }
    setState(el, p.state);
    set(el, '[data-f="state"]', p.state);
    set(el, '[data-f="pid"]', p.pid ? String(p.pid) : "–");
    const up = el.querySelector('[data-f="uptime"]');
    if (up) { up.dataset.started = p.started_unix || 0; up.textContent = p.started_unix ? duration(p.uptime_seconds || 0) : "–"; }
    set(el, '[data-f="restarts"]', String(p.restarts || 0));
    set(el, '[data-f="last_exit"]', p.last_exit ? p.last_exit.description : "–");
    set(el, '[data-f="cpu"]', cpu(p.cpu_percent));
    set(el, '[data-f="rss"]', bytes(p.rss_bytes));
    set(el, '[data-f="private"]', bytes(p.private_bytes));
    set(el, '[data-f="monitors"]', p.monitors && p.monitors.length ? p.monitors.join("; ") : "–");
    set(el, '[data-f="cmdline"]', p.cmdline || "–");
    set(el, '[data-f="reason"]', p.reason || "–");
    set(el, '[data-f="next_try"]', p.next_try ? " next try at " + new Date(p.next_try).toLocaleTimeString([], { hour12: false }) : "");
    const health = set(el, '[data-f="health"]', p.health || "–");
    if (health) {
      for (const c of Array.from(health.classList)) if (c.startsWith("health-")) health.classList.remove(c);
      health.classList.add("health-" + (p.health || "none"));
      if (p.health === "unhealthy" && p.health_reason) health.title = p.health_reason; else health.removeAttribute("title");
    }
    // The reason of the last failed check, while it makes the program unhealthy.
    set(el, '[data-f="health_reason"]', p.health === "unhealthy" && p.health_reason ? p.health_reason +
      (p.health_at ? " (at " + new Date(p.health_at).toLocaleTimeString([], { hour12: false }) + ")" : "") : "");
    const reload = el.querySelector(".btn-reload");
    if (reload) {
      reload.hidden = !p.reload_signal;
      reload.title = p.reload_signal ? "send SIG" + p.reload_signal + " (reload_signal): the process stays the same" : "";
    }
    const stop = el.querySelector(".btn-stop");
    if (stop && p.self) stop.remove(); // this usrsvcweb: no Stop
  }

  function updateDaemon(d) {
    const banner = document.getElementById("daemon-down");
    if (banner) banner.hidden = d.running;
    const el = document.getElementById("daemon");
    if (!el) return;
    const st = set(el, '[data-d="state"]', d.running ? "running" : "not running");
    if (st) setState(st, d.running ? "running" : "stopped");
    set(el, '[data-d="pid"]', d.running ? String(d.pid) : "–");
    const up = el.querySelector('[data-d="uptime"]');
    if (up) { up.dataset.started = d.started_unix || 0; up.textContent = d.started_unix ? duration(d.uptime_seconds || 0) : "–"; }
    const rr = d.last_reread;
    let text = "none";
    if (rr) text = (rr.unix ? rr.time + " " : "") + (rr.ok ? "ok" : "failed") + (rr.message ? ": " + rr.message : "");
    set(el, '[data-d="reread"]', text);
    const probs = el.querySelector('[data-d="problems"]');
    if (probs) {
      probs.replaceChildren();
      if (rr && !rr.ok) for (const p of rr.problems || []) {
        const li = document.createElement("li");
        li.textContent = p;
        probs.appendChild(li);
      }
    }
  }

  // Uptimes count on between updates.
  setInterval(function () {
    const now = (Date.now() + offset) / 1000;
    for (const el of document.querySelectorAll("[data-started]")) {
      const s = Number(el.dataset.started);
      if (s > 0) el.textContent = duration(now - s);
    }
  }, 1000);

  // Live updates.
  const conn = document.getElementById("conn");
  function connected(ok) {
    if (!conn) return;
    conn.hidden = false;
    conn.textContent = ok ? "live" : "reconnecting…";
    conn.classList.toggle("off", !ok);
  }
  // A program's page follows its program and its logs on one stream (a
  // browser opens at most six connections to a server).
  const programPage = document.querySelector("main.program");
  if (window.EventSource) {
    const es = new EventSource(programPage ? programPage.dataset.events : "/api/v1/events");
    es.onopen = function () { connected(true); };
    es.onerror = function () { connected(false); };
    es.addEventListener("snapshot", function (e) {
      const o = JSON.parse(e.data);
      offset = Date.parse(o.time) - Date.now();
      updateDaemon(o.daemon);
      const names = new Set();
      for (const p of o.programs) { names.add(p.name); updateProgram(p); }
      for (const row of document.querySelectorAll("#programs tbody tr")) {
        if (!names.has(row.dataset.name)) row.remove();
      }
      connected(true);
    });
    es.addEventListener("program", function (e) { updateProgram(JSON.parse(e.data)); });
    es.addEventListener("daemon", function (e) { updateDaemon(JSON.parse(e.data)); });
    es.addEventListener("removed", function (e) {
      const el = programEl(JSON.parse(e.data).name);
      if (el && el.tagName === "TR") el.remove();
    });
    es.addEventListener("log", function (e) {
      const d = JSON.parse(e.data);
      const pre = document.querySelector('pre.tail[data-stream="' + d.stream + '"]');
      if (pre) appendLines(pre, d.lines);
    });
  }

  // Buttons: the same action through the JSON API, the row updated live.
  const flash = document.getElementById("flash");
  function say(ok, text) {
    if (!flash) return;
    flash.hidden = false;
    flash.className = "flash " + (ok ? "ok" : "bad");
    flash.textContent = text;
  }
  document.addEventListener("submit", async function (e) {
    const form = e.target;
    if (!form.classList.contains("act") || !form.dataset.api || !window.fetch) return;
    e.preventDefault();
    // The program's form has one button per action: the one clicked names it.
    const button = e.submitter || form.querySelector("button");
    const buttons = form.querySelectorAll("button");
    const holder = form.closest("[data-name]");
    for (const b of buttons) b.disabled = true;
    if (holder) holder.classList.add("busy");
    try {
      const resp = await fetch(form.dataset.api + (button.value || ""), { method: "POST", headers: { Accept: "application/json" } });
      let res = null;
      try { res = await resp.json(); } catch (_) { /* not JSON: a 403 page, a proxy's error */ }
      if (res && res.status) updateProgram(res.status);
      if (res && res.program) say(res.ok, res.ok ? res.program + ": " + res.message : res.message);
      else if (res && "ok" in res) say(res.ok, (res.ok ? "reread: " : "") + res.message);
      else say(false, resp.status + " " + resp.statusText);
    } catch (err) {
      say(false, "the server did not answer: " + err);
    } finally {
      for (const b of buttons) b.disabled = false;
      if (holder) holder.classList.remove("busy");
    }
  });

  // Log tails: the lines appended since, at the end, the oldest dropped.
  const maxLines = 2000;
  function appendLines(pre, lines) {
    const atEnd = pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 4;
    pre.appendChild(document.createTextNode(lines.join("\n") + "\n"));
    const text = pre.textContent.split("\n");
    if (text.length > maxLines + 1) pre.textContent = text.slice(text.length - maxLines - 1).join("\n");
    if (atEnd) pre.scrollTop = pre.scrollHeight;
  }
  for (const pre of document.querySelectorAll("pre.tail")) pre.scrollTop = pre.scrollHeight;
})();
