// The on-call phone view (dashboard.alert_phone). The page works without this file: "Kvittera" is a
// plain form POST. Here only a second tap (a slow network, a shaking hand) is kept from sending twice.
(function () {
  "use strict";
  var form = document.querySelector("form.phone-ack");
  if (!form) return;
  form.addEventListener("submit", function (event) {
    var button = form.querySelector(".phone-ack-button");
    if (form.dataset.sent === "1") {
      event.preventDefault();
      return;
    }
    form.dataset.sent = "1";
    button.setAttribute("aria-disabled", "true");
    button.textContent = "Kvitterar …";
  });
})();
