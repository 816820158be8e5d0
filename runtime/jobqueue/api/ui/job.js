// One job: payload, result, attempts, error history, timestamps, trace id,
// and the actions its state allows. Updated live.

import { ApiError, call } from "./api.js";
import { confirmAction, notify } from "./app.js";
import { append, h, statusBadge, when } from "./dom.js";
import { onEvent } from "./live.js";

let unsubscribe = null;

function json(value) {
  return h("pre", { class: "json", tabindex: "0" },
           value === null || value === undefined ? "null" : JSON.stringify(value, null, 2));
}

function progress(value, note) {
  if (value === null || value === undefined) return "—";
  const pct = `${Math.round(value * 100)}%`;
  return note ? `${pct} (${note})` : pct;
}

function facts(job) {
  const rows = [
    ["tenant", job.tenant_id], ["queue", job.queue], ["type", job.type],
    ["priority", job.priority], ["attempts", `${job.attempt} of ${job.max_attempts}`],
    ["timeout", `${job.timeout_seconds} s`], ["idempotency key", job.idempotency_key ?? "—"],
    ["trace id", job.trace_id ?? "—"],
    ["progress", progress(job.progress, job.progress_note)],
    ["created", when(job.created_at)], ["scheduled", when(job.scheduled_at)],
    ["leased", when(job.leased_at)], ["started", when(job.started_at)],
    ["finished", when(job.finished_at)], ["updated", when(job.updated_at)],
  ];
  return h("dl", { class: "facts wide" },
           rows.map(([k, v]) => [h("dt", {}, k), h("dd", { dataset: { field: k } }, v)]));
}

function history(job) {
  const entries = job.errors ?? [];
  if (!entries.length) return h("p", { class: "empty" }, "No errors.");
  return h("table", { class: "errors" },
    h("thead", {}, h("tr", {}, ["attempt", "at", "error"].map((c) =>
      h("th", { scope: "col" }, c)))),
    h("tbody", {}, entries.map((e) => h("tr", {},
      h("td", {}, String(e.attempt ?? "")), h("td", {}, when(e.at)),
      h("td", {}, h("pre", { class: "error-text" }, String(e.error ?? "")))))));
}

async function act(job, path, body, question, rerender) {
  if (!(await confirmAction(question, "Yes"))) return;
  try {
    await call("POST", `/v1/jobs/${encodeURIComponent(job.id)}/${path}`, { body });
    notify(`Job ${job.id.slice(0, 8)}: done.`, "ok");
  } catch (err) {
    notify(err instanceof ApiError ? err.message : String(err), "error");
  }
  await rerender();
}

function actions(job, rerender) {
  const retryable = job.status === "dlq" || job.status === "cancelled";
  const cancellable = ["queued", "leased", "running"].includes(job.status);
  return h("div", { class: "actions" },
    retryable && h("button", { type: "button", id: "retry", onclick: () =>
      act(job, "retry", { reset_attempts: false }, "Queue this job again with one more attempt?",
          rerender) }, "Retry"),
    retryable && h("button", { type: "button", id: "retry-reset", onclick: () =>
      act(job, "retry", { reset_attempts: true },
          "Queue this job again, counting attempts from zero?", rerender) },
      "Retry, reset attempts"),
    cancellable && h("button", { type: "button", id: "cancel", class: "danger", onclick: () =>
      act(job, "cancel", undefined, "Cancel this job?", rerender) }, "Cancel"));
}

export function leave() {
  if (unsubscribe) unsubscribe();
  unsubscribe = null;
}

export async function render(root, id) {
  const rerender = () => render(root, id);
  const job = await call("GET", `/v1/jobs/${encodeURIComponent(id)}`);
  // Through append: it skips the parts that are absent (false, null).
  root.replaceChildren();
  append(root, [
    h("p", {}, h("a", { href: "#/jobs" }, "← Jobs")),
    h("h1", {}, "Job ", h("span", { class: "mono", id: "job-id" }, job.id), " ",
      h("span", { id: "job-status" }, statusBadge(job.status))),
    actions(job, rerender),
    facts(job),
    h("h2", {}, "Payload"),
    h("div", { id: "payload" }, json(job.data)),
    job.omitted && h("p", { class: "error" }, Object.entries(job.omitted)
      .map(([k, v]) => `${k} omitted: ${v}`).join("; ")),
    h("h2", {}, "Result"),
    h("div", { id: "result" }, json(job.result)),
    h("h2", {}, "Last error"),
    h("pre", { class: "error-text", id: "last-error" }, job.last_error ?? "—"),
    h("h2", {}, "Error history"),
    history(job)]);
  leave();
  unsubscribe = onEvent((m) => {
    if (m.type === "progress" && m.job_id === job.id) {
      const cell = root.querySelector('dd[data-field="progress"]');
      if (cell) cell.textContent = progress(m.progress, m.note);
    } else if ((m.type === "job" && m.job_id === job.id) || m.type === "resync") {
      rerender();
    }
  });
}
