// Hemma patient app: keeps the screen's news current without a reload and without taking anything
// from the patient. An element with `data-live="<url>"` is refreshed from that URL (an HTML fragment
// of the same element's contents) every `data-poll-ms` of <body>, and at once when the page becomes
// visible again. A region the patient is typing in, or has focus in, is left alone until they are
// done; a region with aria-live announces its change to a screen reader. Pages work without it.
(function () {
  "use strict";
  const body = document.body;
  const every = Number(body.dataset.pollMs || "10000");
  const regions = Array.from(document.querySelectorAll("[data-live]"));
  if (!regions.length) return;

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
    const html = await response.text();
    if (region.dataset.liveLast === html || busy(region)) return;
    region.dataset.liveLast = html;
    region.innerHTML = html;
  }

  function round() {
    if (document.visibilityState === "hidden") return;
    regions.forEach(refresh);
  }

  regions.forEach((region) => { region.dataset.liveLast = region.innerHTML.trim(); });
  setInterval(round, every);
  document.addEventListener("visibilitychange", round);
})();
