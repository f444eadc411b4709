// The dashboard: hash routes (#/, #/projects/P, #/jobs/ID, #/fleet) over the farm's read endpoints. Pages load
// their data once; after that only the hub's pushes (fleet, job, spend, budget) change them: no polling.
"use strict";

const view = document.getElementById("view");
const banner = document.getElementById("banner");
const live = document.getElementById("live");
let page = { dispose() {} };

// Cents for dollars; sub-cent attempt costs (a CPU core-second is a millionth of a dollar) keep six places.
const money = (v) => "$" + Number(v ?? 0).toFixed(Math.abs(v ?? 0) >= 1 ? 2 : Math.abs(v ?? 0) >= 0.01 ? 4 : 6);
const pct = (v) => (100 * (v ?? 0)).toFixed(1) + "%";
const esc = (s) => String(s ?? "").replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);
const when = (t) => (t ? new Date(t).toLocaleString() : "");
const energy = (p) => `${p.energyKwh.toFixed(4)} kWh`;
// Grams below a kilogram: a preview's few grams would read as 0.000 kg.
const co2e = (p) => (p.co2eGrams >= 1000 ? `${(p.co2eGrams / 1000).toFixed(3)} kg` : `${p.co2eGrams.toFixed(2)} g`) + " CO2e";
const bar = (progress, state) => `<span class="bar" data-state="${esc(state)}" data-progress="${progress}"><span style="width:${pct(progress)}"></span></span> ${pct(progress)}`;

// The farm answers only with an API key. It comes once in the address (#key=… is never sent to the server) or from
// a prompt, and stays in this browser's local storage.
const keyName = "pfilm-api-key";
const keyInAddress = new URLSearchParams(location.hash.split("?")[1] ?? "").get("key");
if (keyInAddress) {
  localStorage.setItem(keyName, keyInAddress);
  history.replaceState(null, "", location.hash.split("?")[0] || "#/");
}
function apiKey() {
  let key = localStorage.getItem(keyName);
  if (!key) {
    key = (prompt("API key for this farm (viewer or better):") ?? "").trim();
    if (key) localStorage.setItem(keyName, key);
  }
  return key ?? "";
}

/** GET as JSON; null when the endpoint or the thing is absent (404), so optional parts just do not show. */
async function api(path) {
  const response = await fetch(path, { headers: { Accept: "application/json", "X-Api-Key": apiKey() } });
  if (response.status === 401) {
    localStorage.removeItem(keyName);
    throw new Error(`${path}: the API key was refused; reload to enter another`);
  }
  if (response.status === 404) return null;
  if (!response.ok) throw new Error(`${path}: HTTP ${response.status}`);
  return response.json();
}

/** POST as JSON; the answer's problem detail becomes the error's message. */
async function post(path, body) {
  const response = await fetch(path, { method: "POST", headers: { Accept: "application/json", "Content-Type": "application/json", "X-Api-Key": apiKey() }, body: JSON.stringify(body) });
  const answer = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(answer.detail || `${path}: HTTP ${response.status}`);
  return answer;
}

/** Runs fn at most once per wait, after the last call: a burst of pushes costs one reload. */
function debounce(fn, wait = 300) {
  let timer;
  return (...args) => { clearTimeout(timer); timer = setTimeout(() => fn(...args), wait); };
}

// ---- live channel
const hub = new signalR.HubConnectionBuilder().withUrl("/hubs/farm", { accessTokenFactory: apiKey }).withAutomaticReconnect().build();
const watched = new Set();
const handlers = { fleet: [], job: [], spend: [], budget: [] };
for (const name of Object.keys(handlers)) hub.on(name, (message) => handlers[name].forEach((h) => h(message)));
function on(name, handler) { handlers[name].push(handler); return () => handlers[name].splice(handlers[name].indexOf(handler), 1); }

async function watch(projects) {
  for (const p of projects) {
    if (watched.has(p)) continue;
    watched.add(p);
    if (hub.state === "Connected") await hub.invoke("WatchProject", p).catch(() => watched.delete(p));
  }
}

