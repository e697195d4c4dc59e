// The booking-link form: show only the fields that apply to the choices made (the slug for a
// public link, the dates of a fixed window, the text of an address, phone or video link).
// Without this file every field is shown and the server ignores the ones that do not apply.
(function () {
  "use strict";
  var form = document.getElementById("link-form");
  if (!form) { return; }
  var blocks = form.querySelectorAll("[data-show-when]");

  function chosen(name) {
    var checked = form.querySelector('input[name="' + name + '"]:checked');
    return checked ? checked.value : null;
  }

  function update() {
    for (var i = 0; i < blocks.length; i++) {
      var rule = blocks[i].getAttribute("data-show-when").split("=");
      var value = chosen(rule[0]);
      // A group with nothing to choose from (e.g. a saved link's kind) leaves the block shown.
      blocks[i].hidden = value !== null && rule[1].split(",").indexOf(value) < 0;
    }
  }

  form.addEventListener("change", update);
  update();
}());
