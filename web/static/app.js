// The office app's only script (no inline scripts: the Content-Security-Policy forbids
// them). Pages work without it; it adds live progress and asks before irreversible steps.
"use strict";

function pollJob(el) {
  const url = el.dataset.poll;
  const bar = el.querySelector("progress");
  const words = el.querySelector("[data-words]");
  async function tick() {
    let state;
    try {
      const reply = await fetch(url, { credentials: "same-origin", cache: "no-store" });
      if (!reply.ok) { words.textContent = "Lost touch with the app: reload the page."; return; }
      state = await reply.json();
    } catch (e) {
      words.textContent = "Lost touch with the app: reload the page.";
      return;
    }
    if (state.total) { bar.max = state.total; bar.value = state.done; }
    words.textContent = state.words;
    if (state.finished) { window.location.assign(el.dataset.done); return; }
    window.setTimeout(tick, 800);
  }
  tick();
}

document.addEventListener("DOMContentLoaded", () => {
  document.querySelectorAll("[data-poll]").forEach(pollJob);
  document.querySelectorAll("form[data-confirm]").forEach((form) => {
    form.addEventListener("submit", (event) => {
      if (!window.confirm(form.dataset.confirm)) { event.preventDefault(); }
    });
  });
  // A filter box over a table: type a few letters, only matching rows stay.
  document.querySelectorAll("input[data-filter]").forEach((box) => {
    const rows = document.querySelectorAll(box.dataset.filter);
    box.addEventListener("input", () => {
      const wanted = box.value.trim().toLowerCase();
      rows.forEach((row) => { row.hidden = wanted !== "" && !row.textContent.toLowerCase().includes(wanted); });
    });
  });
});
