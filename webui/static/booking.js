// The visitors' booking pages: show times in the browser's own time zone.
// Without this file the page works the same: it shows the host's zone, clearly named, and
// a "Show times" form to pick another. With it, a page opened without a zone in its address
// (a shared link) reloads once in the zone the browser reports, if the server knows it.
(function () {
  "use strict";
  var zone;
  try {
    zone = Intl.DateTimeFormat().resolvedOptions().timeZone;
  } catch (e) {
    return;
  }
  if (!zone) { return; }

  // The slots page: pick the zone in the form and send it (once: the new address has a tz).
  var form = document.getElementById("tz-form");
  var select = document.getElementById("tz");
  if (form && select && form.getAttribute("data-auto") === "1" && select.value !== zone) {
    for (var i = 0; i < select.options.length; i++) {
      if (select.options[i].value === zone) {
        select.value = zone;
        form.submit();
        return;
      }
    }
  }

  // The booking form opened directly: record the browser's zone with the booking.
  var hidden = document.getElementById("booking-tz");
  if (hidden && hidden.getAttribute("data-auto") === "1") {
    hidden.value = zone;
  }
}());
