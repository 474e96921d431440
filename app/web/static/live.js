// Live ward and patient page: listens to /ward/events (Server-Sent Events) and swaps in the
// server-rendered fragment of what changed. The pages work without it (reload to refresh).
(function () {
  "use strict";
  var ward = document.querySelector("table#ward[data-live]");
  var panel = document.querySelector("section#live[data-live-url]");
  var host = ward || panel;
  if (!host || !window.EventSource || !window.fetch) { return; }
  var state = document.getElementById("live-state");

  function say(text) { if (state) { state.textContent = text; } }

  function get(url) {
    return fetch(url, { credentials: "same-origin", headers: { "Accept": "text/html" },
                        cache: "no-store" });
  }

  function parseRows(html) {
    var t = document.createElement("tbody");
    t.innerHTML = html;
    return t;
  }

  function key(tr) {
    var overdue = tr.getAttribute("data-overdue");
    return [Number(tr.getAttribute("data-rank") || 9),
            overdue === "" || overdue === null ? Infinity : -Number(overdue),
            tr.getAttribute("data-patient") || ""];
  }

  function compare(a, b) {
    var ka = key(a), kb = key(b);
    for (var i = 0; i < ka.length; i++) {
      if (ka[i] < kb[i]) { return -1; }
      if (ka[i] > kb[i]) { return 1; }
    }
    return 0;
  }

  function reorder() {
    if (ward.getAttribute("data-sort") !== "status") { return; }
    var body = ward.tBodies[0];
    var rows = Array.prototype.slice.call(body.querySelectorAll("tr[data-patient]"));
    rows.sort(compare);
    if (ward.getAttribute("data-order") === "desc") { rows.reverse(); }
    rows.forEach(function (tr) { body.appendChild(tr); });
  }

  function refreshRow(pid) {
    var url = ward.getAttribute("data-row-url").replace("__pid__", encodeURIComponent(pid));
    return get(url).then(function (resp) {
      var old = ward.querySelector('tr[data-patient="' + CSS.escape(pid) + '"]');
      if (resp.status === 404) { if (old) { old.remove(); } return null; }
      if (!resp.ok) { return null; }
      return resp.text().then(function (html) {
        var tr = parseRows(html).querySelector("tr[data-patient]");
        if (!tr) { return; }
        var empty = ward.querySelector("tr.empty");
        if (empty) { empty.remove(); }
        if (old) { old.replaceWith(tr); } else { ward.tBodies[0].appendChild(tr); }
        tr.classList.add("updated");
        reorder();
        later(pid, tr);
      });
    });
  }

  function refreshAll() {
    return get(ward.getAttribute("data-rows-url")).then(function (resp) {
      if (!resp.ok) { return; }
      return resp.text().then(function (html) { ward.tBodies[0].innerHTML = html; });
    });
  }

  function refreshPanel() {
    return get(panel.getAttribute("data-live-url")).then(function (resp) {
      if (!resp.ok) { return; }
      return resp.text().then(function (html) {
        var box = document.createElement("div");
        box.innerHTML = html;
        var fresh = box.querySelector("#live-panel");
        var old = document.getElementById("live-panel");
        if (fresh && old) { old.replaceWith(fresh); fresh.classList.add("updated"); }
        var note = document.getElementById("new-data");
        if (fresh && note && fresh.getAttribute("data-version") !== panel.getAttribute("data-loaded-version")) {
          note.hidden = false;
        }
        later(panel.getAttribute("data-patient"), fresh);
      });
    });
  }

  // a fragment rendered before its forecast was ready: fetch it again shortly (a few times)
  var retries = {};
  function later(pid, node) {
    if (!node || node.getAttribute("data-pending") !== "1") { retries[pid] = 0; return; }
    retries[pid] = (retries[pid] || 0) + 1;
    if (retries[pid] <= 12) { window.setTimeout(function () { changed(pid); }, Math.min(2000 * retries[pid], 10000)); }
  }

  // one fetch per patient at a time; a change arriving meanwhile refetches once more
  var busy = {}, again = {};
  function changed(pid) {
    if (panel && pid !== panel.getAttribute("data-patient")) { return; }
    if (busy[pid]) { again[pid] = true; return; }
    busy[pid] = true;
    var job = ward ? refreshRow(pid) : refreshPanel();
    Promise.resolve(job).catch(function () {}).then(function () {
      busy[pid] = false;
      if (again[pid]) { again[pid] = false; changed(pid); }
    });
  }

  // Acknowledge in place: post the form, then refresh the row (or panel); without
  // JavaScript the form posts and the page comes back.
  document.addEventListener("submit", function (e) {
    var form = e.target;
    if (!form.classList || !form.classList.contains("ack")) { return; }
    e.preventDefault();
    var button = form.querySelector("button");
    if (button) { button.disabled = true; }
    fetch(form.action, { method: "POST", body: new FormData(form), credentials: "same-origin",
                         headers: { "Accept": "application/json" } })
      .then(function (resp) {
        return resp.json().catch(function () { return {}; }).then(function (body) {
          if (!resp.ok) {
            var msg = document.createElement("span");
            msg.className = "field-error";
            msg.setAttribute("role", "alert");
            msg.textContent = body.error || ("Not acknowledged (" + resp.status + ")");
            form.appendChild(msg);
            if (button) { button.disabled = false; }
            return;
          }
          var tr = form.closest("tr[data-patient]");
          var pid = tr ? tr.getAttribute("data-patient") : (panel && panel.getAttribute("data-patient"));
          if (pid) { changed(pid); }
        });
      })
      .catch(function () { form.submit(); });
  });

  var source = new EventSource(host.getAttribute("data-events"));
  source.addEventListener("hello", function (e) {
    var streaming = true;
    try { streaming = JSON.parse(e.data).streaming !== false; } catch (err) { /* keep */ }
    // "polling": the server's stream slots are taken; it answers at once, we ask every 5 s
    say(streaming ? "live" : "live (every 5 s)");
    host.setAttribute("data-live-state", streaming ? "open" : "polling");
  });
  source.addEventListener("patient", function (e) {
    try { changed(JSON.parse(e.data).patient_id); } catch (err) { /* malformed: ignore */ }
  });
  source.addEventListener("resync", function () {
    if (ward) { refreshAll(); } else { refreshPanel(); }
  });
  source.onerror = function () { say("reconnecting…"); };

  // "2 h 10 min ago" stays true without a reload
  function ago(ms) {
    var minutes = Math.floor(Math.max(0, ms) / 60000);
    if (minutes < 1) { return "just now"; }
    if (minutes < 60) { return minutes + " min ago"; }
    var hours = Math.floor(minutes / 60); minutes = minutes % 60;
    if (hours < 48) { return hours + " h" + (minutes ? " " + minutes + " min" : "") + " ago"; }
    var days = Math.floor(hours / 24); hours = hours % 24;
    return days + " days" + (hours ? " " + hours + " h" : "") + " ago";
  }
  window.setInterval(function () {
    var now = Date.now();
    document.querySelectorAll(".ago[data-since]").forEach(function (el) {
      el.textContent = ago(now - Number(el.getAttribute("data-since")));
    });
  }, 30000);
}());

// Sections computed in the background (the forecast, a what-if result): while one is
// data-pending, fetch it again (by its data-section-url) until it is not, then swap it in.
(function () {
  "use strict";
  if (!window.fetch) { return; }
  function poll(id, tries) {
    var section = document.querySelector("section#" + id + "[data-pending='1'][data-section-url]");
    if (!section || tries >= 40) { return; }
    window.setTimeout(function () {
      fetch(section.getAttribute("data-section-url"),
            { credentials: "same-origin", headers: { "Accept": "text/html" }, cache: "no-store" })
        .then(function (resp) { return resp.ok ? resp.text() : null; })
        .then(function (html) {
          if (html) {
            var box = document.createElement("div");
            box.innerHTML = html;
            var fresh = box.querySelector("section#" + id);
            if (fresh && fresh.getAttribute("data-pending") !== "1") {
              section.replaceWith(fresh);
              fresh.classList.add("updated");
              return;
            }
          }
          poll(id, tries + 1);
        })
        .catch(function () { poll(id, tries + 1); });
    }, Math.min(500 + 300 * tries, 3000));
  }
  poll("forecast", 0);
  poll("whatif-result", 0);
}());
