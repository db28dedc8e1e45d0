// tend playground / dashboard page. Plain JavaScript, no build step: it
// listens to /api/events (Server-Sent Events) and draws the cluster in SVG.
"use strict";

const SVG = "http://www.w3.org/2000/svg";
const $ = (sel) => document.querySelector(sel);

const S = {
  st: null,            // the last State
  offset: 0,           // Date.now() - server time
  selected: null,      // selected member's name
  pos: new Map(),      // member id -> {x, y, angle, i}
  nodes: new Map(),    // member id -> SVG elements
  keys: new Map(),     // key -> KV
  rev: 0,
  truncated: false,
  feed: [],            // newest last
  timeline: new Map(), // seq -> Entry
  dots: [],            // messages in flight
  busy: false,
};

// ---------- geometry ----------

function geometry(n) {
  const R = n <= 3 ? 205 : n <= 6 ? 232 : 245;
  const NR = n <= 6 ? 50 : 40;
  return { R, NR };
}

function layout(members) {
  const n = members.length;
  const { R } = geometry(n);
  S.pos.clear();
  members.forEach((m, i) => {
    const a = -Math.PI / 2 + (2 * Math.PI * i) / n;
    S.pos.set(m.id, { x: R * Math.cos(a), y: R * Math.sin(a), angle: a, i });
  });
}

function el(name, attrs, parent) {
  const e = document.createElementNS(SVG, name);
  for (const k in attrs) e.setAttribute(k, attrs[k]);
  if (parent) parent.appendChild(e);
  return e;
}

function h(tag, attrs, ...kids) {
  const e = document.createElement(tag);
  for (const k in attrs || {}) {
    if (k === "class") e.className = attrs[k];
    else if (k.startsWith("data-")) e.setAttribute(k, attrs[k]);
    else e[k] = attrs[k];
  }
  for (const c of kids) if (c != null) e.append(c);
  return e;
}

// ---------- the stream ----------

function connect() {
  const es = new EventSource("api/events");
  es.onopen = () => { $("#conn").classList.remove("off"); $("#conn").title = "live"; };
  es.onerror = () => { $("#conn").classList.add("off"); $("#conn").title = "reconnecting…"; };
  es.addEventListener("state", (e) => onState(JSON.parse(e.data)));
  es.addEventListener("msgs", (e) => onMsgs(JSON.parse(e.data)));
  es.addEventListener("timeline-all", (e) => { S.timeline.clear(); for (const t of JSON.parse(e.data) || []) S.timeline.set(t.seq, t); renderTimeline(null); });
  es.addEventListener("timeline", (e) => { const t = JSON.parse(e.data); S.timeline.set(t.seq, t); renderTimeline(t.seq); });
  es.addEventListener("keys", (e) => { const ks = JSON.parse(e.data); S.keys.clear(); for (const kv of ks.keys || []) S.keys.set(kv.key, kv); S.rev = ks.revision; S.truncated = ks.truncated; renderKeys(null); });
  es.addEventListener("feed-all", (e) => { S.feed = JSON.parse(e.data) || []; renderFeed(0); });
  es.addEventListener("watch", (e) => onWatch(JSON.parse(e.data)));
  es.addEventListener("fleet", (e) => renderFleet(JSON.parse(e.data)));
}

function onState(st) {
  const first = !S.st;
  const prevIDs = S.st ? S.st.members.map((m) => m.id).join() : "";
  S.st = st;
  S.offset = Date.now() - st.now;
  document.body.dataset.mode = st.mode;
  $("#mode-name").textContent = st.mode === "dashboard" ? "dashboard" : "playground";
  document.title = "tend " + st.mode;
  $("#timeline-panel small").textContent = st.mode === "dashboard" ? "leaders, elections and members, as seen every second" : "elections, leaders, and what you did";
  if (st.members.map((m) => m.id).join() !== prevIDs) {
    layout(st.members);
    for (const [id, n] of S.nodes) {
      if (!S.pos.has(id)) { n.g.remove(); S.nodes.delete(id); }
    }
  }
  if (first || !st.members.some((m) => m.name === S.selected)) {
    S.selected = st.members.length ? st.members[0].name : null;
  }
  const leader = st.members.find((m) => m.id === st.leader);
  document.body.dataset.leader = leader ? leader.name : "";
  document.body.dataset.term = st.term;
  document.body.dataset.members = st.members.length;
  renderSummary(st, leader);
  renderLinks(st);
  renderFences(st);
  renderCenter(st, leader);
  renderMembers(st);
  renderPanel(st);
  $("#story").innerHTML = narrate(st, leader);
  for (const b of document.querySelectorAll("#speed .seg")) b.classList.toggle("on", Number(b.dataset.slow) === st.slow);
}

