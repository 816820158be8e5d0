// Jobs: a filtered table, newest first, paged by cursor, updated live, with
// bulk retry and cancel of the filtered view.

import { ApiError, call, filtersFrom } from "./api.js";
import { confirmAction, notify } from "./app.js";
import { count, h, jobHref, statusBadge, when } from "./dom.js";
import { onEvent } from "./live.js";

const STATUSES = ["", "queued", "leased", "running", "succeeded", "dlq", "cancelled"];
const RETRYABLE = new Set(["dlq", "cancelled"]);
const CANCELLABLE = new Set(["queued", "leased", "running"]);
const BULK_ROUNDS = 1000; // 1,000 jobs a call: a million at most per click

let unsubscribe = null;
let refreshTimer = null;
// After a bulk action the page holds still: its rows follow their jobs.
let frozen = false;
// Cursors of the pages before this one, per filter, for "Newer".
const trail = new Map();

function localInput(iso) {
  if (!iso) return "";
  const d = new Date(iso);
  const pad = (n) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T` +
         `${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

function filterForm(filters) {
  const field = (label, input) => h("label", {}, label, input);
  const status = h("select", { name: "status" },
    STATUSES.map((s) => h("option", { value: s, selected: s === (filters.status ?? "") },
                          s || "any")));
  return h("form", { class: "filters", id: "filters", role: "search" },
    field("Status", status),
    field("Queue", h("input", { name: "queue", value: filters.queue ?? "", spellcheck: "false" })),
    field("Type", h("input", { name: "type", value: filters.type ?? "", spellcheck: "false" })),
    field("Created from", h("input", { name: "created_after", type: "datetime-local",
                                       value: localInput(filters.created_after) })),
    field("to", h("input", { name: "created_before", type: "datetime-local",
                             value: localInput(filters.created_before) })),
    h("button", { type: "submit" }, "Apply"),
    h("a", { href: "#/jobs", class: "reset" }, "Clear"));
}

function readForm(form) {
  const data = new FormData(form);
  const out = new URLSearchParams();
  for (const k of ["status", "queue", "type"]) {
    const v = String(data.get(k) ?? "").trim();
    if (v) out.set(k, v);
  }
  for (const k of ["created_after", "created_before"]) {
    const v = String(data.get(k) ?? "");
    if (v) out.set(k, new Date(v).toISOString());
  }
  return out;
}

function row(job) {
  return h("tr", { dataset: { jobId: job.id, status: job.status } },
    h("td", {}, h("a", { href: jobHref(job.id), class: "mono" }, job.id.slice(0, 8))),
    h("td", { class: "status-cell" }, statusBadge(job.status)),
    h("td", {}, job.queue),
    h("td", {}, job.type),
    h("td", {}, `${job.attempt}/${job.max_attempts}`),
    h("td", {}, when(job.created_at)),
    h("td", { class: "error-cell" }, job.last_error ?? ""));
}

function describe(filters) {
  const parts = Object.entries(filters).map(([k, v]) => `${k} = ${v}`);
  return parts.length ? parts.join(", ") : "no filter (all your jobs)";
}

async function bulk(action, filters, page, rerender) {
  const applies = action === "retry" ? "dead-lettered or cancelled" : "queued, leased or running";
  const total = filters.status ? `${count(page.total, page.total_exact)} ` : "";
  const reset = action === "retry" && document.getElementById("bulk-reset")?.checked;
  const ok = await confirmAction(
    `${action === "retry" ? "Retry" : "Cancel"} every ${total}${applies} job matching ` +
    `${describe(filters)}?` + (reset ? " Their attempts start again from zero." : ""),
    action === "retry" ? "Retry them" : "Cancel them");
  if (!ok) return;
  frozen = true;
  clearTimeout(refreshTimer);
  let changed = 0;
  try {
    for (let round = 0; round < BULK_ROUNDS; round++) {
      const body = { ...filters, limit: 1000 };
      if (action === "retry") body.reset_attempts = Boolean(reset);
      const got = await call("POST", `/v1/jobs/${action}`, { body });
      changed += got.changed;
      notify(`${action === "retry" ? "Retried" : "Cancelled"} ${changed.toLocaleString()} jobs…`);
      if (!got.more || got.changed === 0) break;
    }
    notify(`${action === "retry" ? "Retried" : "Cancelled"} ${changed.toLocaleString()} jobs.`,
           "ok");
  } catch (err) {
    notify(err instanceof ApiError ? err.message : String(err), "error");
    await rerender();
  }
  // The rows stay on screen and follow their jobs live (greyed once they
  // leave the filter), so the outcome of the action can be watched.
}

function pager(filters, page, after) {
  const key = JSON.stringify(filters);
  const stack = trail.get(key) ?? [];
  const go = (cursor) => {
    const q = new URLSearchParams(filters);
    if (cursor) q.set("after", cursor);
    location.hash = `#/jobs?${q}`;
  };
  return h("nav", { class: "pager", "aria-label": "Pages" },
    h("button", { type: "button", disabled: !after, onclick: () => {
      stack.pop();
      go(stack.at(-1));
    } }, "← Newer"),
    h("button", { type: "button", disabled: !page.next, id: "older", onclick: () => {
      stack.push(page.next);
      trail.set(key, stack);
      go(page.next);
    } }, "Older →"));
}

function live(tbody, filters, after, rerender) {
  if (unsubscribe) unsubscribe();
  unsubscribe = onEvent((m) => {
    if (m.type === "resync") return rerender();
    if (m.type !== "job") return;
    const tr = tbody.querySelector(`tr[data-job-id="${CSS.escape(m.job_id)}"]`);
    if (tr) {
      tr.dataset.status = m.status;
      tr.querySelector(".status-cell").replaceChildren(statusBadge(m.status));
      if (filters.status && filters.status !== m.status) tr.classList.add("moved");
      return;
    }
    // A job this page does not show: the first page may have a new row.
    if (!after && !frozen && (!filters.queue || filters.queue === m.queue) &&
        (!filters.status || filters.status === m.status)) {
      clearTimeout(refreshTimer);
      refreshTimer = setTimeout(rerender, 500);
    }
  });
}

export function leave() {
  if (unsubscribe) unsubscribe();
  unsubscribe = null;
  clearTimeout(refreshTimer);
}

export async function render(root, params) {
  const filters = filtersFrom(params);
  const after = params.get("after") ?? undefined;
  const rerender = () => render(root, params);
  const page = await call("GET", "/v1/jobs", { params: { ...filters, after, page_size: 50 } });
  frozen = false;
  const form = filterForm(filters);
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    const q = readForm(form);
    trail.delete(JSON.stringify(filtersFrom(q)));
    location.hash = `#/jobs?${q}`;
  });
  const tbody = h("tbody", {}, page.jobs.map(row));
  const canRetry = !filters.status || RETRYABLE.has(filters.status);
  const canCancel = !filters.status || CANCELLABLE.has(filters.status);
  root.replaceChildren(
    h("h1", {}, "Jobs"),
    form,
    h("div", { class: "bulk" },
      h("span", { class: "total", id: "total" },
        `${count(page.total, page.total_exact)} matching`),
      canRetry && h("button", { type: "button", id: "bulk-retry",
                                onclick: () => bulk("retry", filters, page, rerender) },
                    "Retry all matching…"),
      canRetry && h("label", {}, h("input", { type: "checkbox", id: "bulk-reset" }),
                    " reset attempts"),
      canCancel && h("button", { type: "button", id: "bulk-cancel", class: "danger",
                                 onclick: () => bulk("cancel", filters, page, rerender) },
                     "Cancel all matching…")),
    page.jobs.length
      ? h("table", { class: "jobs", id: "jobs-table" },
          h("caption", { class: "visually-hidden" }, "Jobs, newest first"),
          h("thead", {}, h("tr", {}, ["id", "status", "queue", "type", "attempts", "created",
                                      "last error"].map((c) => h("th", { scope: "col" }, c)))),
          tbody)
      : h("p", { class: "empty" }, "No jobs match."),
    pager(filters, page, after));
  live(tbody, filters, after, rerender);
}