function setLive(state, text) { live.dataset.state = state; live.textContent = text; }
hub.onreconnecting(() => setLive("reconnecting", "reconnecting…"));
hub.onreconnected(async () => {
  setLive("live", "live");
  for (const p of watched) await hub.invoke("WatchProject", p);
  route(); // anything missed while away is read again
});
hub.onclose(() => setLive("closed", "offline: reload the page"));
const connected = hub.start().then(async () => {
  setLive("live", "live");
  for (const p of watched) await hub.invoke("WatchProject", p);
}).catch(() => setLive("closed", "live updates unavailable"));

// ---- budget banner (GET /api/projects/{p}/budget; absent endpoint or no budget: no banner)
async function showBudget(project) {
  const budget = await api(`/api/projects/${encodeURIComponent(project)}/budget`).catch(() => null);
  if (budget && (budget.state === "soft" || budget.state === "hard")) {
    banner.hidden = false;
    banner.dataset.state = budget.state;
    banner.textContent = budget.state === "hard"
      ? `Project ${project} reached its budget: ${money(budget.spentUsd)} of ${money(budget.limitUsd)}. Nothing new is dispatched until the budget is raised.`
      : `Project ${project} has spent ${money(budget.spentUsd)} of its ${money(budget.limitUsd)} budget (${pct(budget.spentUsd / budget.limitUsd)}).`;
  } else {
    banner.hidden = true;
    delete banner.dataset.state;
  }
  return budget;
}

// ---- pages
async function projectsPage() {
  const [projects, fleet] = await Promise.all([api("/api/projects"), api("/api/fleet")]);
  const budgets = await Promise.all(projects.map((p) => api(`/api/projects/${encodeURIComponent(p.project)}/budget`).catch(() => null)));
  view.innerHTML = `<h1>Projects</h1>
    <table id="projects"><thead><tr><th>project</th><th class="num">jobs</th><th class="num">active</th><th class="num">spent</th>
      <th class="num">burn rate</th><th class="num">device time</th><th class="num">energy</th><th class="num">CO2e</th><th>budget</th></tr></thead><tbody>
    ${projects.map((p, i) => `<tr data-project="${esc(p.project)}"><td><a href="#/projects/${encodeURIComponent(p.project)}">${esc(p.project)}</a></td>
      <td class="num">${p.jobs}</td><td class="num">${p.activeJobs}</td><td class="num spent">${money(p.spentUsd)}</td>
      <td class="num">${money(p.burnUsdPerHour)}/h</td><td class="num">${(p.deviceSeconds / 3600).toFixed(3)} h</td>
      <td class="num">${energy(p)}</td><td class="num co2e">${co2e(p)}</td>
      <td>${budgets[i] && budgets[i].limitUsd != null ? `<span class="state ${esc(budgets[i].state)}">${money(budgets[i].spentUsd)} of ${money(budgets[i].limitUsd)}</span>` : '<span class="muted">none</span>'}</td></tr>`).join("")}
    </tbody></table>
    ${projects.length ? "" : '<p class="muted">No jobs yet: submit one with <code>pfilm submit</code> or POST /api/projects/{project}/jobs.</p>'}
    <h2>Fleet</h2><div id="pools"></div>`;
  renderPools(fleet);
  await watch(projects.map((p) => p.project));
  const reload = debounce(route, 500);
  const offs = [on("fleet", renderPools), on("spend", reload), on("job", (j) => { if (!projects.some((p) => p.project === j.project)) reload(); })];
  return { dispose() { offs.forEach((off) => off()); } };
}

