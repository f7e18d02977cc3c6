// "Pröva gränsen" on the patient record (dashboard.record_limit_replay): what a proposed limit or SpO2
// scale would have done to this patient's alerts, shown under the form before anyone saves it. The
// server does the replay and words the answer (care.limit_replay); this file only sends the form's
// values and puts the sentences in place, as text.
(function () {
  "use strict";
  const patientId = document.body.dataset.patientId;
  if (!patientId) return;

  function bodyOf(form) {
    const body = { period: form.querySelector("[name=replay_period]").value };
    if (form.classList.contains("limit-form")) {
      const limit = form.querySelector("[name=limit]").value.trim();
      body.rule = form.dataset.rule;
      body.priority = form.querySelector("[name=priority]").value;
      body.limit = limit === "" ? null : Number(limit.replace(",", "."));
      if (body.limit !== null && !Number.isFinite(body.limit)) body.limit = limit;  // the server says why
    } else {
      body.spo2_scale = Number(form.querySelector("[name=scale]").value);
    }
    return body;
  }

  function show(result, lines, failed) {
    result.replaceChildren();
    result.classList.toggle("replay-failed", failed);
    for (const line of lines) {
      const p = document.createElement("p");
      p.className = "replay-summary";
      p.textContent = line;
      result.appendChild(p);
    }
  }

  async function tryLimit(button) {
    const form = button.closest("form");
    const result = form.querySelector(".replay-result");
    button.setAttribute("aria-busy", "true");
    show(result, ["Prövar mot sparade mätvärden …"], false);
    try {
      const response = await fetch(`/api/patients/${patientId}/limit-replay`, {
        method: "POST",
        credentials: "same-origin",
        headers: {
          "Content-Type": "application/json",
          "X-CSRF-Token": document.querySelector('meta[name="csrf-token"]').content,
        },
        body: JSON.stringify(bodyOf(form)),
      });
      const answer = await response.json().catch(() => ({}));
      if (!response.ok) {
        show(result, [typeof answer.detail === "string" ? answer.detail : "Gränsen kunde inte prövas."], true);
        return;
      }
      const lines = answer.keys.map((key) => key.summary);
      lines.push(`${answer.readings} sparade mätvärden prövade med larmmotorns egna regler; inget är sparat.`);
      show(result, lines, false);
      result.dataset.keys = JSON.stringify(answer.keys.map((k) => [k.rule, k.current.length, k.proposed.length]));
    } catch (err) {
      show(result, ["Gränsen kunde inte prövas (ingen kontakt med servern)."], true);
    } finally {
      button.removeAttribute("aria-busy");
    }
  }

  document.addEventListener("click", (event) => {
    const button = event.target.closest(".replay-button");
    if (button) tryLimit(button);
  });
})();