// ---------- header ----------

function renderSummary(st, leader) {
  const up = st.members.filter((m) => m.role !== "down").length;
  const pills = [];
  if (leader) {
    pills.push(h("span", { class: "pill leader", innerHTML: `Leader <b>${esc(leader.name)}</b> · term <b>${st.term}</b>` }));
  } else {
    pills.push(h("span", { class: "pill bad", innerHTML: `No leader · term <b>${st.term}</b> · writes wait for an election` }));
  }
  pills.push(h("span", { class: up === st.members.length ? "pill" : "pill warn", innerHTML: `<b>${up}</b> of ${st.members.length} members up` }));
  if (st.groups && st.groups.length > 1) {
    const names = st.groups.map((g) => "{" + g.map(nameOf).join(" ") + "}").join(" | ");
    pills.push(h("span", { class: "pill bad", textContent: "partitioned " + names }));
  } else if (st.mode === "playground") {
    pills.push(h("span", { class: "pill", textContent: "network healthy" }));
  }
  if (st.error) pills.push(h("span", { class: "pill bad", textContent: st.error }));
  $("#summary").replaceChildren(...pills);
}

function nameOf(id) {
  const m = S.st && S.st.members.find((x) => x.id === id);
  return m ? m.name : id;
}

function groupIndex(st, id) {
  if (!st.groups) return 0;
  return st.groups.findIndex((g) => g.includes(id));
}

// ---------- links and partitions ----------

function renderLinks(st) {
  const g = $("#links");
  g.replaceChildren();
  const ms = st.members;
  for (let i = 0; i < ms.length; i++) {
    for (let j = i + 1; j < ms.length; j++) {
      const a = S.pos.get(ms[i].id), b = S.pos.get(ms[j].id);
      const cut = groupIndex(st, ms[i].id) !== groupIndex(st, ms[j].id);
      const l = el("line", { x1: a.x, y1: a.y, x2: b.x, y2: b.y, class: cut ? "link cut" : "link" }, g);
      if (ms[i].role === "down" || ms[j].role === "down") l.setAttribute("opacity", "0.25");
    }
  }
}

function polar(r, a) { return [r * Math.cos(a), r * Math.sin(a)]; }

// A fence around each side of a partition but the largest: a capsule along
// the ring around each run of neighbouring members it holds.
function renderFences(st) {
  const g = $("#fences");
  g.replaceChildren();
  if (!st.groups || st.groups.length < 2) return;
  const n = st.members.length;
  const { R, NR } = geometry(n);
  const step = (2 * Math.PI) / n;
  const w = NR + 17;
  const inGroup = st.members.map((m) => groupIndex(st, m.id));
  st.groups.forEach((grp, gi) => {
    if (gi === 0) return;
    const runs = [];
    let s0 = 0;
    while (s0 < n && inGroup[(s0 - 1 + n) % n] === gi) s0++;
    for (let k = 0; k < n; k++) {
      const s = (s0 + k) % n;
      if (inGroup[s] !== gi || inGroup[(s - 1 + n) % n] === gi) continue;
      let len = 1;
      while (len < n && inGroup[(s + len) % n] === gi) len++;
      runs.push([s, len]);
    }
    for (const [s, len] of runs) {
      const a1 = -Math.PI / 2 + step * s;
      const a2 = a1 + step * (len - 1);
      const large = a2 - a1 > Math.PI ? 1 : 0;
      const [o1x, o1y] = polar(R + w, a1), [o2x, o2y] = polar(R + w, a2);
      const [i1x, i1y] = polar(R - w, a1), [i2x, i2y] = polar(R - w, a2);
      let d;
      if (len === 1) {
        d = `M${o1x},${o1y} A${w},${w} 0 1 1 ${i1x},${i1y} A${w},${w} 0 1 1 ${o1x},${o1y} Z`;
      } else {
        d = `M${o1x},${o1y} A${R + w},${R + w} 0 ${large} 1 ${o2x},${o2y} A${w},${w} 0 0 1 ${i2x},${i2y} ` +
          `A${R - w},${R - w} 0 ${large} 0 ${i1x},${i1y} A${w},${w} 0 0 1 ${o1x},${o1y} Z`;
      }
      el("path", { class: "fence-zone", d }, g);
      el("path", { class: "fence", d }, g);
      if (grp.length === 1) continue; // its member's tag says "cut off"
      const [lx, ly] = polar(R - w - 16, (a1 + a2) / 2);
      const t = el("text", { class: "fence-label", x: lx, y: ly, "text-anchor": "middle", "dominant-baseline": "central" }, g);
      t.textContent = `${grp.length} of ${n}: no majority`;
    }
  });
}