function renderPools(fleet) {
  const target = document.getElementById("pools");
  if (!target || !fleet) return;
  target.innerHTML = `<table class="pools"><thead><tr><th>pool</th><th class="num">workers</th><th class="num">lost</th><th class="num">slots</th>
    <th class="num">busy</th><th>utilisation</th><th class="num">queued preview</th><th class="num">queued batch</th></tr></thead><tbody>
    ${fleet.pools.map((p) => `<tr data-pool="${esc(p.pool)}"><td>${esc(p.pool)}</td><td class="num">${p.liveWorkers}</td><td class="num">${p.lostWorkers}</td>
      <td class="num">${p.slots}</td><td class="num busy">${p.busySlots}</td><td>${bar(p.utilization, "")}</td>
      <td class="num">${p.queuedPreview}</td><td class="num">${p.queuedBatch}</td></tr>`).join("")}</tbody></table>`;
}

async function projectPage(project) {
  await watch([project]);
  let bucket = sessionStorage.getItem("bucket") || "minute";
  view.innerHTML = `<h1>Project ${esc(project)}</h1>
    <div class="stats" id="stats"></div>
    <h2>Spend <select id="bucket">${["minute", "hour", "day"].map((b) => `<option ${b === bucket ? "selected" : ""}>${b}</option>`).join("")}</select></h2>
    <div class="chart" id="spend-chart"></div>
    <h2>Jobs</h2><table id="jobs"><thead><tr><th>job</th><th>state</th><th>progress</th><th class="num">tasks</th><th class="num">cost so far</th></tr></thead><tbody></tbody></table>
    <h2>Budget alerts</h2><div id="alerts"></div>
    <h2>Quote accuracy</h2><div id="accuracy"></div>`;
  let chart = null;
  // Every crossing of the project's budget and of its jobs' own (GET /api/projects/{p}/budget/alerts), newest first;
  // read again on each budget push, which names the project whoever's budget was crossed. A soft and a hard crossing
  // arrive together: only the latest read is drawn, so an earlier answer arriving late cannot hide the newest row.
  let alertReads = 0;
  const drawAlerts = async () => {
    const read = ++alertReads;
    const alerts = await api(`/api/projects/${encodeURIComponent(project)}/budget/alerts?limit=50`).catch(() => null);
    const target = document.getElementById("alerts");
    if (!alerts || !target || read !== alertReads) return;
    target.innerHTML = alerts.length ? `<table id="budget-alerts"><thead><tr><th>crossed</th><th>level</th><th>budget</th>
      <th class="num">spent at crossing</th><th class="num">limit</th></tr></thead><tbody>
      ${alerts.map((a) => `<tr data-alert="${a.id}" data-level="${esc(a.level)}"><td>${when(a.crossedAt)}</td>
        <td><span class="state ${esc(a.level)}">${esc(a.level)}</span></td>
        <td class="whose">${a.jobId ? `job <a href="#/jobs/${esc(a.jobId)}">${esc(a.jobId.slice(0, 8))}</a>` : `project ${esc(a.project)}`}</td>
        <td class="num spent">${money(a.spentUsd)}</td><td class="num">${money(a.limitUsd)}</td></tr>`).join("")}</tbody></table>`
      : '<p class="muted">No budget threshold crossed yet.</p>';
  };
  // Per kind of take (engine, size, steps): how far finished takes' cost was from their quote.
  const drawAccuracy = async () => {
    const accuracy = await api(`/api/projects/${encodeURIComponent(project)}/quotes/accuracy`).catch(() => null);
    const target = document.getElementById("accuracy");
    if (!accuracy || !target) return;
    const err = (v) => (v == null ? "–" : pct(v));
    target.innerHTML = accuracy.kinds.length ? `<table id="quote-accuracy"><thead><tr><th>kind</th><th class="num">shots</th><th class="num">median |error|</th>
      <th class="num">median error</th><th class="num">quoted after 20 shots</th><th class="num">their median |error|</th></tr></thead><tbody>
      ${accuracy.kinds.map((k) => `<tr data-kind="${esc(k.kind)}"><td>${esc(k.kind)}</td><td class="num">${k.shots}</td><td class="num">${err(k.medianAbsError)}</td>
        <td class="num">${k.medianError == null ? "–" : (k.medianError >= 0 ? "+" : "") + pct(k.medianError)}</td><td class="num">${k.settledShots}</td>
        <td class="num settled">${err(k.settledMedianAbsError)}</td></tr>`).join("")}</tbody></table>`
      : '<p class="muted">No finished shots with a quote yet.</p>';
  };
  const drawSpend = async () => {
    const [series, budget, projects] = await Promise.all([
      api(`/api/projects/${encodeURIComponent(project)}/spend/series?bucket=${bucket}`),
      showBudget(project),
      api("/api/projects"),
    ]);
    const summary = projects.find((p) => p.project === project);
    document.getElementById("stats").innerHTML = summary ? `
      <div class="stat"><small>spent</small><b id="spent">${money(summary.spentUsd)}</b></div>
      <div class="stat"><small>burn rate (last hour)</small><b>${money(summary.burnUsdPerHour)}/h</b></div>
      <div class="stat"><small>budget</small><b>${budget && budget.limitUsd != null ? money(budget.limitUsd) : "none"}</b></div>
      <div class="stat"><small>energy</small><b>${energy(summary)}</b><small id="co2e">${co2e(summary)}</small></div>
      <div class="stat"><small>jobs (active)</small><b>${summary.jobs} (${summary.activeJobs})</b></div>` : "";
    // Cumulative spend from the window's start, with the budget as a flat line when there is one.
    const xs = [], cumulative = [], perBucket = [], limit = [];
    let total = 0;
    for (const p of series.points) {
      total += p.costUsd;
      xs.push(Date.parse(p.at) / 1000); cumulative.push(total); perBucket.push(p.costUsd);
      limit.push(budget && budget.limitUsd != null ? budget.limitUsd : null);
    }
    const element = document.getElementById("spend-chart");
    element.dataset.points = String(xs.length);
    const data = [xs, cumulative, perBucket, limit];
    if (chart) { chart.setData(data); return; }
    element.innerHTML = xs.length ? "" : '<p class="muted">Nothing billed in this window yet.</p>';
    chart = new uPlot({
      width: Math.min(1150, element.clientWidth - 16), height: 260,
      series: [{}, { label: "spent (cumulative)", stroke: "#2f6fde", width: 2, value: (u, v) => (v == null ? "" : money(v)) },
        { label: `per ${bucket}`, stroke: "#2e9d5b", paths: uPlot.paths.bars({ size: [0.6, 40] }), fill: "rgba(46,157,91,.25)", value: (u, v) => (v == null ? "" : money(v)) },
        { label: "budget", stroke: "#c8372d", dash: [6, 4], value: (u, v) => (v == null ? "" : money(v)) }],
      axes: [{}, { values: (u, ticks) => ticks.map((t) => "$" + Number(t.toPrecision(3))), size: 80 }],
    }, data, element);
  };
  const drawJobs = async () => {
    const jobs = await api(`/api/projects/${encodeURIComponent(project)}/jobs/progress?limit=50`);
    document.querySelector("#jobs tbody").innerHTML = jobs.map(jobRow).join("");
  };
  document.getElementById("bucket").onchange = (e) => { bucket = e.target.value; sessionStorage.setItem("bucket", bucket); chart?.destroy(); chart = null; drawSpend(); };
  await Promise.all([drawSpend(), drawJobs(), drawAccuracy(), drawAlerts()]);
  const offs = [
    on("spend", debounce((m) => m.project === project && (drawSpend(), drawAccuracy()), 500)),
    on("budget", (m) => { if (m.project !== project) return; drawAlerts(); if (m.jobId == null) drawSpend(); }),
    on("job", (job) => {
      if (job.project !== project) return;
      const row = document.querySelector(`#jobs tr[data-job="${job.id}"]`);
      if (row) row.outerHTML = jobRow(job); else drawJobs();
    }),
  ];
  return { dispose() { offs.forEach((off) => off()); chart?.destroy(); } };
}

