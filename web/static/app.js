// Exosuit's own script: the autonomy slider's explanation and keyboard-first triage.
// Everything here is an enhancement; every form works without it.
"use strict";

function explainAutonomy() {
  const slider = document.getElementById("autonomy");
  if (!slider) return;
  const show = () => {
    document.querySelectorAll("#autonomy-explained li").forEach((li) => {
      li.classList.toggle("current", li.dataset.level === slider.value);
    });
  };
  slider.addEventListener("input", show);
  show();
}

function decisionRoot() {
  return document.getElementById("board") || document.getElementById("live");
}

function moveSelection(step) {
  const board = document.getElementById("board");
  if (!board) return;
  const rows = Array.from(board.querySelectorAll("tr.item"));
  const current = rows.findIndex((row) => row.classList.contains("selected"));
  const next = rows[current + step];
  if (next) {
    next.querySelector("a").click();
  } else if (step > 0) {
    board.querySelector("a.next-page")?.click(); // past the page's last item: the next page
  }
}

// Keys that a focused link or button already answers: the shortcuts leave them alone.
const NATIVE_KEYS = new Set(["Enter", " ", "ArrowUp", "ArrowDown"]);

function onKey(event) {
  const field = event.target.closest("input, textarea, select");
  if (event.key === "Escape" && field) {
    field.blur();
    return;
  }
  if (field || event.ctrlKey || event.metaKey || event.altKey) return;
  const control = event.target.closest("a[href], button, summary, [contenteditable]");
  if (control && NATIVE_KEYS.has(event.key)) return;
  const root = decisionRoot();
  if (!root) return;
  const actions = {
    j: () => moveSelection(1),
    ArrowDown: () => moveSelection(1),
    k: () => moveSelection(-1),
    ArrowUp: () => moveSelection(-1),
    a: () => root.querySelector("form.approve button")?.click(),
    e: () => root.querySelector("textarea.edit-text")?.focus(),
    r: () => root.querySelector("input.reason")?.focus(),
    Enter: () => {
      const selected = root.querySelector("tr.item.selected");
      if (selected) window.location.href = "/tasks/" + selected.dataset.task;
    },
  };
  const act = actions[event.key];
  if (act) {
    event.preventDefault();
    act();
  }
}

// Live updates (server-sent events, a poll on older pages) never replace a form someone is typing in.
function holdPollWhileTyping(event) {
  const source = event.detail.elt;
  const active = document.activeElement;
  if (event.detail.requestConfig.verb === "get" && source.id && source.contains(active)
      && active.matches("input, textarea, select")) {
    event.preventDefault();
  }
}

// Bulk approval: a gate can be selected only once this tab has shown it in the detail pane,
// and it is sent with the etag it was shown with (the server refuses it if it changed since).
const SEEN = "exosuit-seen-gates";

function seenGates() {
  try { return JSON.parse(sessionStorage.getItem(SEEN) || "{}"); } catch { return {}; }
}

function trackSeenGates() {
  const board = document.getElementById("board");
  if (!board) return;
  const seen = seenGates();
  const detail = board.querySelector("article.detail[data-etag]");
  if (detail) {
    seen[detail.dataset.task] = { gate: detail.dataset.gate, etag: detail.dataset.etag };
    sessionStorage.setItem(SEEN, JSON.stringify(seen));
  }
  board.querySelectorAll("tr.item").forEach((row) => {
    const box = row.querySelector("input.bulk");
    const gate = seen[row.dataset.task];
    if (!box || !gate || gate.gate !== row.dataset.gate) return;
    box.disabled = false;
    box.title = "Approve together with the others selected";
    box.value = `${row.dataset.task}:${gate.gate}:${gate.etag}`;
  });
}

// A claim lasts a lease; while the visitor's page shows a gate they hold, it keeps it.
let lastRenewal = Date.now();

function renewClaimWhileOpen() {
  const form = document.querySelector("form.claim[data-renew-seconds]");
  if (!form || !form.querySelector(".claimed.mine") || document.visibilityState !== "visible") return;
  if (Date.now() - lastRenewal < Number(form.dataset.renewSeconds) * 1000) return;
  lastRenewal = Date.now();
  const data = new FormData(form);
  data.set("claim", "renew");
  fetch(form.action, { method: "POST", body: data, redirect: "manual" });
}

document.addEventListener("DOMContentLoaded", () => {
  window.setInterval(renewClaimWhileOpen, 1000);
  explainAutonomy();
  trackSeenGates();
  document.body.addEventListener("htmx:afterSettle", trackSeenGates);
  document.addEventListener("keydown", onKey);
  document.body.addEventListener("htmx:beforeRequest", holdPollWhileTyping);
});