// ---------- the centre ----------

function renderCenter(st, leader) {
  const g = $("#center");
  g.replaceChildren();
  g.setAttribute("class", "center");
  el("text", { class: "cap", y: -58 }, g).textContent = "TERM";
  el("text", { class: "big", y: 8 }, g).textContent = st.term || "–";
  const sub = el("text", { class: leader ? "sub" : "sub bad", y: 40 }, g);
  sub.textContent = leader ? `leader ${leader.name}` : st.members.length ? "no leader" : "";
  if (st.heartbeatMS) {
    const t = el("text", { class: "cap", y: 66 }, g);
    t.textContent = `♥ ${fmtDur(st.heartbeatMS)} · election ${fmtDur(st.electionMS)}`;
    t.setAttribute("style", "letter-spacing:.04em;font-size:12px;font-weight:500");
  }
}

function fmtDur(ms) { return ms >= 1000 ? (ms / 1000).toFixed(ms % 1000 ? 1 : 0) + " s" : ms + " ms"; }

// ---------- what is happening, in a sentence or two ----------

function narrate(st, leader) {
  const ms = st.members;
  if (!ms.length) return st.error ? esc(st.error) : "";
  const voters = ms.filter((m) => m.role !== "learner" && !m.learner);
  const need = Math.floor(voters.length / 2) + 1;
  const up = voters.filter((m) => m.role !== "down");
  const learners = ms.filter((m) => m.role === "learner");
  const b = (m, cls) => `<span class="${cls}">${esc(m.name)}</span>`;
  const parts = [];
  const campaigning = ms.filter((m) => m.role === "candidate");
  const prevoting = ms.filter((m) => m.role === "pre-candidate");
  // The sides of a partition that have too few members up to elect.
  const groups = st.groups && st.groups.length > 1 ? st.groups : [];
  const upIn = (g) => g.map((id) => ms.find((m) => m.id === id)).filter((m) => m && m.role !== "down");
  const weak = groups.filter((g) => upIn(g).length < need);
  const stuck = groups.length > 0 && weak.length === groups.length;
  if (leader) {
    parts.push(`${b(leader, "hl-leader")} leads term <b>${st.term}</b>; a write commits once <b>${need} of ${voters.length}</b> members have it.`);
  } else if (stuck) {
    parts.push(`No side of the partition has <b>${need}</b> members up: no leader can be elected and nothing commits until you heal.`);
  } else if (campaigning.length) {
    const c = campaigning[0];
    parts.push(`No leader: ${b(c, "hl-cand")} campaigns for term <b>${c.term}</b> and needs <b>${need}</b> votes.`);
  } else if (up.length < need) {
    parts.push(`No leader, and only <b>${up.length} of ${voters.length}</b> members are up: a leader needs <b>${need}</b> votes, so nothing can be written.`);
  } else if (st.mode === "playground") {
    parts.push(`No leader: the followers' election timers run out, and the first to expire campaigns.`);
  } else {
    parts.push(`No member reports a leader.`);
  }
  if (weak.length && !stuck) {
    const names = weak.map((g) => upIn(g).map((m) => b(m, "hl-cut")).join(", ")).filter((x) => x).join(" and ");
    if (names) {
      const pv = prevoting.length ? `; pre-vote keeps ${prevoting.length > 1 ? "their terms" : "its term"} from climbing` : "";
      parts.push(`${names}, cut off from a majority, cannot elect a leader or commit${pv}.`);
    }
  } else if (!groups.length && leader && prevoting.length === 0 && up.length === voters.length && !learners.length && st.mode === "playground") {
    parts.push(`Its heartbeats reset each follower's election timer.`);
  }
  const down = voters.filter((m) => m.role === "down");
  if (down.length && leader) {
    parts.push(`${down.map((m) => `<b>${esc(m.name)}</b>`).join(", ")} ${down.length > 1 ? "are" : "is"} down; ${up.length} of ${voters.length} is ${up.length >= need ? "still a majority" : "not a majority"}.`);
  }
  if (learners.length && st.mode === "playground") {
    parts.push(`${learners.map((m) => `<b>${esc(m.name)}</b>`).join(", ")} ${learners.length > 1 ? "are learners" : "is a learner"}: it gets every entry but does not vote; Promote makes it count.`);
  }
  return parts.join(" ");
}

// ---------- members ----------