function jobRow(job) {
  return `<tr data-job="${job.id}"><td><a href="#/jobs/${job.id}">${esc(job.name || job.id)}</a></td>
    <td><span class="state ${esc(job.state)}">${esc(job.state)}${job.paused ? " (paused)" : ""}</span> ${job.error ? `<span class="muted">${esc(job.error)}</span>` : ""}</td>
    <td>${bar(job.progress, job.state)}</td><td class="num">${job.tasksSucceeded}/${job.tasksTotal}</td><td class="num cost">${money(job.costUsd)}</td></tr>`;
}

async function jobPage(id) {
  const job = await api(`/api/jobs/${id}`);
  if (!job) { view.innerHTML = `<h1>No job ${esc(id)}</h1>`; return { dispose() {} }; }
  await watch([job.project]);
  await showBudget(job.project);
  view.innerHTML = `<h1>${esc(job.name || "Job")} <span class="muted">in <a href="#/projects/${encodeURIComponent(job.project)}">${esc(job.project)}</a></span></h1>
    <div id="job-banner" class="budget-banner" hidden></div>
    <div class="stats" id="job-stats"></div><div id="quote"></div><div id="shots"></div>`;
  // A push can start a redraw just before the page is left: what it fetched must not be drawn into the next page.
  let left = false;
  // The job's own budget (GET /api/jobs/{id}/budget), beside its project's in the page banner: shown from its soft
  // threshold on, like the project's.
  const drawJobBudget = async () => {
    const budget = await api(`/api/jobs/${id}/budget`).catch(() => null);
    if (left) return;
    const element = document.getElementById("job-banner");
    if (budget && budget.limitUsd != null && (budget.state === "soft" || budget.state === "hard")) {
      element.hidden = false;
      element.dataset.state = budget.state;
      element.textContent = budget.state === "hard"
        ? `This job reached its own budget: ${money(budget.spentUsd)} of ${money(budget.limitUsd)}. Nothing new of it is dispatched until its budget is raised.`
        : `This job has spent ${money(budget.spentUsd)} of its own ${money(budget.limitUsd)} budget (${pct(budget.spentUsd / budget.limitUsd)}).`;
    } else {
      element.hidden = true;
      delete element.dataset.state;
    }
  };
  const drawHeader = (j) => {
    document.getElementById("job-stats").innerHTML = `
      <div class="stat"><small>state</small><b><span class="state ${esc(j.state)}" id="job-state">${esc(j.state)}${j.paused ? " (paused)" : ""}</span></b></div>
      <div class="stat"><small>progress</small><b id="job-progress">${bar(j.progress, j.state)}</b></div>
      <div class="stat"><small>tasks</small><b>${j.tasksSucceeded}/${j.tasksTotal}</b></div>
      <div class="stat"><small>cost so far</small><b id="job-cost">${money(j.costUsd ?? j.cost)}</b></div>
      ${j.error ? `<div class="stat"><small>error</small><b class="muted">${esc(j.error)}</b></div>` : ""}`;
  };
  const drawQuote = async () => {
    const quote = await api(`/api/jobs/${id}/quote`).catch(() => null);
    if (left) return;
    document.getElementById("quote").innerHTML = quote ? `<div class="stats">
      <div class="stat"><small>quote</small><b id="quote-cost">${money(quote.costUsd)}</b><small>${money(quote.lowUsd)} to ${money(quote.highUsd)}</small></div>
      <div class="stat"><small>actual</small><b id="quote-actual">${quote.actualCostUsd != null ? money(quote.actualCostUsd) : "rendering"}</b>
        <small>${quote.errorFraction != null ? `${quote.errorFraction >= 0 ? "+" : ""}${pct(quote.errorFraction)} against the quote` : ""}</small></div>
      <div class="stat"><small>quoted device time</small><b>${(quote.deviceSeconds / 3600).toFixed(3)} h</b><small>wall ${Math.round(quote.wallSeconds)} s, ${Number(quote.energyKwh ?? 0).toFixed(4)} kWh</small></div></div>` : "";
  };
  const drawShots = async (j, stillWanted = () => true) => {
    const timelines = await Promise.all(j.shots.map((s) => api(`/api/shots/${s.id}/timeline?limit=500`)));
    if (left || !stillWanted()) return;
    document.getElementById("shots").innerHTML = j.shots.map((s, i) => shotCard(s, timelines[i])).join("");
  };
  drawHeader(job);
  await Promise.all([drawJobBudget(), drawQuote(), drawShots(job)]);
  // The header is drawn from pushes only: they arrive in the order the server read them, while a reload's answer can
  // land after a newer push and draw an older progress over it. A reload overtaken by a newer one draws nothing.
  let reloads = 0;
  const reload = debounce(async () => {
    const mine = ++reloads;
    const fresh = await api(`/api/jobs/${id}`);
    const current = () => mine === reloads;
    if (left || !current()) return;
    await drawShots(fresh, current);
    if (fresh.finishedAt) await drawQuote();
  }, 700);
  const offs = [
    on("job", (j) => { if (j.id === id) { drawHeader(j); reload(); } }),
    on("spend", debounce((m) => m.project === job.project && (showBudget(job.project), drawJobBudget()), 500)),
    on("budget", (m) => { if (m.project !== job.project) return; if (m.jobId === id) drawJobBudget(); else if (m.jobId == null) showBudget(job.project); }),
  ];
  return { dispose() { left = true; offs.forEach((off) => off()); } };
}

