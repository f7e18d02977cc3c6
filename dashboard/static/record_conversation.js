// Hemma patient record: the conversation section's forms (messages to the patient, self-care
// instructions). Each posts JSON to /api/patients/<id><path> with the session's CSRF header and
// reloads the record on success; a refusal's Swedish text is shown beside the form. Texts are the
// server's: this script formats nothing.
(function () {
  "use strict";
  const patientId = document.body.dataset.patientId;
  const csrf = document.querySelector('meta[name="csrf-token"]');
  if (!patientId || !csrf) return;

  async function post(path, body, button, error) {
    error.textContent = "";
    button.disabled = true;
    try {
      const response = await fetch("/api/patients/" + encodeURIComponent(patientId) + path, {
        method: "POST",
        credentials: "same-origin",
        headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf.content },
        body: JSON.stringify(body),
      });
      if (response.ok) {
        location.reload();
        return;
      }
      let detail = "";
      try { detail = (await response.json()).detail || ""; } catch (err) { detail = ""; }
      error.textContent = detail || "Det gick inte att spara (" + response.status + ")";
    } catch (err) {
      error.textContent = "Ingen kontakt med servern. Försök igen.";
    }
    button.disabled = false;
  }

  document.addEventListener("submit", (event) => {
    const form = event.target;
    if (!(form instanceof HTMLFormElement) || !form.classList.contains("conversation-form")) return;
    event.preventDefault();
    const body = {};
    for (const [name, value] of new FormData(form).entries()) body[name] = String(value);
    post(form.dataset.path, body, form.querySelector("button[type=submit]"), form.querySelector(".order-error"));
  });

  document.addEventListener("click", (event) => {
    const button = event.target instanceof Element ? event.target.closest("button.conversation-clear-button") : null;
    if (!button) return;
    const error = button.closest("li").querySelector(".order-error");
    post("/self-care/clear", { rule: button.dataset.rule }, button, error);
  });
})();