function renderMembers(st) {
  const n = st.members.length;
  const { NR } = geometry(n);
  const layer = $("#members");
  for (const m of st.members) {
    let node = S.nodes.get(m.id);
    if (!node) {
      const g = el("g", { class: "member" }, layer);
      g.addEventListener("click", () => select(nameOf(m.id)));
      node = {
        g,
        title: el("title", {}, g),
        halo: el("circle", { class: "halo", r: NR + 15 }, g),
        track: el("circle", { class: "track", r: NR + 8 }, g),
        timer: el("circle", { class: "timer", r: NR + 8, transform: "rotate(-90)" }, g),
        tick: el("line", { class: "tick", x1: 0, y1: NR + 2, x2: 0, y2: NR + 14 }, g),
        body: el("circle", { class: "body", r: NR }, g),
        crown: el("path", { class: "crown", d: crownPath(NR) }, g),
        name: el("text", { class: "name", y: -4 }, g),
        role: el("text", { class: "role", y: 15 }, g),
        term: el("text", { class: "term", y: 33 }, g),
        idx: el("text", { class: "idx", y: NR + 30 }, g),
        tag: el("text", { class: "tag", y: -NR - 34 }, g),
      };
      node.circ = 2 * Math.PI * (NR + 8);
      node.timer.setAttribute("stroke-dasharray", `${node.circ}`);
      S.nodes.set(m.id, node);
    }
    const p = S.pos.get(m.id);
    const role = m.role;
    node.g.setAttribute("transform", `translate(${p.x.toFixed(1)},${p.y.toFixed(1)})`);
    node.g.setAttribute("class", `member ${role}${m.isolated ? " isolated" : ""}${m.name === S.selected ? " selected" : ""}`);
    node.g.dataset.name = m.name;
    node.g.dataset.id = m.id;
    node.g.dataset.role = role;
    node.body.setAttribute("filter", role === "leader" ? "url(#glow)" : "");
    node.crown.style.display = role === "leader" ? "" : "none";
    node.name.textContent = m.name;
    node.title.textContent = memberTitle(st, m);
    node.role.textContent = role === "pre-candidate" ? "pre-vote" : role;
    node.term.textContent = role === "down" && !m.term ? "" : `term ${m.term}`;
    node.idx.replaceChildren();
    const parts = [["commit ", m.commit], [" · applied ", m.applied]];
    for (const [label, v] of parts) {
      node.idx.append(label);
      const ts = el("tspan", { class: "v" }, node.idx);
      ts.textContent = v;
    }
    let tag = "", tagColor = "";
    if (m.isolated) { tag = "✂ CUT OFF"; tagColor = "#ff8f9a"; }
    else if (role === "down") { tag = st.mode === "dashboard" ? "NO ANSWER" : m.error && m.error !== "killed" ? "STOPPED" : "KILLED"; tagColor = "#8390a8"; }
    else if (role === "learner") { tag = "NON-VOTING"; tagColor = "#cbb9ff"; }
    node.tag.textContent = tag;
    node.tag.setAttribute("fill", tagColor);
    if (role === "leader") node.tag.setAttribute("y", -NR - 40); else node.tag.setAttribute("y", -NR - 26);
    node.m = m;
  }
}

function memberTitle(st, m) {
  let t = `${m.name} (${m.id}): ${m.role}, term ${m.term}, commit ${m.commit}, applied ${m.applied}`;
  if (m.role === "down") t += m.error ? ` — ${m.error}` : "";
  else if (m.role === "learner") t += ". A learner receives every entry from the leader but does not vote or campaign, so it has no election timer; Promote makes it a voter.";
  else if (m.role !== "leader" && m.heardAt) t += ". The ring around it is its election timer: the time since it last heard from a leader. Past the mark at the bottom (one election timeout) it may campaign at any moment; Raft picks each member's moment at random, up to two timeouts, so one usually goes first.";
  if (m.isolated) t += " Cut off: every message to or from it is dropped.";
  return t + " Click to select it.";
}

function crownPath(NR) {
  const y = -NR - 4, w = 30, hgt = 20;
  return `M${-w / 2},${y} L${-w / 2},${y - hgt * 0.75} L${-w / 4},${y - hgt * 0.35} L0,${y - hgt} L${w / 4},${y - hgt * 0.35} L${w / 2},${y - hgt * 0.75} L${w / 2},${y} Z`;
}

// The election timer: how long since the member last heard from a leader
// (or started or granted a vote), against the election timeout.
function drawTimers() {
  const st = S.st;
  if (!st) return;
  const now = Date.now() - S.offset;
  for (const [, node] of S.nodes) {
    const m = node.m;
    if (!m) continue;
    // A learner never campaigns: it has no timer to run out.
    const show = m.heardAt && st.electionMS && m.role !== "leader" && m.role !== "down" && m.role !== "learner";
    node.timer.style.display = show ? "" : "none";
    node.track.style.display = show ? "" : "none";
    node.tick.style.display = show ? "" : "none";
    if (!show) continue;
    // Raft draws each timeout between one and two election timeouts, so
    // that one member usually runs out first: the ring is two timeouts
    // round, and past the tick at its bottom the member may campaign.
    const f = Math.max(0, Math.min(1, (now - m.heardAt) / (2 * st.electionMS)));
    node.timer.setAttribute("stroke-dashoffset", `${node.circ * (1 - f)}`);
    node.timer.setAttribute("stroke", f < 0.3 ? "#7de3b0" : f < 0.5 ? "#f5d04a" : "#ff6b6b");
  }
}