function shotCard(shot, timeline) {
  const keyframes = timeline ? timeline.keyframes : [];
  const step = Math.max(1, Math.ceil(keyframes.length / 10));
  const thumbs = keyframes.filter((_, i) => i % step === 0).map((f) =>
    `<figure><img loading="lazy" alt="frame ${f}" src="/api/shots/${shot.id}/frames/${f}?access_token=${encodeURIComponent(apiKey())}" onerror="this.parentElement.remove()"><figcaption>${f}</figcaption></figure>`).join("");
  return `<section class="shot" data-shot="${shot.id}">
    <header><b>${esc(shot.name)}</b><span class="state ${esc(shot.state)}">${esc(shot.state)}</span>${bar(shot.progress, shot.state)}
      <span>${shot.frameCount} frames, ${esc(shot.engine)}</span><span class="shot-cost">${money(shot.cost)}</span>
      ${shot.flicker != null ? `<span class="muted">flicker ${shot.flicker.toFixed(4)}</span>` : ""}
      ${shot.name.includes("#") ? `<a class="takes-link" href="#/takes/${shot.id}">compare takes</a>` : ""}</header>
    ${shot.error ? `<p class="muted">${esc(shot.error)}</p>` : ""}
    <div class="thumbs">${thumbs}</div>
    ${shot.video ? `<video controls preload="metadata" src="/api/shots/${shot.id}/video?access_token=${encodeURIComponent(apiKey())}"></video>` : ""}
    ${timeline ? timelineOf(timeline) : ""}
  </section>`;
}

