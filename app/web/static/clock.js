// Ward time: every time on the pages is in the ward's zone (WARD_TIMEZONE, <body
// data-ward-zone>). When this computer's clock is set to another offset, say so above the
// page, so a time read off this computer is not entered as ward time by mistake.
(function () {
  "use strict";
  var zone = document.body.getAttribute("data-ward-zone");
  var note = document.getElementById("tz-notice");
  if (!zone || !note || !window.Intl) { return; }

  function wardOffset(now) {  // minutes east of UTC in the ward's zone, now
    now = new Date(Math.floor(now.getTime() / 60000) * 60000);  // to the minute
    var v = {};
    new Intl.DateTimeFormat("en-US", { timeZone: zone, hourCycle: "h23", year: "numeric",
      month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit" })
      .formatToParts(now).forEach(function (p) { v[p.type] = p.value; });
    var asUtc = Date.UTC(+v.year, +v.month - 1, +v.day, +v.hour % 24, +v.minute);
    return Math.round((asUtc - now.getTime()) / 60000);
  }
  function utc(minutes) {
    var sign = minutes < 0 ? "−" : "+", m = Math.abs(minutes);
    return "UTC" + sign + Math.floor(m / 60) + (m % 60 ? ":" + ("0" + (m % 60)).slice(-2) : "");
  }
  var now = new Date();
  var ward, mine = -now.getTimezoneOffset();
  try { ward = wardOffset(now); } catch (err) { return; }
  if (ward === mine) { return; }
  note.textContent = "Times on these pages, and the times you enter, are ward time (" + zone +
    ", " + utc(ward) + "). This computer's clock is set to " + utc(mine) + ".";
  note.setAttribute("data-browser-offset", String(mine));
  note.hidden = false;
}());