// ---------- messages ----------

const DOT_LIMIT = 180;

function msgStyle(m) {
  const k = m.kind;
  if (m.reject) return { r: 5, fill: "var(--cut)" };
  switch (k) {
    case "heartbeat": return { r: 4.5, fill: "var(--heartbeat)" };
    case "heartbeat-resp": return { r: 3, fill: "#6f8fc0", opacity: 0.75 };
    case "append": return m.entries > 0 ? { r: 8, fill: "var(--append)", label: m.entries > 1 ? String(m.entries) : "" } : { r: 4.5, fill: "#7fe3bd" };
    case "append-resp": return { r: 3.5, fill: "#5fb896", opacity: 0.8 };
    case "prevote": return { r: 6.5, fill: "none", stroke: "var(--vote)" };
    case "vote": return { r: 8, fill: "var(--vote)" };
    case "prevote-resp": case "vote-resp": return { r: 6.5, fill: "var(--ok)", stroke: "#e8fff5" };
    case "snapshot": return { r: 9, fill: "var(--snapshot)", square: true };
    case "proposal": case "readindex": case "readindex-resp": return { r: 5, fill: "var(--proposal)" };
    default: return { r: 5, fill: "#fff" };
  }
}

function onMsgs(ms) {
  if (!S.st || document.hidden) return;
  const { NR } = geometry(S.st.members.length);
  const dur = Math.max(520, Math.min(1100, S.st.heartbeatMS * 0.9));
  const layer = $("#dots");
  const now = performance.now();
  for (const m of ms) {
    const a = S.pos.get(m.from), b = S.pos.get(m.to);
    if (!a || !b) continue;
    const routine = /heartbeat|resp/.test(m.kind) && !m.reject;
    if (S.dots.length > DOT_LIMIT && routine) continue;
    const dx = b.x - a.x, dy = b.y - a.y, len = Math.hypot(dx, dy) || 1;
    const ux = dx / len, uy = dy / len;
    const st = msgStyle(m);
    const g = el("g", { class: "msg", "data-kind": m.kind }, layer);
    let shape;
    if (st.square) shape = el("rect", { x: -st.r, y: -st.r, width: 2 * st.r, height: 2 * st.r, rx: 2, fill: st.fill }, g);
    else shape = el("circle", { r: st.r, fill: st.fill }, g);
    if (st.stroke) { shape.setAttribute("stroke", st.stroke); shape.setAttribute("stroke-width", st.fill === "none" ? 2.5 : 1.5); }
    if (st.opacity) g.setAttribute("opacity", st.opacity);
    if (st.label) el("text", { class: "msg-label" }, g).textContent = st.label;
    S.dots.push({
      g, t0: now, dur, dropped: !!m.dropped,
      x0: a.x + ux * (NR + 6), y0: a.y + uy * (NR + 6),
      x1: b.x - ux * (NR + 6), y1: b.y - uy * (NR + 6),
    });
  }
}

function drawDots(now) {
  const keep = [];
  for (const d of S.dots) {
    let t = (now - d.t0) / d.dur;
    if (d.dropped) {
      // Lost on the way: it stops half-way, crossed out, and fades.
      if (t >= 0.5 && !d.x) {
        d.x = true;
        el("path", { class: "msg-x", d: "M-6,-6 L6,6 M6,-6 L-6,6" }, d.g);
      }
      if (t > 1) { d.g.remove(); continue; }
      const p = Math.min(t, 0.5);
      const x = d.x0 + (d.x1 - d.x0) * p, y = d.y0 + (d.y1 - d.y0) * p;
      d.g.setAttribute("transform", `translate(${x.toFixed(1)},${y.toFixed(1)})`);
      if (t > 0.5) d.g.style.opacity = String(1 - (t - 0.5) * 2);
      keep.push(d);
      continue;
    }
    if (t >= 1) { d.g.remove(); continue; }
    const e = t < 0.5 ? 2 * t * t : 1 - Math.pow(-2 * t + 2, 2) / 2; // ease in-out
    const x = d.x0 + (d.x1 - d.x0) * e, y = d.y0 + (d.y1 - d.y0) * e;
    d.g.setAttribute("transform", `translate(${x.toFixed(1)},${y.toFixed(1)})`);
    keep.push(d);
  }
  S.dots = keep;
}

