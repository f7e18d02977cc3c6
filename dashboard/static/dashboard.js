// Hemma's pages: the ward overview's live updates, and the buttons and forms of the ward and the
// patient record (acknowledge/snooze/end alerts, manual observations, the care team's orders).
// Plain JavaScript, no libraries. The server renders every card and every text (dashboard/rendering.py
// with templates/_cards.html, the page's own macros): this script swaps in the HTML fragments the
// websocket brings and formats nothing itself. Times, Swedish words and the cards' order all come
// from the server; a card's relative ages are re-rendered there when time alone changes them
// (dashboard/card_times.py), so the page shows the one formatter's text and never a second one's.
// Fragments are parsed with DOMParser (never innerHTML): it runs no script, and the page's CSP
// allows none inline. The few texts this script shows on its own (a request that failed) are the
// server's too, rendered into <body data-texts> (dashboard/client_texts.py).
"use strict";

(function () {
  const SILENCE_LIMIT_MS = 45 * 1000; // the server sends a heartbeat every 15 s
  const TEXTS = JSON.parse(document.body.dataset.texts || "{}");
  const parser = new DOMParser();

  // Tests and staff tooling can read this; pageId changes only when the page is reloaded.
  const state = (window.hemma = {
    pageId: Math.random().toString(36).slice(2),
    loadedAt: Date.now(),
    connected: false,
    messages: 0,
    snapshots: 0,
    deltas: 0,
  });

  function nodesOf(html) {
    return Array.from(parser.parseFromString(html, "text/html").body.childNodes);
  }

  function elementOf(html) {
    return parser.parseFromString(html, "text/html").body.firstElementChild;
  }

  // A row of the compact list: a <tr> parsed on its own would be dropped by the HTML parser.
  function rowOf(html) {
    return parser.parseFromString("<table><tbody>" + html + "</tbody></table>", "text/html").querySelector("tr");
  }

  // A text of the server's for this situation: "ack.409", or the group's "failed" text with the status.
  function text(group, key, status) {
    const texts = TEXTS[group] || {};
    return (texts[key] || texts.failed || "").replace("{status}", String(status));
  }

  // --- the ward overview --------------------------------------------------------------------

  function startWard(wardId) {
    const list = document.getElementById("patients");
    const banner = document.getElementById("connection-banner");
    const live = document.getElementById("live-status");
    const liveText = document.getElementById("live-text");
    const tools = document.getElementById("ward-tools");
    const empty = document.getElementById("no-patients");
    const isList = document.body.dataset.view === "lista";
    const fragmentOf = isList ? rowOf : elementOf;
    let socket = null;
    let attempt = 0;
    let lastMessageAt = 0;
    let gaveUp = false;
    let columnSort = null; // {key, descending} once staff sort the list by a column

    // The view as the form says: vy, visa (filters), sok (search); the page's URL and the websocket's.
    function viewQuery() {
      const query = new URLSearchParams();
      for (const [name, value] of new FormData(tools)) {
        if (name !== "sok" || value.trim()) query.append(name, name === "sok" ? value.trim() : value);
      }
      return query.toString();
    }

    function viewMessage() {
      const form = new FormData(tools);
      return { type: "view", filters: form.getAll("visa"), search: String(form.get("sok") || "").trim() };
    }

    // A filter or the search changed: the URL says so (a link can be shared), and the websocket asks
    // the server for the patients the new view shows (dashboard/ward_view.py decides, not this script).
    let viewTimer = null;
    function viewChanged() {
      clearTimeout(viewTimer);
      viewTimer = setTimeout(() => {
        history.replaceState(null, "", location.pathname + "?" + viewQuery());
        const narrowed = viewMessage();
        empty.textContent = narrowed.filters.length || narrowed.search ? empty.dataset.textNarrowed : empty.dataset.textAll;
        document.querySelectorAll(".view-toggle a").forEach((link) => {
          const query = new URLSearchParams(viewQuery());
          query.set("vy", link.dataset.vy);
          link.href = "?" + query.toString();
        });
        if (socket && socket.readyState === WebSocket.OPEN) socket.send(JSON.stringify(narrowed));
      }, 120);
    }
    tools.addEventListener("input", viewChanged);
    tools.addEventListener("change", viewChanged);
    tools.addEventListener("submit", (event) => { event.preventDefault(); viewChanged(); });

    function cardById(id) {
      return list.querySelector('[data-patient-id="' + CSS.escape(id) + '"]');
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
      const within = old.querySelector("select.contact-call-within");
      const withinTwin = fresh.querySelector("select.contact-call-within");
      if (within && withinTwin) withinTwin.value = within.value; // the call time a nurse has chosen
      old.querySelectorAll(".alert-actions .action-error").forEach((error) => {
        const id = error.closest(".alert-actions").dataset.alertId;
        const twin = fresh.querySelector('.alert-actions[data-alert-id="' + id + '"] .action-error');
        if (twin) twin.textContent = error.textContent;
      });
      old.replaceWith(fresh);
    }

    // Each fragment names its patient and carries a digest of itself (data-v, dashboard/rendering.py):
    // one the page already shows is left alone unparsed (the first snapshot repeats the page's own
    // render). Returns the cards put in or replaced.
    const FRAGMENT_HEAD = /^<[a-z]+[^>]*? data-v="([0-9a-f]+)" data-patient-id="([^"]+)"/;
    function upsert(fragments) {
      const placed = [];
      for (const html of fragments) {
        const head = FRAGMENT_HEAD.exec(html);
        const old = head ? cardById(head[2]) : null;
        if (old && old.dataset.v === head[1]) continue;
        const fresh = fragmentOf(html);
        if (old) replaceCard(old, fresh);
        else list.append(fresh);
        placed.push(fresh);
      }
      return placed;
    }

    // The ward's one order (PatientCard.sort_key) is each card's data-order, a string that sorts as the
    // server sorts: a changed card finds its own place, so a delta never carries the whole order.
    function before(a, b) {
      return a.dataset.order < b.dataset.order;
    }

    function inOrder(card) {
      const prev = card.previousElementSibling;
      const next = card.nextElementSibling;
      return (!prev || !before(card, prev)) && (!next || !before(next, card));
    }

    function place(card) {
      if (inOrder(card)) return;
      card.remove();
      const rows = list.children;
      let low = 0;
      let high = rows.length;
      while (low < high) {
        const mid = (low + high) >> 1;
        if (before(rows[mid], card)) low = mid + 1;
        else high = mid;
      }
      list.insertBefore(card, rows[low] || null);
    }

    // Cards into the order of `cards`; a card is moved only when out of place.
    function applyOrder(cards) {
      cards.forEach((card, i) => {
        if (list.children[i] !== card) list.insertBefore(card, list.children[i] || null);
      });
    }

    function setParts(parts) {
      for (const [id, html] of Object.entries(parts || {})) {
        const node = document.getElementById(id);
        if (node) node.replaceChildren(...nodesOf(html));
      }
      empty.hidden = list.children.length > 0;
      document.getElementById("shown-n").textContent = String(list.children.length);
    }

    // Also after a reconnect or a changed filter: cards are replaced in place (a half-typed note
    // survives), others go.
    function applySnapshot(message) {
      const ids = new Set(message.cards.map((html) => (FRAGMENT_HEAD.exec(html) || [])[2]));
      Array.from(list.children).forEach((card) => { if (!ids.has(card.dataset.patientId)) card.remove(); });
      upsert(message.cards);
      sortList();
      state.snapshots += 1;
    }

    function applyDelta(message) {
      const placed = upsert(message.cards);
      for (const id of message.removed) {
        const old = cardById(id);
        if (old) old.remove();
      }
      if (columnSort) sortList();
      else placed.forEach(place);
      state.deltas += 1;
    }

    // --- the list's columns: the server's order (acuity then risk), or one staff chose ----------

    function cellTime(row, column) {
      const time = row.cells[column].querySelector("time");
      return time ? Date.parse(time.dateTime) : Number.NEGATIVE_INFINITY;
    }

    const SORT_VALUES = {
      name: (row) => row.cells[0].textContent.trim(),
      news2: (row) => { const m = /\d+/.exec(row.cells[2].textContent); return m ? Number(m[0]) : -1; },
      age: (row) => cellTime(row, 5),
      review: (row) => cellTime(row, 8),
    };

    function byOrder(a, b) {
      return before(a, b) ? -1 : before(b, a) ? 1 : 0;
    }

    function sortList() {
      const rows = Array.from(list.children);
      if (!columnSort || !SORT_VALUES[columnSort.key]) {
        applyOrder(rows.sort(byOrder));
        return;
      }
      const value = SORT_VALUES[columnSort.key];
      rows.sort((a, b) => {
        const x = value(a);
        const y = value(b);
        const c = typeof x === "string" ? x.localeCompare(y, "sv") : x - y;
        return (columnSort.descending ? -c : c) || byOrder(a, b);
      });
      applyOrder(rows);
    }

    // The headers' buttons (rendered disabled: without this script the list keeps the server's order).
    document.querySelectorAll(".ward-table th[data-sort]").forEach((th) => {
      const button = th.querySelector("button.sort-button");
      button.disabled = false;
      button.addEventListener("click", () => {
        const key = th.dataset.sort;
        // NEWS2 highest first; the rest ascending; a second click reverses.
        const first = key === "news2";
        columnSort = key === "acuity" ? null
          : columnSort && columnSort.key === key ? { key: key, descending: !columnSort.descending }
            : { key: key, descending: first };
        document.querySelectorAll(".ward-table th[data-sort]").forEach((other) => other.removeAttribute("aria-sort"));
        th.setAttribute("aria-sort", columnSort && columnSort.descending ? "descending" : "ascending");
        sortList();
      });
    });

    function setConnected(connected) {
      state.connected = connected;
      banner.hidden = connected;
      document.body.classList.toggle("disconnected", !connected);
      live.dataset.state = connected ? "live" : "down";
      liveText.textContent = connected ? live.dataset.textLive : live.dataset.textDown;
    }

    function onMessage(event) {
      const message = JSON.parse(event.data);
      lastMessageAt = Date.now();
      state.messages += 1;
      if (message.type === "snapshot") applySnapshot(message);
      else if (message.type === "delta") applyDelta(message);
      if (message.type === "snapshot" || message.type === "delta") {
        setParts(message.parts);
        attempt = 0;
        setConnected(true);
      }
    }

    function onClose(event) {
      socket = null;
      if (event.code === 4401) {
        location.assign("/login?next=" + encodeURIComponent(location.pathname));
        return;
      }
      setConnected(false);
      const finalText = banner.getAttribute("data-text-" + event.code);
      if (finalText) { // 4403 no access to the ward, 4404 no such ward: trying again cannot help
        gaveUp = true;
        banner.textContent = finalText;
        return;
      }
      const delay = Math.min(30000, 1000 * 2 ** attempt) * (0.5 + Math.random() / 2);
      attempt = Math.min(attempt + 1, 5);
      setTimeout(connect, delay);
    }

    function connect() {
      if (gaveUp) return;
      const scheme = location.protocol === "https:" ? "wss://" : "ws://";
      socket = new WebSocket(scheme + location.host + "/ws/wards/" + encodeURIComponent(wardId) + "?" + viewQuery());
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
    setTimeout(() => { if (!state.connected && !gaveUp) setConnected(false); }, 3000);
    connect();
  }

  // --- acknowledge, snooze, end ----------------------------------------------------------------

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

  // The server's own message when it sends one, else the page's text for the status.
  async function errorText(response, group) {
    try {
      const body = await response.json();
      if (body && typeof body.detail === "string") return body.detail;
    } catch (err) { /* not JSON */ }
    return text(group, String(response.status), response.status);
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
        button.textContent = button.dataset.done;
        afterAction();
        return;
      }
      error.textContent = text("ack", String(response.status), response.status);
    } catch (err) {
      error.textContent = text("ack", "offline");
    }
    button.disabled = false;
  }

  async function alertAction(actions, action, body, button) {
    const error = actions.querySelector(".action-error");
    button.disabled = true;
    error.textContent = "";
    try {
      const response = await postJson("/api/alerts/" + encodeURIComponent(actions.dataset.alertId) + "/" + action, body);
      if (response.ok) {
        button.textContent = button.dataset.done;
        afterAction();
        return;
      }
      error.textContent = await errorText(response, "action");
    } catch (err) {
      error.textContent = text("action", "offline");
    }
    button.disabled = false;
  }

  function resolve(form) {
    const actions = form.closest(".alert-actions");
    const note = form.elements.note.value.trim();
    if (note.length < 3) {
      actions.querySelector(".action-error").textContent = form.dataset.tooShort;
      form.elements.note.focus();
      return;
    }
    alertAction(actions, "resolve", { note: note }, form.querySelector("button"));
  }

  document.addEventListener("click", (event) => {
    const button = event.target instanceof Element ? event.target.closest("button.snooze-button") : null;
    if (!button) return;
    const actions = button.closest(".alert-actions");
    alertAction(actions, "snooze", { minutes: Number(button.dataset.minutes) }, button);
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
    // A number field the browser cannot read sends nothing: say so rather than record an empty field.
    if (f.respiratory_rate.validity.badInput) {
      error.textContent = text("observation", "respiratory_rate");
      return;
    }
    if (f.oxygen_l_min.validity.badInput) {
      error.textContent = text("observation", "oxygen_l_min");
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
        done.textContent = text("observation", "saved");
        location.reload();
        return;
      }
      error.textContent = await errorText(response, "observation");
    } catch (err) {
      error.textContent = text("observation", "offline");
    }
    button.disabled = false;
  }

  // --- "Kontakta mig": take a contact request, close it with the answer given -----------------------

  async function contactAction(box, action, body, button) {
    const error = box.querySelector(".contact-error");
    button.disabled = true;
    error.textContent = "";
    try {
      const response = await postJson("/api/patients/" + encodeURIComponent(box.dataset.patientId) +
        "/contact-requests/" + encodeURIComponent(box.dataset.contactId) + "/" + action, body);
      if (response.ok) {
        button.textContent = button.dataset.done;
        afterAction();
        return;
      }
      error.textContent = await errorText(response, "action");
    } catch (err) {
      error.textContent = text("action", "offline");
    }
    button.disabled = false;
  }

  document.addEventListener("click", (event) => {
    const button = event.target instanceof Element ? event.target.closest("button.contact-take-button") : null;
    if (!button) return;
    const box = button.closest(".contact-request");
    const within = box.querySelector("select.contact-call-within");
    contactAction(box, "take", within ? { call_within_minutes: Number(within.value) } : {}, button);
  });

  // --- care-team orders (patient record): alert limits, SpO2 scale, monitoring plan --------------

  async function sendOrder(path, body, button, error) {
    error.textContent = "";
    button.disabled = true;
    try {
      const response = await postJson("/api/patients/" + encodeURIComponent(document.body.dataset.patientId) + path, body);
      if (response.ok) {
        location.reload();
        return;
      }
      error.textContent = await errorText(response, "order");
    } catch (err) {
      error.textContent = text("order", "offline");
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

  function addKitDevice(form) {
    const f = form.elements;
    sendOrder("/kit/devices", {
      address: f.address.value,
      profile: f.profile.value,
      passkey: f.passkey.value === "" ? null : f.passkey.value,
    }, form.querySelector("button[type=submit]"), form.querySelector(".order-error"));
  }

  document.addEventListener("click", (event) => {
    const button = event.target instanceof Element ? event.target.closest("button.confirm-button") : null;
    if (!button) return;
    const error = button.closest("td, li").querySelector(".order-error");
    if (button.classList.contains("limit-revoke-button")) {
      sendOrder("/limits/" + encodeURIComponent(button.dataset.limitId) + "/revoke", {}, button, error);
    } else if (button.classList.contains("plan-clear-button")) {
      sendOrder("/plan/" + encodeURIComponent(button.dataset.vital) + "/clear", {}, button, error);
    } else if (button.classList.contains("kit-remove-button")) {
      sendOrder("/kit/devices/" + encodeURIComponent(button.dataset.address) + "/remove", {}, button, error);
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
    } else if (form.classList.contains("kit-form")) {
      event.preventDefault();
      addKitDevice(form);
    } else if (form.classList.contains("ack-form")) {
      event.preventDefault();
      acknowledge(form);
    } else if (form.classList.contains("contact-close-form")) {
      event.preventDefault();
      contactAction(form.closest(".contact-request"), "close", { note: form.elements.note.value },
        form.querySelector("button"));
    } else if (form.classList.contains("resolve-form")) {
      event.preventDefault();
      resolve(form);
    } else if (form.classList.contains("observation-form")) {
      event.preventDefault();
      recordObservation(form);
    }
  });

  if (document.body.dataset.page === "ward") startWard(document.body.dataset.wardId);
  document.querySelectorAll("form.observation-form").forEach(startObservationForm);
})();
