// Adding a CalDAV account: when another provider preset is picked, show its hints at once
// (the server renders the same hints after a submit, so the form works without this file).
(function () {
  "use strict";
  var radios = document.querySelectorAll('input[name="preset"][data-password-hint]');
  if (!radios.length) { return; }
  var nameInput = document.getElementById("name");

  function setHint(fieldId, text) {
    var hint = document.getElementById(fieldId + "-hint");
    if (hint && text) { hint.textContent = text; }
  }

  function current() {
    for (var i = 0; i < radios.length; i++) { if (radios[i].checked) { return radios[i]; } }
    return null;
  }

  var previous = current();
  for (var i = 0; i < radios.length; i++) {
    radios[i].addEventListener("change", function (event) {
      var chosen = event.target;
      setHint("url", chosen.getAttribute("data-url-hint"));
      setHint("username", chosen.getAttribute("data-username-hint"));
      setHint("password", chosen.getAttribute("data-password-hint"));
      // Follow the preset in the name only while the user has not typed one of their own.
      if (nameInput && previous && (nameInput.value === "" || nameInput.value === previous.getAttribute("data-label"))) {
        nameInput.value = chosen.value === "other" ? "" : chosen.getAttribute("data-label");
      }
      previous = chosen;
    });
  }
}());