function frame(now) {
  drawDots(now);
  drawTimers();
  requestAnimationFrame(frame);
}

// ---------- the side panel ----------

function select(name) {
  S.selected = name;
  if (S.st) { renderMembers(S.st); renderPanel(S.st); }
}

function selectedMember(st) { return st.members.find((m) => m.name === S.selected); }

function renderPanel(st) {
  // The chips are updated in place, never rebuilt while only roles change:
  // a chip replaced between a person's press and release loses the click.
  const chips = $("#chips");
  const names = st.members.map((m) => m.name).join();
  if (chips.dataset.names !== names) {
    chips.dataset.names = names;
    chips.replaceChildren(...st.members.map((m) => {
      const b = h("button", { class: "chip", "data-name": m.name }, h("i"), m.name);
      b.setAttribute("role", "radio");
      b.addEventListener("click", () => select(m.name));
      return b;
    }));
  }
  for (const b of chips.children) {
    const m = st.members.find((x) => x.name === b.dataset.name);
    const on = b.dataset.name === S.selected;
    const cls = `chip ${m ? m.role : ""}${on ? " on" : ""}`;
    if (b.className !== cls) b.className = cls;
    b.title = `${b.dataset.name}: ${m ? m.role : ""}`;
    b.setAttribute("aria-checked", on ? "true" : "false");
  }
  const m = selectedMember(st);
  $("#sel-name").textContent = m ? m.name : "–";
  $("#kv-through").textContent = m ? m.name : "–";
  const rt = $("#sel-role");
  rt.textContent = m ? (m.isolated ? m.role + " · cut off" : m.role) : "";
  rt.className = "role-tag " + (m ? m.role : "");
  const facts = [];
  if (m) {
    facts.push(["id", m.id], ["client", m.clientURL]);
    facts.push(["raft", `term ${m.term} · commit ${m.commit} · applied ${m.applied}`]);
    if (m.leader && m.role !== "leader") facts.push(["follows", nameOf(m.leader)]);
    if (m.match) {
      facts.push(["match", Object.entries(m.match).map(([id, i]) => `${nameOf(id)} ${i}`).sort().join(" · ")]);
    }
    if (m.dbSize) facts.push(["db size", fmtBytes(m.dbSize) + (m.version ? " · v" + m.version : "")]);
    if (m.error) facts.push(["why down", m.error]);
  }
  $("#sel-facts").replaceChildren(...facts.flatMap(([k, v]) => [h("dt", { textContent: k }), h("dd", { textContent: v, title: v })]));
  const up = m && m.role !== "down";
  setDisabled("#btn-kill", !up || S.busy);
  setDisabled("#btn-restart", !m || up || S.busy);
  setDisabled("#btn-isolate", !up || m.isolated || S.busy);
  setDisabled("#btn-promote", !m || m.role !== "learner" || S.busy);
  setDisabled("#btn-remove", !m || st.members.length < 2 || S.busy);
  setDisabled("#btn-put", !up);
  setDisabled("#btn-get", !up);
  setDisabled("#btn-delete", !up);
  setDisabled("#btn-heal", !st.groups || S.busy);
}

function setDisabled(sel, v) { const b = $(sel); if (b) b.disabled = !!v; }

function fmtBytes(n) {
  if (n < 1024) return n + " B";
  if (n < 1 << 20) return (n / 1024).toFixed(1) + " KiB";
  return (n / (1 << 20)).toFixed(1) + " MiB";
}

// ---------- keyspace, watch feed, timeline ----------

function onWatch(evs) {
  const fresh = new Set();
  for (const ev of evs) {
    if (ev.type === "DELETE") S.keys.delete(ev.key);
    else S.keys.set(ev.key, { key: ev.key, value: ev.value, modRevision: ev.revision, version: ev.version });
    S.rev = Math.max(S.rev, ev.revision);
    fresh.add(ev.key);
    S.feed.push(ev);
  }
  if (S.feed.length > 100) S.feed = S.feed.slice(-100);
  renderKeys(fresh);
  renderFeed(evs.length);
}

