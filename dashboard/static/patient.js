// Hemma patient app: keeps the screen's news current without a reload and without taking anything
// from the patient. An element with `data-live="<url>"` is refreshed from that URL (an HTML fragment
// of the same element's contents). A region the patient is typing in, or has focus in, is left alone
// until they are done; a region with aria-live announces its change to a screen reader. Pages work
// without this script.
//
// How often: every `data-poll-ms` of <body> while something is under way (an element with
// `data-live-pending` anywhere on the page: a contact request not yet answered), else six times as
// seldom; and not at all after 20 minutes without a touch or a key (a tablet left on the table), until
// the next touch, key or return to the page, which refreshes at once. Every refresh is a read of the
// patient's data and is written to the access log, so a screen nobody looks at must not read.
(function () {
  "use strict";
  const body = document.body;
  const fast = Number(body.dataset.pollMs || "10000");
  const slow = fast * 6;
  const idleAfter = 20 * 60 * 1000;
  const regions = Array.from(document.querySelectorAll("[data-live]"));
  if (!regions.length) return;
  let lastInput = Date.now();
  let timer = null;

  function busy(region) {
    const active = document.activeElement;
    return active && active !== document.body && region.contains(active);
  }

  async function refresh(region) {
    if (busy(region)) return;
    let response;
    try {
      response = await fetch(region.dataset.live, { credentials: "same-origin", headers: { Accept: "text/html" } });
    } catch (err) {
      return; // offline for a moment: the next round tries again
    }
    if (response.status === 401) { window.location.reload(); return; }
    if (!response.ok) return;
    const html = (await response.text()).trim();
    if (region.dataset.liveLast === html || busy(region)) return;
    region.dataset.liveLast = html;
    region.innerHTML = html;
  }

  function schedule() {
    clearTimeout(timer);
    if (document.visibilityState === "hidden" || Date.now() - lastInput > idleAfter) return;
    timer = setTimeout(round, document.querySelector("[data-live-pending]") ? fast : slow);
  }

  async function round() {
    if (document.visibilityState !== "hidden") await Promise.all(regions.map(refresh));
    schedule();
  }

  function woke() {
    const wasIdle = Date.now() - lastInput > idleAfter;
    lastInput = Date.now();
    if (wasIdle) round();
  }

  regions.forEach((region) => { region.dataset.liveLast = region.innerHTML.trim(); });
  ["pointerdown", "keydown", "touchstart", "wheel"].forEach((kind) =>
    document.addEventListener(kind, woke, { passive: true }));
  document.addEventListener("visibilitychange", () => {
    if (document.visibilityState === "visible") { lastInput = Date.now(); round(); } else clearTimeout(timer);
  });
  schedule();
})();
