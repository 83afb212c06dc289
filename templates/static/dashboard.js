// The dashboard's only script: it keeps the Pending count and list fresh without a reload,
// and, if the person asked for it in Settings, opens the consent page of a new request.
// Everything works without it (the pages are plain forms and links).
(function () {
  "use strict";
  var badge = document.getElementById("pending-count");
  if (!badge) return;
  var delay = 3000;
  var known = null;
  var onConsent = location.pathname.indexOf("/consent") === 0;

  function sameIds(a, b) {
    return a.length === b.length && a.every(function (id, i) { return id === b[i]; });
  }

  function refreshList() {
    var list = document.getElementById("pending-list");
    if (!list) return;
    fetch("/pending/list", { credentials: "same-origin", headers: { Accept: "text/html" } })
      .then(function (r) { return r.ok ? r.text() : null; })
      .then(function (html) {
        if (html === null) return;
        list.innerHTML = html;  // our own server-rendered, escaped fragment
        var section = document.getElementById("pending-section");
        if (section) section.hidden = !list.querySelector(".pending-item");
      })
      .catch(function () {});
  }

  function poll() {
    fetch("/pending/status", { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (r) {
        if (!r.ok || (r.headers.get("content-type") || "").indexOf("json") < 0) return null;
        return r.json();
      })
      .then(function (status) {
        if (!status) return;  // signed out: stop
        if (status.poll_ms > 0) delay = status.poll_ms;
        badge.textContent = String(status.count);
        badge.hidden = status.count === 0;
        badge.setAttribute("aria-label", status.count + " waiting");
        if (known !== null && !sameIds(known, status.ids)) {
          var fresh = status.ids.filter(function (id) { return known.indexOf(id) < 0; });
          if (status.auto_open && fresh.length && !onConsent) {
            location.assign("/consent/" + encodeURIComponent(fresh[0]));
            return;
          }
          refreshList();
        }
        known = status.ids;
        setTimeout(poll, document.hidden ? delay * 5 : delay);  // a background tab asks less
      })
      .catch(function () { setTimeout(poll, delay * 3); });
  }

  poll();
})();