function renderKeys(fresh) {
  const rows = [...S.keys.values()].sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  const body = $("#keys tbody");
  if (!rows.length) {
    body.replaceChildren(h("tr", { class: "none" }, h("td", { colSpan: 4, textContent: "no keys yet: put one through any member" })));
  } else {
    body.replaceChildren(...rows.map((kv) => {
      const tr = h("tr", { class: fresh && fresh.has(kv.key) ? "fresh" : "", "data-key": kv.key },
        h("td", { textContent: kv.key, title: kv.key }),
        h("td", { textContent: kv.value, title: kv.value }),
        h("td", { class: "n", textContent: kv.modRevision }),
        h("td", { class: "n", textContent: kv.version }));
      return tr;
    }));
  }
  const prefix = S.st && S.st.prefix ? ` under ${S.st.prefix}` : "";
  $("#keys-meta").textContent = `${rows.length} key${rows.length === 1 ? "" : "s"}${prefix} · revision ${S.rev}${S.truncated ? " · more not shown" : ""}`;
}

function renderFeed(freshCount) {
  const list = $("#feed");
  if (!S.feed.length) {
    list.replaceChildren(h("li", { class: "empty", textContent: "waiting for changes…" }));
    return;
  }
  const items = S.feed.slice().reverse().map((ev, i) => h("li", { class: i < freshCount ? "fresh" : "" },
    h("time", { textContent: clock(ev.at) }),
    h("span", { class: "t " + ev.type, textContent: ev.type }),
    h("span", { class: "k", title: ev.key + (ev.value ? " = " + ev.value : "") }, ev.key, ev.type === "PUT" ? h("em", { textContent: " = " }) : null, ev.type === "PUT" ? ev.value : null),
    h("span", { class: "r", textContent: "rev " + ev.revision })));
  list.replaceChildren(...items);
}

function renderTimeline(freshSeq) {
  const list = $("#timeline");
  const es = [...S.timeline.values()].sort((a, b) => b.seq - a.seq).slice(0, 120);
  if (!es.length) {
    list.replaceChildren(h("li", { class: "empty", textContent: "nothing yet" }));
    return;
  }
  list.replaceChildren(...es.map((e) => h("li", { class: `${e.kind}${e.seq === freshSeq ? " fresh" : ""}`, "data-kind": e.kind },
    h("time", { textContent: clock(e.at) }),
    h("i", { class: "ic" }),
    h("span", { class: "tx" }, e.text, e.count > 1 ? h("span", { class: "count", textContent: `×${e.count}` }) : null))));
}

// ---------- the fleet (dashboard) ----------

function plural(n, word) { return `${n} ${word}${n === 1 ? "" : "s"}`; }

// The status the agents publish: drawn once a "fleet" event names the
// prefix; the server sends the failed rows first and at most a few hundred.
function renderFleet(f) {
  const panel = $("#fleet-panel");
  panel.hidden = !f.prefix;
  if (!f.prefix) return;
  const meta = [h("b", { textContent: plural(f.hosts, "host") }), ", ", h("b", { textContent: plural(f.templates, "template") }), ", ",
    h("b", { class: f.failed ? "bad" : "", textContent: `${f.failed} failed` }), ` · revision ${f.revision} · under ${f.prefix}`];
  if (f.error) meta.push(" · ", h("b", { class: "bad", textContent: f.error }));
  $("#fleet-meta").replaceChildren(...meta);
  const rows = f.rows || [];
  const body = $("#fleet tbody");
  if (!rows.length) {
    const text = f.error ? `cannot read ${f.prefix} yet` : `no agent publishes under ${f.prefix} — give the agents a status {} block`;
    body.replaceChildren(h("tr", { class: "none" }, h("td", { colSpan: 6, textContent: text })));
    return;
  }
  const trs = rows.map((r) => h("tr", { class: r.failed ? "failed" : "", "data-host": r.host, "data-template": r.template || "", "data-failed": r.failed ? "true" : "false" },
    h("td", { textContent: r.host, title: r.host }),
    h("td", { class: r.template ? "" : "t", textContent: r.template || "–", title: r.template || "no templates" }),
    h("td", { class: "n", textContent: r.template ? r.revision : "–" }),
    h("td", { class: "o " + (r.outcome || "none"), textContent: r.outcome || "–" }),
    h("td", { class: "n", textContent: r.appliedAt ? when(r.appliedAt) : "–", title: r.appliedAt ? new Date(r.appliedAt).toString() : "not replaced yet" }),
    h("td", { class: "err", textContent: r.error || "", title: r.error || "" })));
  if (f.more) trs.push(h("tr", { class: "none more" }, h("td", { colSpan: 6, textContent: `and ${f.more} more (failed rows come first)` })));
  body.replaceChildren(...trs);
}

// when is a time of day, with the date when it is not today.
function when(ms) {
  const d = new Date(ms);
  if (d.toDateString() === new Date().toDateString()) return clock(ms);
  return d.toLocaleDateString([], { month: "short", day: "numeric" }) + " " + clock(ms);
}

function clock(ms) {
  const d = new Date(ms);
  return d.toLocaleTimeString([], { hour12: false, hour: "2-digit", minute: "2-digit", second: "2-digit" });
}

