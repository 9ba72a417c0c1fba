// The status page: polls /status/overview every second for members, services and the endpoint,
// and follows /events/stream (server-sent events) for events as they happen. Plain JS, no build.
"use strict";

const POLL_MS = 1000;
const EVENTS_SHOWN_MAX = 200;
const seen = new Set();

const $ = (id) => document.getElementById(id);
const esc = (s) => String(s ?? "").replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);
const dash = (v) => (v === null || v === undefined ? "–" : v);

function renderMembers(o) {
  const leader = o.node.leader;
  $("node-id").textContent = o.node.id;
  $("cluster-id").textContent = o.node.clusterId;
  $("leader").textContent = leader || "none";
  $("leader").className = leader ? "leader" : "critical";
  $("term").textContent = o.node.term;
  $("members").querySelector("tbody").innerHTML = o.members
    .map((m) => {
      const isLeader = m.id === leader;
      const role = isLeader ? "leader" : m.role;
      return `<tr data-member="${esc(m.id)}" class="${isLeader ? "leader" : ""}">
        <td>${esc(m.id)}${m.self ? " (this node)" : ""}</td><td class="role">${esc(role)}</td><td>${dash(m.term)}</td><td>${dash(m.commit)}</td>
        <td>${dash(m.applied)}</td><td>${dash(m.lastIndex)}</td><td>${dash(m.match)}</td>
        <td class="${m.reachable ? "yes" : "no"}" title="${esc(m.error || "")}">${m.reachable ? "yes" : "no"}</td></tr>`;
    })
    .join("");
}

function renderServices(o) {
  if (o.services.length === 0) {
    $("services").innerHTML = '<p class="none">no services</p>';
    return;
  }
  $("services").innerHTML = o.services
    .map((s) => {
      const head = `<h3>${esc(s.name)} <small>${esc(s.mode)}, ${esc(s.policy)}; ${s.counts.passing} passing, ${s.counts.warning} warning, ${s.counts.critical} critical</small></h3>`;
      const master = s.mode === "master-slave" ? `<div>master <b class="master" data-master="${esc(s.master)}">${esc(s.master || "none")}</b> epoch <b class="epoch">${s.epoch}</b></div>` : "";
      const rows = s.instances
        .map((i) => `<tr data-instance="${esc(i.id)}"><td>${esc(i.id)}</td><td>${esc(i.address)}</td><td class="${esc(i.health)}">${esc(i.health)}</td><td>${i.weight}</td><td>${esc(i.role)}</td><td>${esc(i.zone)}</td><td>${esc(i.note)}</td></tr>`)
        .join("");
      return `<div class="service" data-service="${esc(s.name)}">${head}${master}<table><thead><tr><th>instance</th><th>address</th><th>health</th><th>weight</th><th>role</th><th>zone</th><th>note</th></tr></thead><tbody>${rows}</tbody></table></div>`;
    })
    .join("");
}

function renderBalancer(o) {
  const b = o.balancer;
  if (!b) {
    $("balancer").textContent = "not running";
    return;
  }
  const ports = Object.entries(b.ports).map(([k, v]) => `${esc(k)}: ${v}`).join(", ");
  const tcp = b.tcpUpstreams.map((u) => `${esc(u.service)}→${u.port}`).join(", ") || "none";
  const webhooks = o.webhooks ? `; alert webhooks sent ${o.webhooks.sent}, failed ${o.webhooks.failed}, dropped ${o.webhooks.dropped}, waiting ${o.webhooks.pending}` : "";
  const signals = Object.entries(b.signals || {})
    .map(([svc, c]) => `<li data-signals="${esc(svc)}">${esc(svc)}: ${Object.entries(c).map(([k, n]) => `${esc(k)} ${n}`).join(", ")}</li>`)
    .join("");
  $("balancer").innerHTML = `listen <b>${esc(b.listen)}</b>, ${b.workers} worker(s), ports ${ports}; TCP upstreams ${tcp}${webhooks}` + (signals ? `<ul>${signals}</ul>` : "");
}

function renderAlerts(o) {
  $("alerts").innerHTML =
    o.alerts.length === 0
      ? '<li class="none">none firing</li>'
      : o.alerts.map((a) => `<li class="firing" data-alert="${esc(a.name)}"><b>${esc(a.name)}</b> ${esc(a.summary)} <small>(${esc(a.scope)})</small></li>`).join("");
}

function addEvent(e) {
  if (seen.has(e.seq)) return;
  seen.add(e.seq);
  const li = document.createElement("li");
  li.dataset.kind = e.kind;
  li.className = `k-${e.kind}${e.local ? " local" : ""}`;
  const when = new Date(e.atMs).toLocaleTimeString();
  li.innerHTML = `<span class="kind">${esc(e.kind)}</span> ${esc(when)} ${e.index ? `@${e.index}` : "(local)"} ${esc(e.message)}`;
  const list = $("events");
  list.insertBefore(li, list.firstChild);
  while (list.children.length > EVENTS_SHOWN_MAX) list.removeChild(list.lastChild);
}

async function poll() {
  try {
    const res = await fetch("/status/overview", { cache: "no-store" });
    const o = await res.json();
    renderMembers(o);
    renderServices(o);
    renderBalancer(o);
    renderAlerts(o);
    for (const e of o.events) addEvent(e);
  } catch (err) {
    $("conn").textContent = "node not answering";
    $("conn").className = "conn";
  } finally {
    setTimeout(poll, POLL_MS);
  }
}

function follow() {
  const es = new EventSource("/events/stream");
  es.onopen = () => {
    $("conn").textContent = "live";
    $("conn").className = "conn live";
  };
  es.addEventListener("mesh", (m) => {
    addEvent(JSON.parse(m.data));
    // Events change what the tables show: fetch them now rather than at the next poll.
    clearTimeout(follow.soon);
    follow.soon = setTimeout(() => fetch("/status/overview", { cache: "no-store" }).then((r) => r.json()).then((o) => { renderMembers(o); renderServices(o); renderAlerts(o); }).catch(() => {}), 100);
  });
  es.onerror = () => {
    $("conn").textContent = "reconnecting";
    $("conn").className = "conn";
  };
}

poll();
follow();
