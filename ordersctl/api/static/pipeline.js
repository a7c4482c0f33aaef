"use strict";
// The Pipeline view of the web page: /pipeline/status and /pipeline/dead-letters, asked again every few
// seconds while the view is on screen. Charts are drawn here as inline SVG: the page loads nothing but its
// own files. Uses $, esc and headers() of the page's own script, which is loaded before this one.
(() => {
  const REFRESH_MS = 3000;
  const RATE_SAMPLES = 6;  // the rate is averaged over about this many refreshes (~15 s): the statistics
                           // it comes from are reported by each PostgreSQL session about once a second
  const HISTORY = 40;      // rates kept for the chart (~2 min)
  const samples = [];      // {t: ms, n: orders rows written}, from successive status reads
  const rates = [];        // {t: ms, v: orders/s}
  let generation = 0;      // a refresh loop carries on only while its generation is the current one
  let shownAt = null;      // checked_at of the status on screen

  const fmt = (n) => Number(n).toLocaleString("en-US");
  const utc = (iso) => (iso ? esc(iso.replace("T", " ").replace(/\.\d+Z$/, "").replace("Z", "")) + " UTC" : "–");
  const clock = (iso) => (iso ? esc(iso.slice(11, 19)) + " UTC" : "");
  const rateText = (v) => (v >= 10 ? fmt(Math.round(v)) : v.toFixed(1));

  async function getJson(path) {
    const r = await fetch(path, {headers: headers(), cache: "no-store"});
    if (r.status === 401) throw new Error("an API token is required: enter it at the top right");
    // An answer that is not our JSON (a proxy's error page, say) still says what failed, by its status.
    const body = await r.json().catch(() => null);
    if (!r.ok || body === null) {
      throw new Error(body && body.error ? `${body.error}: ${body.detail}` : `${path} answered ${r.status} ${r.statusText}`);
    }
    return body;
  }

  // Stored orders/s from the rise of the orders table's "inserted" figure between status reads. Reads of
  // the same moment (the server shares one read for 2 s, and with serve --processes N another process may
  // answer with an older one) are skipped; a figure that went down means PostgreSQL's statistics were reset.
  function addSample(status) {
    const stored = status.stored_orders;
    if (!stored) return;
    const t = Date.parse(status.checked_at);
    const last = samples[samples.length - 1];
    if (last && t <= last.t) return;
    if (last && stored.inserted < last.n) samples.length = 0;
    samples.push({t, n: stored.inserted});
    if (samples.length > RATE_SAMPLES) samples.shift();
    if (samples.length < 2) return;
    const first = samples[0];
    rates.push({t, v: (stored.inserted - first.n) / ((t - first.t) / 1000)});
    if (rates.length > HISTORY) rates.shift();
  }

  function svg(width, height, inner, label) {
    return `<svg viewBox="0 0 ${width} ${height}" role="img" aria-label="${esc(label)}"
      preserveAspectRatio="xMidYMid meet">${inner}</svg>`;
  }

  function lagChart(orders) {
    if (!orders) return '<p class="muted">not readable now (see the services)</p>';
    const parts = orders.partitions, W = 640, H = 190, top = 24, bottom = 26, side = 10;
    const max = Math.max(1, ...parts.map((p) => p.lag));
    const slot = (W - 2 * side) / Math.max(1, parts.length);
    const barWidth = Math.min(64, slot * 0.7);
    const bars = parts.map((p, i) => {
      const h = Math.max(2, ((H - top - bottom) * p.lag) / max);
      const x = side + i * slot + (slot - barWidth) / 2, mid = x + barWidth / 2, y = H - bottom - h;
      const value = slot >= 28 ? `<text x="${mid}" y="${y - 6}" class="value">${fmt(p.lag)}</text>` : "";
      return `<g class="bar" data-partition="${p.partition}" data-lag="${p.lag}">
        <title>partition ${p.partition}: committed ${p.committed ?? "never"}, end ${p.end}, lag ${p.lag}</title>
        <rect x="${x}" y="${y}" width="${barWidth}" height="${h}" rx="3" class="${p.lag ? "lagging" : "caught-up"}"/>
        ${value}<text x="${mid}" y="${H - 8}" class="axis">p${p.partition}</text></g>`;
    }).join("");
    const axis = `<line x1="${side}" x2="${W - side}" y1="${H - bottom}" y2="${H - bottom}" class="baseline"/>`;
    return svg(W, H, axis + bars, "lag per partition");
  }

  function rateChart() {
    if (!rates.length) return '<p class="muted">measuring… (from the second refresh on)</p>';
    const W = 640, H = 150, top = 20, bottom = 20, side = 10;
    const max = Math.max(1, ...rates.map((r) => r.v));
    const x = (i) => side + ((W - 2 * side) * i) / (HISTORY - 1);
    const y = (v) => H - bottom - ((H - top - bottom) * Math.max(0, v)) / max;
    const offset = HISTORY - rates.length;  // the newest rate is always at the right edge
    const points = rates.map((r, i) => `${x(offset + i).toFixed(1)},${y(r.v).toFixed(1)}`).join(" ");
    const area = `${x(offset).toFixed(1)},${H - bottom} ${points} ${x(HISTORY - 1).toFixed(1)},${H - bottom}`;
    const newest = `<circle cx="${x(HISTORY - 1).toFixed(1)}" cy="${y(rates[rates.length - 1].v).toFixed(1)}" r="4" class="dot"/>`;
    return svg(W, H, `<line x1="${side}" x2="${W - side}" y1="${H - bottom}" y2="${H - bottom}" class="baseline"/>
      <text x="${side}" y="${top - 6}" class="axis start">max ${rateText(max)}/s</text>
      <text x="${W - side}" y="${H - 4}" class="axis end">now</text>
      <polygon points="${area}" class="area"/><polyline points="${points}" class="line"/>${newest}`,
      "stored orders per second");
  }

  function reasons(dlq) {
    if (!dlq) return '<p class="muted">not readable now (see the services)</p>';
    const rows = Object.entries(dlq.by_reason);
    if (!rows.length) return '<p class="muted">none in the last hour</p>';
    const max = Math.max(...rows.map(([, n]) => n));
    return `<table id="pl-reason-table"><tbody>${rows.map(([reason, n]) => `<tr data-reason="${esc(reason)}">
      <td>${esc(reason)}</td><td class="num">${fmt(n)}</td>
      <td class="pl-meter"><span style="width:${Math.max(2, (100 * n) / max).toFixed(1)}%"></span></td></tr>`).join("")}
      </tbody></table>`;
  }

  function services(list) {
    return list.map((s) => `<span class="pl-service ${s.up ? "up" : "down"}" data-service="${esc(s.name)}">
      ${esc(s.name)} <small>${s.up ? `${s.rtt_ms} ms` : "down"}</small></span>`).join("");
  }

  function deadLetters(dead) {
    if (dead.items === null) {
      return `<p class="muted">not readable now (${dead.kafka === "down" ? "Kafka is down" : "the topic could not be read"})</p>`;
    }
    if (!dead.items.length) return '<p class="muted">no dead letters</p>';
    const rows = dead.items.map((d) => `<tr><td>${utc(d.failed_at)}</td><td>${esc(d.reason)}</td>
      <td class="num">${d.partition} / ${d.offset}</td><td class="uid">${esc(d.order_uid ?? (d.unreadable.includes("order_uid") ? "unreadable" : "–"))}</td>
      <td class="num">${d.replay_count}</td></tr>`).join("");
    return `<table id="pl-dead-letter-table"><thead><tr><th>failed at</th><th>reason</th>
      <th class="num">partition / offset</th><th>order_uid</th><th class="num">replays</th></tr></thead>
      <tbody>${rows}</tbody></table>`;
  }

  function banner(status) {
    const when = `checked ${clock(status.checked_at)} · refreshes every ${REFRESH_MS / 1000} s`;
    if (status.healthy) return `<strong>Healthy</strong> <span class="muted">${when}</span>`;
    const problems = status.problems.map((p) => `<li>${esc(p)}</li>`).join("");
    return `<strong>Not healthy</strong> <span class="muted">${when}</span><ul>${problems}</ul>`;
  }

  function renderStatus(status) {
    addSample(status);
    shownAt = status.checked_at;
    $("pipeline-view").classList.remove("stale");
    const el = $("pl-banner");
    el.className = "pl-banner " + (status.healthy ? "ok" : "bad");
    el.innerHTML = banner(status);
    const orders = status.orders, outbox = status.outbox, dlq = status.dlq, stored = status.stored_orders;
    $("pl-total-lag").textContent = orders ? fmt(orders.total_lag) : "–";
    $("pl-group").textContent = orders ? `group ${orders.group.group_id}: ${orders.group.state}, ${orders.group.member_count} member(s)` : "";
    $("pl-topic").textContent = orders ? orders.topic : "";
    $("pl-lag-chart").innerHTML = lagChart(orders);
    const rate = rates[rates.length - 1];
    $("pl-rate").textContent = rate ? rateText(rate.v) : "–";
    $("pl-rate").dataset.rate = rate ? String(rate.v) : "";
    $("pl-rows").textContent = stored ? `≈ ${fmt(stored.rows_estimate)} rows in orders` : "";
    $("pl-rate-chart").innerHTML = rateChart();
    $("pl-outbox").textContent = outbox ? fmt(outbox.pending) : "–";
    $("pl-outbox-age").textContent = outbox && outbox.oldest_age_seconds !== null ? `oldest ${outbox.oldest_age_seconds.toFixed(1)} s` : "";
    $("pl-dlq-hour").textContent = dlq ? fmt(dlq.in_window) : "–";
    $("pl-dlq-held").textContent = dlq ? `${fmt(dlq.retained)} held in ${dlq.topic}` : "";
    $("pl-reasons").innerHTML = reasons(dlq);
    $("pl-services").innerHTML = services(status.services);
  }

  function renderDeadLetters(dead) {
    $("pl-dlq-topic").textContent = dead.topic;
    $("pl-dead-letters").innerHTML = deadLetters(dead);
  }

  // Each panel shows its own endpoint's failure: one failing read never empties the panels of the other.
  // The figures of the last good read stay, greyed out and dated: an operator must not take them for now.
  function statusFailed(e) {
    $("pl-banner").className = "pl-banner bad";
    const stale = shownAt ? `<span class="muted" id="pl-stale">The figures below are from ${clock(shownAt)}, the last read that succeeded</span>` : "";
    $("pl-banner").innerHTML = `<strong id="pl-error">${esc(e.message)}</strong> ${stale}`;
    if (shownAt) $("pipeline-view").classList.add("stale");
  }

  function deadLettersFailed(e) {
    $("pl-dead-letters").innerHTML = `<p class="bad" id="pl-dead-letters-error">${esc(e.message)}</p>`;
  }

  async function refresh(mine) {
    const [status, dead] = await Promise.allSettled([getJson("/pipeline/status"), getJson("/pipeline/dead-letters")]);
    if (mine === generation) {
      if (status.status === "fulfilled") renderStatus(status.value); else statusFailed(status.reason);
      if (dead.status === "fulfilled") renderDeadLetters(dead.value); else deadLettersFailed(dead.reason);
    }
    // The next refresh is timed from the end of this one: a slow answer never piles requests up.
    if (mine === generation) setTimeout(() => refresh(mine), REFRESH_MS);
  }

  function start() {
    generation += 1;
    refresh(generation);
  }

  function stop() {
    generation += 1;
    // A rate across the time the view was away would be an average of that whole time: start over.
    samples.length = 0;
    rates.length = 0;
  }

  function show(view) {
    $("orders-view").hidden = view !== "orders";
    $("pipeline-view").hidden = view !== "pipeline";
    document.querySelectorAll("nav.views a").forEach((a) => {
      if (a.dataset.view === view) a.setAttribute("aria-current", "page"); else a.removeAttribute("aria-current");
    });
    if (view === "pipeline" && document.visibilityState === "visible") start(); else stop();
  }

  const current = () => (location.hash === "#pipeline" ? "pipeline" : "orders");
  window.addEventListener("hashchange", () => show(current()));
  // A page in a background tab asks nothing; it refreshes at once when it is looked at again.
  document.addEventListener("visibilitychange", () => show(current()));
  $("token").addEventListener("change", () => { if (current() === "pipeline") start(); });
  show(current());
})();
