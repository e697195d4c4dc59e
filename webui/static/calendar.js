/* homecal calendar view: optional keyboard shortcuts and a sensible first scroll position.
   Every shortcut only follows a link that is on the page anyway (marked data-key), so the
   view works the same without this file. */
(function () {
  "use strict";

  function typing(target) {
    if (!target) return false;
    var tag = target.tagName;
    return tag === "INPUT" || tag === "TEXTAREA" || tag === "SELECT" || target.isContentEditable;
  }

  document.addEventListener("keydown", function (event) {
    if (event.defaultPrevented || event.altKey || event.ctrlKey || event.metaKey || typing(event.target)) {
      return;
    }
    var key = event.key && event.key.length === 1 ? event.key.toLowerCase() : "";
    if (!key) return;
    var link = document.querySelector('a[data-key="' + key + '"]');
    if (link) {
      event.preventDefault();
      window.location.assign(link.href);
    }
  });

  document.addEventListener("DOMContentLoaded", function () {
    // Start the day and week grids at 07:00 (row 29) unless something earlier is on show.
    var scroller = document.getElementById("cal-scroll");
    if (!scroller) return;
    var hourLabel = scroller.querySelector(".cal-hours .slot-r29");
    if (!hourLabel) return;
    var earliest = hourLabel.offsetTop;
    scroller.querySelectorAll(".cal-day .ev, .cal-day .ev-more").forEach(function (el) {
      earliest = Math.min(earliest, el.offsetTop);
    });
    scroller.scrollTop = Math.max(0, earliest - 8);
  });
})();