function esc(s) { return String(s).replace(/[&<>"]/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" }[c])); }

// ---------- actions ----------

async function act(action, body) {
  const resp = await fetch("api/" + action, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body || {}) });
  let res;
  try { res = await resp.json(); } catch (e) { res = { ok: false, error: `${resp.status} ${resp.statusText}` }; }
  return res;
}

async function memberAction(action, extra) {
  if (S.busy) return;
  S.busy = true;
  document.body.dataset.busy = action;
  if (S.st) renderPanel(S.st);
  try {
    const res = await act(action, { member: S.selected, ...extra });
    toast(res.ok ? res.text : res.error, res.ok);
  } catch (e) {
    toast(String(e), false);
  } finally {
    S.busy = false;
    delete document.body.dataset.busy;
    if (S.st) renderPanel(S.st);
  }
}

async function kvAction(op) {
  const box = $("#kv-result");
  const body = { member: S.selected, key: $("#kv-key").value, value: $("#kv-value").value, serializable: $("#kv-serializable").checked };
  box.className = "result";
  box.textContent = `${op} through ${S.selected}…`;
  delete box.dataset.ok;
  let res;
  try { res = await act(op, body); } catch (e) { res = { ok: false, error: String(e), latencyMS: 0 }; }
  box.className = "result " + (res.ok ? "ok" : "err");
  box.dataset.ok = res.ok ? "true" : "false";
  box.dataset.op = op;
  box.dataset.value = res.found || op === "put" ? res.value : "";
  box.dataset.deleted = res.deleted || 0;
  const meta = h("div", { class: "meta" });
  if (res.ok) {
    let head;
    if (op === "get") head = res.found ? h("div", {}, h("b", { textContent: res.key }), " = ", h("b", { class: "val", textContent: res.value })) : h("div", { textContent: `${res.key}: not found` });
    else if (op === "put") head = h("div", {}, "wrote ", h("b", { textContent: res.key }), " = ", h("b", { class: "val", textContent: res.value }));
    else head = res.deleted ? h("div", {}, "deleted ", h("b", { textContent: res.key })) : h("div", {}, h("b", { textContent: res.key }), ": no such key, nothing deleted");
    meta.innerHTML = `<span>via <b>${esc(res.member)}</b></span><span>revision <b>${res.revision}</b>${res.modRevision && op === "get" ? ` (key's ${res.modRevision})` : ""}</span><span>latency <b>${res.latencyMS.toFixed(1)} ms</b></span>` + (op === "get" ? `<span><b>${res.serializable ? "serializable" : "linearizable"}</b></span>` : "");
    box.replaceChildren(head, meta);
  } else {
    meta.innerHTML = `<span>latency <b>${(res.latencyMS || 0).toFixed(0)} ms</b></span>`;
    box.replaceChildren(h("div", { textContent: res.error }), meta);
  }
}

let toastTimer = 0;
function toast(text, ok) {
  const t = $("#toast");
  t.textContent = text;
  t.className = "toast" + (ok ? " ok" : "");
  t.hidden = false;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => { t.hidden = true; }, ok ? 3500 : 6000);
}

function wire() {
  $("#btn-kill").addEventListener("click", () => memberAction("kill"));
  $("#btn-restart").addEventListener("click", () => memberAction("restart"));
  $("#btn-isolate").addEventListener("click", () => memberAction("isolate"));
  $("#btn-remove").addEventListener("click", () => memberAction("remove"));
  $("#btn-add").addEventListener("click", () => memberAction("add"));
  $("#btn-add-learner").addEventListener("click", () => memberAction("add", { learner: true }));
  $("#btn-promote").addEventListener("click", () => memberAction("promote"));
  $("#btn-split").addEventListener("click", () => memberAction("split"));
  $("#btn-heal").addEventListener("click", () => memberAction("heal"));
  $("#btn-put").addEventListener("click", () => kvAction("put"));
  $("#btn-get").addEventListener("click", () => kvAction("get"));
  $("#btn-delete").addEventListener("click", () => kvAction("delete"));
  for (const b of document.querySelectorAll("#speed .seg")) {
    b.addEventListener("click", async () => {
      const res = await act("slow", { slow: Number(b.dataset.slow) });
      toast(res.ok ? res.text : res.error, res.ok);
    });
  }
  for (const id of ["#kv-key", "#kv-value"]) {
    $(id).addEventListener("keydown", (e) => { if (e.key === "Enter") kvAction(e.shiftKey ? "get" : "put"); });
  }
}

wire();
renderKeys(null);
renderFeed(0);
renderTimeline(null);
connect();
requestAnimationFrame(frame);
