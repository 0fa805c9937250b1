// NXEM portal: the live alert board (server-sent events). No build step, no dependencies.
"use strict";

(function () {
  function liveBoard(table) {
    const url = table.dataset.stream;
    const badge = document.getElementById("live");
    const body = table.querySelector("tbody");
    const setState = (state, text) => { if (badge) { badge.dataset.state = state; badge.textContent = text; } };
    const source = new EventSource(url);
    source.addEventListener("open", () => setState("live", "live"));
    source.addEventListener("error", () => setState("reconnecting", "reconnecting…"));
    source.addEventListener("alert", (ev) => {
      const msg = JSON.parse(ev.data);
      const old = document.getElementById("alert-" + msg.id);
      if (msg.removed) { if (old) { old.remove(); } return; }
      const tpl = document.createElement("template");
      tpl.innerHTML = msg.html.trim();
      const row = tpl.content.firstElementChild;
      if (old) { old.replaceWith(row); } else { body.prepend(row); }
      row.classList.add("flash");
      setTimeout(() => row.classList.remove("flash"), 2500);
      const empty = document.getElementById("no-alerts");
      if (empty) { empty.remove(); }
    });
  }

  document.addEventListener("DOMContentLoaded", () => {
    const table = document.getElementById("alerts");
    if (table && table.dataset.stream) { liveBoard(table); }
  });
})();
