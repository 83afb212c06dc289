// The consent page's only script: it keeps each provider's "Limits:" line and the summary's
// spend in step with the fields under "Change limits" and the provider checkboxes, so what
// the page says is what Approve grants. Without it the page still works as a plain form;
// the lines then show the limits as the page started. The rules mirror
// okap_server/web/consent_summary.py (a month is at most 31 days of the daily limit).
(function () {
  "use strict";
  var form = document.getElementById("consent-form");
  var spend = document.querySelector(".summary-spend");
  if (!form || !spend) return;

  function money(n) {
    if (n > 0 && n < 0.01) return "<$0.01";
    return "$" + n.toLocaleString("en-US", { minimumFractionDigits: 2, maximumFractionDigits: 2 });
  }

  function entryLimits(entry) {
    var parts = [];
    var bounds = [];
    entry.querySelectorAll("input[data-limit]").forEach(function (input) {
      // The fields read as the page writes numbers ("1,000", "1,234.50"); the vault
      // parses the same (consent_form.parse_number).
      var raw = input.value.trim();
      var n = Number(raw.replace(/^\$\s*/, "").replace(/,/g, ""));
      if (raw === "" || !isFinite(n) || n < 0) return;
      var name = input.dataset.limit;
      var isMoney = /_spend$/.test(name);
      var amount = isMoney ? money(n) : Math.trunc(n).toLocaleString("en-US");
      var text = input.dataset.format.replace("{}", amount);
      parts.push(text.replace("{n}", Math.trunc(n) === 1 ? "" : "s"));
      if (isMoney) bounds.push(name === "daily_spend" ? n * 31 : n);
    });
    return { parts: parts, reach: bounds.length ? Math.min.apply(null, bounds) : null };
  }

  function refresh() {
    var names = [];
    var unbounded = [];
    var total = 0;
    form.querySelectorAll("fieldset.entry").forEach(function (entry) {
      var limits = entryLimits(entry);
      var line = entry.querySelector(".effective");
      if (limits.reach === null) limits.parts.push("no spend limit");
      line.querySelector(".effective-values").textContent = limits.parts.join(" \u00b7 ");
      line.classList.toggle("unbounded", limits.reach === null);
      var include = entry.querySelector("input[name$='.include']");
      if (include && !include.checked) return;  // left out: not part of what is granted
      names.push(entry.dataset.providerName);
      if (limits.reach === null) unbounded.push(entry.dataset.providerName);
      else total += limits.reach;
    });
    if (!names.length) { spend.textContent = "nothing: every provider is left out"; return; }
    var where = names.length > 1 ? "across " + names.length + " providers" : "on " + names[0];
    if (unbounded.length === names.length) { spend.textContent = "no spend limit " + where; return; }
    var text = "up to " + money(total) + " / month " + where;
    if (unbounded.length) {
      text += ", plus whatever " + unbounded.join(", ") + " may spend (no spend limit)";
    }
    spend.textContent = text;
  }

  form.addEventListener("input", refresh);
  form.addEventListener("change", refresh);
})();
