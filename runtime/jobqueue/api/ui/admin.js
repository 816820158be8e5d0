// Admin: every tenant with quotas, usage and rate-limit state; every queue
// with its defaults and worker replicas.

import { call } from "./api.js";
import { h, when } from "./dom.js";

function table(caption, head, rows) {
  return h("table", { class: "admin" },
    h("caption", {}, caption),
    h("thead", {}, h("tr", {}, head.map((c) => h("th", { scope: "col" }, c)))),
    h("tbody", {}, rows));
}

export async function render(root) {
  const [tenants, queues] = await Promise.all([
    call("GET", "/v1/admin/tenants"),
    call("GET", "/v1/admin/queues"),
  ]);
  root.replaceChildren(
    h("h1", {}, "Admin"),
    table("Tenants",
      ["tenant", "enabled", "queued", "active", "dlq", "max queued", "max concurrent", "weight",
       "rate / min", "burst", "budget left"],
      tenants.tenants.map((t) => h("tr", { dataset: { tenant: t.id } },
        h("td", {}, h("a", { href: `#/jobs` }, t.id)), h("td", {}, t.enabled ? "yes" : "no"),
        h("td", {}, t.usage.queued.toLocaleString()), h("td", {}, t.usage.active.toLocaleString()),
        h("td", {}, t.usage.dlq.toLocaleString()), h("td", {}, t.max_queued.toLocaleString()),
        h("td", {}, String(t.max_concurrent)), h("td", {}, String(t.weight)),
        h("td", {}, t.rate_per_minute.toLocaleString()), h("td", {}, t.rate_burst.toLocaleString()),
        h("td", { class: t.rate_tokens === 0 ? "warn" : "" }, t.rate_tokens.toLocaleString())))),
    table("Queues",
      ["queue", "default max attempts", "jobs get", "replicas", "reported", "created"],
      queues.queues.map((q) => h("tr", { dataset: { queue: q.name } },
        h("td", {}, h("a", { href: `#/jobs?${new URLSearchParams({ queue: q.name })}` }, q.name)),
        h("td", {}, q.default_max_attempts === null ? "—" : String(q.default_max_attempts)),
        h("td", {}, String(q.max_attempts)),
        h("td", {}, q.replicas === null ? "not known"
                                        : `${q.ready_replicas}/${q.replicas} (max ${q.max_replicas})`),
        h("td", {}, when(q.replicas_reported_at)), h("td", {}, when(q.created_at))))));
}
