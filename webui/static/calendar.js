/* homecal calendar view: optional keyboard shortcuts and a sensible first scroll position.
   Every shortcut only follows a link that is on the page anyway (marked data-key), so the
   view works the same without this file. Single-key shortcuts can get in the way of speech
   input and some assistive tools, so a button turns them off (remembered in this browser). */
(function () {
  "use strict";

  var STORAGE_KEY = "homecal.calendar.shortcuts";

  function shortcutsOn() {
    try {
      return window.localStorage.getItem(STORAGE_KEY) !== "off";
    } catch (err) {
      return true; // storage blocked: keep the default
    }
  }

  function remember(on) {
    try {
      window.localStorage.setItem(STORAGE_KEY, on ? "on" : "off");
    } catch (err) {
      /* not remembered; still applies to this page */
    }
  }

  var enabled = shortcutsOn();

  function typing(target) {
    if (!target) return false;
    var tag = target.tagName;
    return tag === "INPUT" || tag === "TEXTAREA" || tag === "SELECT" || target.isContentEditable;
  }

  document.addEventListener("keydown", function (event) {
    if (!enabled || event.defaultPrevented || event.altKey || event.ctrlKey || event.metaKey || typing(event.target)) {
      return;
    }
    var key = event.key ? event.key.toLowerCase() : "";
    if (!/^[a-z]$/.test(key)) return;
    var link = document.querySelector('a[data-key="' + key + '"]');
    if (link) {
      event.preventDefault();
      window.location.assign(link.href);
    }
  });

  function showState(button, state) {
    button.setAttribute("aria-pressed", enabled ? "true" : "false");
    if (state) state.textContent = enabled ? "on" : "off";
    // Announce shortcuts on the links only while they work.
    document.querySelectorAll("a[data-key]").forEach(function (link) {
      if (enabled) {
        link.setAttribute("aria-keyshortcuts", link.getAttribute("data-key"));
      } else {
        link.removeAttribute("aria-keyshortcuts");
      }
    });
  }

  function setUpToggle() {
    var box = document.getElementById("cal-shortcuts");
    var button = document.getElementById("cal-shortcuts-toggle");
    var state = document.getElementById("cal-shortcuts-state");
    if (!box || !button) return;
    showState(button, state);
    button.addEventListener("click", function () {
      enabled = !enabled;
      remember(enabled);
      showState(button, state);
    });
    box.hidden = false;
  }

  function scrollToMorning() {
    // Start the day and week grids at 07:00 (row 29) unless an event starts earlier (the
    // rest of a night event that began the day before does not count).
    var scroller = document.getElementById("cal-scroll");
    if (!scroller) return;
    var hourLabel = scroller.querySelector(".cal-hours .slot-r29");
    if (!hourLabel) return;
    var earliest = hourLabel.offsetTop;
    scroller.querySelectorAll(".cal-day .ev:not(.from-before), .cal-day .ev-more").forEach(function (el) {
      earliest = Math.min(earliest, el.offsetTop);
    });
    scroller.scrollTop = Math.max(0, earliest - 8);
  }

  document.addEventListener("DOMContentLoaded", function () {
    setUpToggle();
    scrollToMorning();
  });
})();
