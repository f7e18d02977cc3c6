// Hemma ward dashboard: live overview over a websocket, acknowledge/snooze/end alerts, manual
// observations and the care team's orders (alert limits, SpO2 scale, monitoring plan) on the patient
// record, relative times.
// Plain JavaScript, no libraries. Builds DOM with textContent only (never innerHTML), so
// nothing from the server is ever parsed as markup. Mirrors templates/_cards.html.
"use strict";

(function () {
  const TIME_ZONE = "Europe/Stockholm";
  const STALE_AFTER_MS = 24 * 3600 * 1000;
  const SILENCE_LIMIT_MS = 45 * 1000; // the server sends a heartbeat every 15 s
  const PRIORITY_RANK = { high: 0, medium: 1, low: 2 };
  const MONTHS = ["jan", "feb", "mar", "apr", "maj", "jun", "jul", "aug", "sep", "okt", "nov", "dec"];
  // The clinical actions this user's role may take (care.permissions, rendered by base.html): an
  // admin's cards get no Kvittera, Snooza or Avsluta, as the server-rendered ones (_cards.html).
  const MAY = new Set((document.body.dataset.may || "").split(" ").filter(Boolean));

  // Tests and staff tooling can read this; pageId changes only when the page is reloaded.
  const state = (window.hemma = {
    pageId: Math.random().toString(36).slice(2),
    loadedAt: Date.now(),
    connected: false,
    messages: 0,
    snapshots: 0,
    deltas: 0,
  });

  // --- time ---------------------------------------------------------------------------------

  const partsFormat = new Intl.DateTimeFormat("sv-SE", {
    timeZone: TIME_ZONE, year: "numeric", month: "numeric", day: "numeric", hour: "2-digit", minute: "2-digit",
    hourCycle: "h23",
  });

  function localParts(date) {
    const out = {};
    for (const p of partsFormat.formatToParts(date)) out[p.type] = p.value;
    return out;
  }

  function formatClock(iso) {
    if (!iso) return "";
    const at = localParts(new Date(iso));
    const today = localParts(new Date());
    const clock = at.hour + ":" + at.minute;
    if (at.year === today.year && at.month === today.month && at.day === today.day) return clock;
    return Number(at.day) + " " + MONTHS[Number(at.month) - 1] + " " + clock;
  }

  function formatAge(iso) {
    const seconds = (Date.now() - new Date(iso).getTime()) / 1000;
    if (seconds < 60) return "nyss";
    const minutes = Math.floor(seconds / 60);
    if (minutes < 60) return minutes + " min sedan";
    const hours = Math.floor(minutes / 60);
    if (hours < 48) return hours + " tim sedan";
    return Math.floor(hours / 24) + " d sedan";
  }

  function refreshTimes(root) {
    root.querySelectorAll("[data-age]").forEach((node) => {
      node.textContent = formatAge(node.dataset.age);
      const tile = node.closest(".vital");
      if (tile) tile.classList.toggle("stale", Date.now() - new Date(node.dataset.age).getTime() > STALE_AFTER_MS);
    });
  }

  // --- DOM building -------------------------------------------------------------------------

  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  function timeEl(iso, mode) {
    const node = el("time", mode === "age" ? "vital-age" : "", mode === "age" ? formatAge(iso) : formatClock(iso));
    node.dateTime = iso;
    node.dataset[mode === "age" ? "age" : "clock"] = iso;
    return node;
  }

  function gatewayBadge(gateway) {
    if (!gateway) return el("span", "gateway gw-none", "Ingen hemenhet");
    const badge = el("span", "gateway gw-" + gateway.status, gateway.label);
    badge.title = "Gateway " + gateway.id;
    if (gateway.status === "offline" && gateway.status_at) {
      badge.append(" sedan ", timeEl(gateway.status_at, "clock"));
    }
    return badge;
  }

  function vitalTile(v) {
    const tile = el("div", "vital");
    tile.dataset.vital = v.vital;
    tile.title = v.name;
    const reading = el("span", "vital-reading");
    reading.append(el("span", "vital-value", v.text), " ", el("span", "vital-unit", v.unit));
    tile.append(el("span", "vital-label", v.label), reading, timeEl(v.time, "age"));
    if (Date.now() - new Date(v.time).getTime() > STALE_AFTER_MS) tile.classList.add("stale");
    return tile;
  }

  function formatMinutes(minutes) {
    if (minutes >= 2 * 1440 && minutes % 1440 === 0) return minutes / 1440 + " d";
    const hours = Math.floor(minutes / 60);
    const rest = minutes % 60;
    if (!hours) return rest + " min";
    return rest ? hours + " h " + rest + " min" : hours + " h";
  }

  function isSnoozed(a) {
    return a.state === "acknowledged" && a.snoozed_until && new Date(a.snoozed_until).getTime() > Date.now();
  }

  function techBadge() {
    const badge = el("span", "alert-priority tech-badge");
    const icon = el("span", "tech-icon");
    icon.setAttribute("aria-hidden", "true");
    badge.append(icon, "Teknik");
    return badge;
  }

  function alertItem(a) {
    const technical = a.condition === "technical";
    const snoozed = isSnoozed(a);
    const item = el("li", "alert alert-" + a.priority + " state-" + a.state + (technical ? " cond-technical" : "") +
      (snoozed ? " snoozed" : ""));
    item.dataset.alertId = a.id;
    const body = el("div", "alert-body");
    const meta = el("span", "alert-meta");
    if (technical) meta.append(a.priority_label + " prioritet · ");
    meta.append(timeEl(a.opened_at, "clock"));
    if (a.state === "acknowledged") {
      meta.append(" · Kvitterat" + (a.acknowledged_by ? " av " + a.acknowledged_by : ""));
      if (a.acknowledged_at) meta.append(" ", timeEl(a.acknowledged_at, "clock"));
    }
    body.append(el("span", "alert-message", a.message), meta);
    if (snoozed) {
      const line = el("span", "alert-snoozed", "Snoozad till ");
      line.append(timeEl(a.snoozed_until, "clock"));
      if (a.snoozed_by) line.append(" av " + a.snoozed_by);
      body.append(line);
    }
    if (a.state === "acknowledged" && a.note) body.append(el("span", "alert-note", a.note));
    item.append(technical ? techBadge() : el("span", "alert-priority", a.priority_label), body);
    if (a.state === "open" && MAY.has("acknowledge_alert")) {
      const form = el("form", "ack-form");
      form.dataset.alertId = a.id;
      const note = el("input", "ack-note");
      Object.assign(note, { name: "note", maxLength: 500, autocomplete: "off", placeholder: "Anteckning (valfritt)" });
      note.setAttribute("aria-label", "Anteckning till kvittering");
      const button = el("button", "ack-button", "Kvittera");
      button.type = "submit";
      form.append(note, button, el("span", "ack-error"));
      form.lastChild.setAttribute("role", "alert");
      item.append(form);
    }
    const live = a.state === "open" || a.state === "acknowledged";
    const choices = MAY.has("snooze_alert") ? a.snooze_minutes || [] : [];
    if (live && (choices.length || MAY.has("resolve_alert"))) item.append(alertActions(a, choices));
    return item;
  }

  function alertActions(a, choices) {
    const actions = el("div", "alert-actions");
    actions.dataset.alertId = a.id;
    if (choices.length) {
      const group = el("div", "snooze");
      group.setAttribute("role", "group");
      group.setAttribute("aria-label", "Snooza larmet");
      group.append(el("span", "snooze-label", "Snooza"));
      for (const minutes of choices) {
        const button = el("button", "snooze-button", formatMinutes(minutes));
        button.type = "button";
        button.dataset.minutes = minutes;
        group.append(button);
      }
      actions.append(group);
    }
    if (MAY.has("resolve_alert")) {
      const details = el("details", "resolve");
      const form = el("form", "resolve-form");
      form.dataset.alertId = a.id;
      const note = el("input", "resolve-note");
      Object.assign(note, { name: "note", maxLength: 500, autocomplete: "off", placeholder: "Varför avslutas larmet?" });
      note.setAttribute("aria-label", "Anteckning till avslut (krävs)");
      const button = el("button", "resolve-button", "Avsluta larmet");
      button.type = "submit";
      form.append(note, button);
      details.append(el("summary", "", "Avsluta"), form);
      actions.append(details);
    }
    const error = el("span", "action-error");
    error.setAttribute("role", "alert");
    actions.append(error);
    return actions;
  }

  // NEWS2 at a glance (mirrors news2_chip in _cards.html): the server decides text, marker and band.
  function news2Chip(p) {
    const n = p.news2;
    if (!n) return null;
    const chip = el("a", "news2-chip news2-" + n.band + (n.complete ? "" : " news2-incomplete"));
    chip.href = "/patients/" + encodeURIComponent(p.id) + "#news2";
    chip.title = n.title;
    chip.setAttribute("aria-label", n.title);
    chip.dataset.news2Band = n.band;
    chip.append(el("span", "news2-score", n.text));
    if (n.marker) chip.append(" ", el("span", "news2-marker", n.marker));
    return chip;
  }

  function patientCard(p) {
    const offline = p.gateway && p.gateway.status === "offline";
    const physiological = p.alerts.filter((a) => a.condition !== "technical");
    const technical = p.alerts.filter((a) => a.condition === "technical");
    const top = p.top_priority ? " top-" + p.top_priority : technical.length ? " top-technical" : "";
    const card = el("article", "patient rank-" + p.rank + top + (offline ? " gw-offline" : ""));
    card.dataset.patientId = p.id;
    card.dataset.rank = p.rank;
    card.dataset.techRank = p.tech_rank === undefined ? 1 : p.tech_rank;
    card.dataset.news2Urgency = p.news2 ? p.news2.urgency : 0;
    card.dataset.name = p.name;

    const info = el("div", "patient-info");
    const name = el("h2", "patient-name");
    const link = el("a", "", p.name);
    link.href = "/patients/" + encodeURIComponent(p.id);
    name.append(link);
    const meta = el("div", "patient-meta");
    if (p.age !== null && p.age !== undefined) meta.append(el("span", "patient-age", p.age + " år"));
    if (p.care_reason) meta.append(el("span", "patient-reason", p.care_reason));
    const status = el("div", "patient-status");
    const chip = news2Chip(p);
    if (chip) status.append(chip);
    status.append(gatewayBadge(p.gateway));
    info.append(name, meta, status);

    const vitals = el("div", "vitals");
    if (p.vitals.length) p.vitals.forEach((v) => vitals.append(vitalTile(v)));
    else vitals.append(el("p", "no-vitals", "Inga mätvärden ännu"));

    const column = el("div", "patient-alerts");
    if (physiological.length || !technical.length) {
      const alerts = el("ul", "alerts");
      if (physiological.length) physiological.forEach((a) => alerts.append(alertItem(a)));
      else alerts.append(el("li", "no-alerts", "Inga aktiva larm"));
      column.append(alerts);
    }
    if (technical.length) {
      const list = el("ul", "alerts tech-alerts");
      list.setAttribute("aria-label", "Tekniska larm");
      technical.forEach((a) => list.append(alertItem(a)));
      column.append(list);
    }

    card.append(info, vitals, column);
    return card;
  }

  // --- the ward overview --------------------------------------------------------------------

  function startWard(wardId) {
    const list = document.getElementById("patients");
    const banner = document.getElementById("connection-banner");
    const live = document.getElementById("live-status");
    const liveText = document.getElementById("live-text");
    const updatedAt = document.getElementById("updated-at");
    const collator = new Intl.Collator("sv");
    let socket = null;
    let attempt = 0;
    let lastMessageAt = 0;
    let gaveUp = false;

    function rankOf(card) { return Number(card.dataset.rank); }
    function techRankOf(card) { return Number(card.dataset.techRank || 1); }
    function news2UrgencyOf(card) { return Number(card.dataset.news2Urgency || 0); }

    // Physiological severity first, then an unacknowledged technical alarm, then NEWS2 (higher risk
    // band, then higher total first), then the name: PatientCard.sort_key.
    function sortCards() {
      const cards = Array.from(list.children);
      cards.sort((a, b) => rankOf(a) - rankOf(b) || techRankOf(a) - techRankOf(b) ||
        news2UrgencyOf(b) - news2UrgencyOf(a) ||
        collator.compare(a.dataset.name, b.dataset.name) ||
        (a.dataset.patientId < b.dataset.patientId ? -1 : 1));
      cards.forEach((card, i) => { if (list.children[i] !== card) list.insertBefore(card, list.children[i]); });
    }

    function updateSummary() {
      const n = list.children.length;
      document.getElementById("patient-count").textContent = n + (n === 1 ? " patient" : " patienter");
      document.getElementById("no-patients").hidden = n > 0;
      for (const priority of ["high", "medium"]) {
        const count = list.querySelectorAll(".alert.state-open.alert-" + priority + ":not(.cond-technical)").length;
        const chip = document.getElementById("count-" + priority);
        chip.textContent = count + (priority === "high" ? " hög" : " medel");
        chip.hidden = count === 0;
      }
      const technical = list.querySelectorAll(".alert.state-open.cond-technical").length;
      const chip = document.getElementById("count-technical");
      const icon = el("span", "tech-icon");
      icon.setAttribute("aria-hidden", "true");
      chip.replaceChildren(icon, technical + (technical === 1 ? " teknisk" : " tekniska"));
      chip.hidden = technical === 0;
    }

    // A nurse may be typing a note when an update replaces the card: keep the text, focus and open forms.
    function replaceCard(old, fresh) {
      const focused = old.contains(document.activeElement) ? document.activeElement : null;
      old.querySelectorAll("form.ack-form, form.resolve-form").forEach((form) => {
        const kind = form.classList.contains("ack-form") ? "ack-form" : "resolve-form";
        const twin = fresh.querySelector("form." + kind + '[data-alert-id="' + form.dataset.alertId + '"]');
        if (!twin) return;
        twin.elements.note.value = form.elements.note.value;
        const error = form.querySelector(".ack-error");
        if (error) twin.querySelector(".ack-error").textContent = error.textContent;
        const details = form.closest("details");
        if (details && details.open) twin.closest("details").open = true;
        if (focused && form.contains(focused)) {
          const target = focused.name === "note" ? twin.elements.note : twin.querySelector("button");
          requestAnimationFrame(() => target.focus());
        }
      });
      old.querySelectorAll(".alert-actions .action-error").forEach((error) => {
        const id = error.closest(".alert-actions").dataset.alertId;
        const twin = fresh.querySelector('.alert-actions[data-alert-id="' + id + '"] .action-error');
        if (twin) twin.textContent = error.textContent;
      });
      old.replaceWith(fresh);
    }

    function upsert(patients) {
      for (const p of patients) {
        const fresh = patientCard(p);
        const old = list.querySelector('[data-patient-id="' + CSS.escape(p.id) + '"]');
        if (old) replaceCard(old, fresh);
        else list.append(fresh);
      }
    }

    function applySnapshot(message) {
      list.replaceChildren(...message.patients.map(patientCard));
      state.snapshots += 1;
    }

    function applyDelta(message) {
      upsert(message.patients);
      for (const id of message.removed) {
        const old = list.querySelector('[data-patient-id="' + CSS.escape(id) + '"]');
        if (old) old.remove();
      }
      state.deltas += 1;
    }

    function setConnected(connected, text) {
      state.connected = connected;
      banner.hidden = connected;
      document.body.classList.toggle("disconnected", !connected);
      live.dataset.state = connected ? "live" : "down";
      liveText.textContent = text;
    }

    function onMessage(event) {
      const message = JSON.parse(event.data);
      lastMessageAt = Date.now();
      state.messages += 1;
      if (message.type === "snapshot") applySnapshot(message);
      else if (message.type === "delta") applyDelta(message);
      if (message.type === "snapshot" || message.type === "delta") {
        sortCards();
        updateSummary();
        updatedAt.dateTime = message.at;
        updatedAt.dataset.clock = message.at;
        updatedAt.textContent = formatClock(message.at);
        attempt = 0;
        setConnected(true, "Live");
      }
    }

    function onClose(event) {
      socket = null;
      if (event.code === 4401) {
        location.assign("/login?next=" + encodeURIComponent(location.pathname));
        return;
      }
      if (event.code === 4403 || event.code === 4404) {
        gaveUp = true;
        setConnected(false, "Ej ansluten");
        banner.textContent = event.code === 4403 ? "Ej ansluten – behörighet saknas för avdelningen."
          : "Ej ansluten – avdelningen finns inte.";
        return;
      }
      setConnected(false, "Ej ansluten");
      const delay = Math.min(30000, 1000 * 2 ** attempt) * (0.5 + Math.random() / 2);
      attempt = Math.min(attempt + 1, 5);
      setTimeout(connect, delay);
    }

    function connect() {
      if (gaveUp) return;
      const scheme = location.protocol === "https:" ? "wss://" : "ws://";
      socket = new WebSocket(scheme + location.host + "/ws/wards/" + encodeURIComponent(wardId));
      lastMessageAt = Date.now();
      socket.addEventListener("message", onMessage);
      socket.addEventListener("close", onClose);
    }

    // A connection that has gone quiet (network dropped, server hung) looks open to the browser.
    setInterval(() => {
      if (socket && socket.readyState === WebSocket.OPEN && Date.now() - lastMessageAt > SILENCE_LIMIT_MS) {
        socket.close();
      }
    }, 5000);
    // Do not flash the banner on a normal page load; show it if the first connect is slow.
    setTimeout(() => { if (!state.connected && !gaveUp) setConnected(false, "Ej ansluten"); }, 3000);
    connect();
  }

  // --- acknowledge, snooze, end ----------------------------------------------------------------

  const ACTION_ERRORS = {
    401: "Du är utloggad – logga in igen.",
    403: "Åtgärden nekades (behörighet eller sessionen har gått ut).",
    404: "Larmet finns inte längre.",
    409: "Larmet har redan ändrats av någon annan.",
  };
  const ACK_ERRORS = Object.assign({}, ACTION_ERRORS, {
    403: "Kvitteringen nekades (behörighet eller sessionen har gått ut).",
    409: "Larmet är redan kvitterat eller avslutat.",
    422: "Anteckningen får vara högst 500 tecken.",
  });

  function postJson(path, body) {
    return fetch(path, {
      method: "POST",
      credentials: "same-origin",
      headers: {
        "Content-Type": "application/json",
        "X-CSRF-Token": document.querySelector('meta[name="csrf-token"]').content,
      },
      body: JSON.stringify(body),
    });
  }

  // The server's own Swedish message when it sends one, else a message for the status.
  async function errorText(response, table, fallback) {
    try {
      const body = await response.json();
      if (body && typeof body.detail === "string") return body.detail;
    } catch (err) { /* not JSON */ }
    return table[response.status] || fallback + " (" + response.status + ").";
  }

  function afterAction() {
    // The ward page is redrawn by the live update; other pages reload to show the new state.
    if (document.body.dataset.page !== "ward") location.reload();
  }

  async function acknowledge(form) {
    const button = form.querySelector("button");
    const error = form.querySelector(".ack-error");
    const note = form.elements.note.value.trim();
    button.disabled = true;
    error.textContent = "";
    try {
      const response = await postJson("/api/alerts/" + encodeURIComponent(form.dataset.alertId) + "/acknowledge",
        note ? { note: note } : {});
      if (response.ok) {
        form.classList.add("ack-sent");
        button.textContent = "Kvitterat";
        afterAction();
        return;
      }
      error.textContent = ACK_ERRORS[response.status] || "Kvitteringen misslyckades (" + response.status + ").";
    } catch (err) {
      error.textContent = "Kvitteringen misslyckades – ingen kontakt med servern.";
    }
    button.disabled = false;
  }

  async function alertAction(actions, action, body, button, doneText) {
    const error = actions.querySelector(".action-error");
    button.disabled = true;
    error.textContent = "";
    try {
      const response = await postJson("/api/alerts/" + encodeURIComponent(actions.dataset.alertId) + "/" + action, body);
      if (response.ok) {
        button.textContent = doneText;
        afterAction();
        return;
      }
      error.textContent = await errorText(response, ACTION_ERRORS, "Åtgärden misslyckades");
    } catch (err) {
      error.textContent = "Åtgärden misslyckades – ingen kontakt med servern.";
    }
    button.disabled = false;
  }

  function resolve(form) {
    const actions = form.closest(".alert-actions");
    const note = form.elements.note.value.trim();
    if (note.length < 3) {
      actions.querySelector(".action-error").textContent = "Skriv varför larmet avslutas (minst 3 tecken).";
      form.elements.note.focus();
      return;
    }
    alertAction(actions, "resolve", { note: note }, form.querySelector("button"), "Avslutat");
  }

  document.addEventListener("click", (event) => {
    const button = event.target instanceof Element ? event.target.closest("button.snooze-button") : null;
    if (!button) return;
    const actions = button.closest(".alert-actions");
    alertAction(actions, "snooze", { minutes: Number(button.dataset.minutes) }, button, "Snoozat");
  });

  // --- manual observation (patient record) ----------------------------------------------------

  function pad(n) { return String(n).padStart(2, "0"); }

  // datetime-local values are the browser's local time; new Date(value) reads them back the same way.
  function localInputValue(date) {
    return date.getFullYear() + "-" + pad(date.getMonth() + 1) + "-" + pad(date.getDate()) + "T" +
      pad(date.getHours()) + ":" + pad(date.getMinutes());
  }

  function startObservationForm(form) {
    const time = form.elements.time;
    const flowField = form.querySelector(".oxygen-flow");
    // The window is care.admin's (check_observation_time), rendered into the form's data attributes.
    const back = Number(form.dataset.maxBackMinutes);
    const ahead = Number(form.dataset.maxAheadMinutes);
    function setTimeBounds() {
      const now = new Date();
      time.max = localInputValue(new Date(now.getTime() + ahead * 60000));
      time.min = localInputValue(new Date(now.getTime() - back * 60000));
      if (!time.dataset.touched) time.value = localInputValue(now);
    }
    time.addEventListener("input", () => { time.dataset.touched = "1"; });
    setTimeBounds();
    setInterval(setTimeBounds, 30000);
    form.addEventListener("change", (event) => {
      if (event.target.name !== "oxygen") return;
      flowField.hidden = form.elements.oxygen.value !== "oxygen";
      if (flowField.hidden) form.elements.oxygen_l_min.value = "";
    });
  }

  async function recordObservation(form) {
    const error = form.querySelector(".observation-error");
    const done = form.querySelector(".observation-done");
    const button = form.querySelector("button[type=submit]");
    const f = form.elements;
    error.textContent = "";
    done.textContent = "";
    if (f.respiratory_rate.validity.badInput) {
      error.textContent = "Andningsfrekvensen måste vara ett heltal mellan 1 och 80 /min";
      return;
    }
    if (f.oxygen_l_min.validity.badInput) {
      error.textContent = "Syrgasflödet måste vara större än 0 och högst 15 l/min";
      return;
    }
    const oxygen = f.oxygen.value;
    const body = {
      respiratory_rate: f.respiratory_rate.value === "" ? null : Number(f.respiratory_rate.value),
      consciousness: f.consciousness.value || null,
      on_oxygen: oxygen === "" ? null : oxygen === "oxygen",
      oxygen_l_min: oxygen === "oxygen" && f.oxygen_l_min.value !== "" ? Number(f.oxygen_l_min.value) : null,
      time: f.time.dataset.touched && f.time.value ? new Date(f.time.value).toISOString() : null,
    };
    button.disabled = true;
    try {
      const response = await postJson("/api/patients/" + encodeURIComponent(form.dataset.patientId) +
        "/observations", body);
      if (response.ok) {
        done.textContent = "Sparad.";
        location.reload();
        return;
      }
      error.textContent = await errorText(response, ACTION_ERRORS, "Observationen kunde inte sparas");
    } catch (err) {
      error.textContent = "Observationen kunde inte sparas – ingen kontakt med servern.";
    }
    button.disabled = false;
  }

  // --- care-team orders (patient record): alert limits, SpO2 scale, monitoring plan --------------

  const ORDER_ERRORS = {
    401: "Du är utloggad – logga in igen.",
    403: "Åtgärden nekades (behörighet eller sessionen har gått ut).",
    404: "Det som skulle ändras finns inte längre – ladda om sidan.",
    409: "Någon annan har redan ändrat detta – ladda om sidan.",
  };

  async function sendOrder(path, body, button, error) {
    error.textContent = "";
    button.disabled = true;
    try {
      const response = await postJson("/api/patients/" + encodeURIComponent(document.body.dataset.patientId) + path, body);
      if (response.ok) {
        location.reload();
        return;
      }
      error.textContent = await errorText(response, ORDER_ERRORS, "Ändringen kunde inte sparas");
    } catch (err) {
      error.textContent = "Ändringen kunde inte sparas – ingen kontakt med servern.";
    }
    button.disabled = false;
  }

  function numberOrNull(input) {
    return input.value === "" || input.validity.badInput ? null : Number(input.value);
  }

  function setLimit(form) {
    const f = form.elements;
    sendOrder("/limits", {
      rule: form.dataset.rule,
      priority: f.priority.value,
      limit: numberOrNull(f.limit),
      reason: f.reason.value,
      valid_until: f.valid_until.value ? new Date(f.valid_until.value).toISOString() : null,
    }, form.querySelector("button[type=submit]"), form.querySelector(".order-error"));
  }

  function orderScale(form) {
    const f = form.elements;
    sendOrder("/spo2-scale", { scale: Number(f.scale.value), reason: f.reason.value },
      form.querySelector("button[type=submit]"), form.querySelector(".order-error"));
  }

  function setPlan(form) {
    const f = form.elements;
    const every = numberOrNull(f.every);
    // 1,5 timme is 90 min; rounding away float noise keeps whole minutes whole.
    const minutes = every === null ? null : Math.round(every * Number(f.unit.value) * 1e6) / 1e6;
    sendOrder("/plan", { vital: f.vital.value, every_minutes: minutes },
      form.querySelector("button[type=submit]"), form.querySelector(".order-error"));
  }

  document.addEventListener("click", (event) => {
    const button = event.target instanceof Element ? event.target.closest("button.confirm-button") : null;
    if (!button) return;
    const error = button.closest("td, li").querySelector(".order-error");
    if (button.classList.contains("limit-revoke-button")) {
      sendOrder("/limits/" + encodeURIComponent(button.dataset.limitId) + "/revoke", {}, button, error);
    } else if (button.classList.contains("plan-clear-button")) {
      sendOrder("/plan/" + encodeURIComponent(button.dataset.vital) + "/clear", {}, button, error);
    }
  });

  document.addEventListener("submit", (event) => {
    const form = event.target;
    if (!(form instanceof HTMLFormElement)) return;
    if (form.classList.contains("limit-form")) {
      event.preventDefault();
      setLimit(form);
    } else if (form.classList.contains("scale-form")) {
      event.preventDefault();
      orderScale(form);
    } else if (form.classList.contains("plan-form")) {
      event.preventDefault();
      setPlan(form);
    } else if (form.classList.contains("ack-form")) {
      event.preventDefault();
      acknowledge(form);
    } else if (form.classList.contains("resolve-form")) {
      event.preventDefault();
      resolve(form);
    } else if (form.classList.contains("observation-form")) {
      event.preventDefault();
      recordObservation(form);
    }
  });

  setInterval(() => {
    refreshTimes(document);
    document.querySelectorAll("[data-clock]").forEach((node) => { node.textContent = formatClock(node.dataset.clock); });
  }, 30000);

  if (document.body.dataset.page === "ward") startWard(document.body.dataset.wardId);
  document.querySelectorAll("form.observation-form").forEach(startObservationForm);
})();