/** The attempts on a shared time axis, one row per task (retries share their task's row). */
function timelineOf(timeline) {
  const attempts = timeline.attempts;
  if (!attempts.length) return '<p class="muted">No attempts yet.</p>';
  const now = Date.now();
  const start = (a) => Date.parse(a.claimedAt || a.createdAt);
  const end = (a) => (a.finishedAt ? Date.parse(a.finishedAt) : now);
  const t0 = Math.min(...attempts.map(start)), t1 = Math.max(...attempts.map(end), t0 + 1);
  const rows = new Map();
  for (const a of attempts) (rows.get(a.task) || rows.set(a.task, []).get(a.task)).push(a);
  const x = (t) => ((100 * (t - t0)) / (t1 - t0)).toFixed(2);
  return `<div class="timeline" data-attempts="${attempts.length}"><p class="muted">attempts over ${((t1 - t0) / 1000).toFixed(1)} s${timeline.truncated ? " (first 500)" : ""}</p>
    ${[...rows].map(([task, list]) => `<div class="row"><label>${esc(task)}</label><div class="lane">${list.map((a) =>
      `<span class="span ${esc(a.state)}" style="left:${x(start(a))}%;width:${(x(end(a)) - x(start(a))).toFixed(2)}%"
        title="${esc(`${a.task} #${a.number} ${a.state} on ${a.worker ?? "?"}: ${a.deviceSeconds.toFixed(2)} device-s${a.costUsd != null ? ", " + money(a.costUsd) : ""}${a.failureClass ? ", " + a.failureClass : ""}`)}"></span>`).join("")}</div></div>`).join("")}
  </div>`;
}

async function fleetPage() {
  const fleet = await api("/api/fleet");
  view.innerHTML = `<h1>Fleet</h1><div id="pools"></div>
    <h2>Utilisation and queue depth since this page opened</h2><div class="chart" id="fleet-chart"></div>
    <h2>Workers</h2><table id="workers"><thead><tr><th>worker</th><th>pool</th><th>device</th><th>state</th><th class="num">running</th><th>last seen</th></tr></thead><tbody></tbody></table>`;
  const history = [[], [], []];
  const element = document.getElementById("fleet-chart");
  const chart = new uPlot({
    width: Math.min(1150, element.clientWidth - 16), height: 200,
    series: [{}, { label: "utilisation", stroke: "#2f6fde", scale: "%", value: (u, v) => (v == null ? "" : pct(v)) }, { label: "queued tasks", stroke: "#d98e04", scale: "n" }],
    scales: { "%": { range: [0, 1] }, n: { range: (u, min, max) => [0, Math.max(4, max)] } },
    axes: [{}, { scale: "%", values: (u, t) => t.map(pct), size: 60 }, { scale: "n", side: 1 }],
  }, history, element);
  const draw = (f) => {
    renderPools(f);
    document.querySelector("#workers tbody").innerHTML = f.workers.map((w) => `<tr data-worker="${esc(w.id)}"><td>${esc(w.id)}</td><td>${esc(w.pool)}</td>
      <td>${esc(w.deviceName || w.deviceSku)} ×${w.deviceCount}</td><td><span class="state ${esc(w.state)}">${esc(w.state)}</span></td>
      <td class="num">${w.runningAttempts}/${w.slots}</td><td>${when(w.lastSeenAt)}</td></tr>`).join("");
    const slots = f.pools.reduce((s, p) => s + p.slots, 0), busy = f.pools.reduce((s, p) => s + p.busySlots, 0);
    history[0].push(Date.now() / 1000); history[1].push(slots ? busy / slots : 0);
    history[2].push(f.pools.reduce((s, p) => s + p.queuedPreview + p.queuedBatch, 0));
    element.dataset.points = String(history[0].length);
    chart.setData(history);
    // At least the last five minutes on the time axis, so that the first few points do not span years.
    const now = history[0][history[0].length - 1];
    chart.setScale("x", { min: Math.min(history[0][0], now - 300), max: now });
  };
  draw(fleet);
  const off = on("fleet", draw);
  return { dispose() { off(); chart.destroy(); } };
}

/** What a variant changed, as "seed 11 · guidance 3": the parameters it leaves to the shot are not listed. */
const overridesOf = (overrides) => Object.entries(overrides ?? {})
  .filter(([, value]) => value != null)
  .map(([name, value]) => `${esc(name)} ${esc(String(value))}`)
  .join(" · ");

/** A shot's takes side by side (GET /api/shots/{id}/takes): strip, player, signals, cost, review; approve or reject. */
async function takesPage(id) {
  const fmt = (v, digits = 3) => (v == null ? "–" : v.toFixed(digits));
  const draw = async () => {
    const shot = await api(`/api/shots/${id}/takes`);
    if (!shot) { view.innerHTML = `<h1>No shot ${esc(id)}</h1>`; return; }
    const token = encodeURIComponent(apiKey());
    view.innerHTML = `<h1>${esc(shot.name)} <span class="muted">takes, in <a href="#/projects/${encodeURIComponent(shot.project)}">${esc(shot.project)}</a></span></h1>
      <p id="current-version">${shot.current ? `Current version: v${shot.current.version} = take ${shot.current.takeNumber}, approved by ${esc(shot.current.approvedBy)}` : "No take approved yet"}</p>
      <p class="muted" id="take-error"></p>
      <div class="takes">${shot.takes.map((t) => `<section class="take${t.current ? " current" : ""}" data-take="${t.number}">
        <header><b>Take ${t.number}</b> <span class="state ${esc(t.state)}">${esc(t.state)}</span> <span class="review">${esc(t.review)}</span></header>
        <p class="muted overrides">${overridesOf(t.overrides) || "the shot as specified"}${t.reviewNote ? ` · “${esc(t.reviewNote)}”` : ""}</p>
        <div class="strip">${t.keyframes.map((k) => `<img loading="lazy" alt="keyframe ${k.frame}" src="${k.url}?access_token=${token}">`).join("")}</div>
        ${t.videoUrl ? `<video controls loop preload="metadata" src="${t.videoUrl}?access_token=${token}"></video>` : ""}
        <table class="signals"><tr><td>seed</td><td class="num">${t.parameters.seed}</td><td>guidance</td><td class="num">${t.parameters.guidance}</td></tr>
          <tr><td>flicker</td><td class="num flicker">${fmt(t.metrics.flicker)}</td><td>seam</td><td class="num seam">${fmt(t.metrics.seamError)}</td></tr>
          <tr><td>adherence</td><td class="num adherence">${fmt(t.metrics.promptAdherence)}</td><td>cost</td><td class="num take-cost">${money(t.cost)}</td></tr>
          ${t.metrics.anchorPaletteDrift == null && t.metrics.anchorColourDrift == null ? "" : `<tr><td>palette drift</td><td class="num palette-drift">${fmt(t.metrics.anchorPaletteDrift)}</td><td>colour drift</td><td class="num colour-drift">${fmt(t.metrics.anchorColourDrift)}</td></tr>`}
          <tr><td>reused</td><td class="num">${t.reusedTasks}</td><td colspan="2"></td></tr></table>
        <p class="muted manifest"><code>${esc(t.manifestUrl)}</code></p>
        ${t.state === "Succeeded" && !t.current ? `<button data-approve="${t.id}">Approve</button> <button data-reject="${t.id}">Reject…</button>` : ""}
      </section>`).join("")}</div>`;
  };
  view.onclick = async (event) => {
    const approve = event.target.dataset?.approve, reject = event.target.dataset?.reject;
    if (!approve && !reject) return;
    try {
      if (approve) await post(`/api/shots/${approve}/approve`, {});
      else await post(`/api/shots/${reject}/reject`, { note: prompt("Why is this take rejected?") ?? "" });
      await draw();
    } catch (error) {
      document.getElementById("take-error").textContent = error.message;
    }
  };
  await draw();
  return { dispose() { view.onclick = null; } };
}

async function route() {
  page.dispose();
  page = { dispose() {} };
  banner.hidden = true;
  const hash = location.hash.replace(/^#/, "") || "/";
  let match;
  try {
    await connected;
    if ((match = hash.match(/^\/projects\/([^/]+)$/))) page = await projectPage(decodeURIComponent(match[1]));
    else if ((match = hash.match(/^\/jobs\/([0-9a-f-]{36})$/i))) page = await jobPage(match[1]);
    else if ((match = hash.match(/^\/takes\/([0-9a-f-]{36})$/i))) page = await takesPage(match[1]);
    else if (hash === "/fleet") page = await fleetPage();
    else page = await projectsPage();
    document.body.dataset.loaded = hash;
  } catch (error) {
    view.innerHTML = `<h1>Could not load this page</h1><p class="muted">${esc(error.message)}</p>`;
  }
}

window.addEventListener("hashchange", route);
route();
