// Overview: one card per queue with jobs by status, throughput, the oldest
// ready job's age, busy workers and worker replicas.

import { call } from "./api.js";
import { throughputChart } from "./chart.js";
import { age, h } from "./dom.js";

const STATUSES = ["queued", "leased", "running", "dlq"];

function jobsLink(queue, status, n) {
  const q = new URLSearchParams({ queue, status });
  return h("a", { href: `#/jobs?${q}`, class: "count", dataset: { status } },
           Number(n).toLocaleString());
}

function card(q, minutes) {
  const finished = q.throughput.reduce((s, p) => s + p.succeeded + p.dlq + p.cancelled, 0);
  const replicas = q.replicas === null
    ? "not known"
    : `${q.ready_replicas} ready of ${q.replicas} (max ${q.max_replicas})`;
  return h("article", { class: "card", dataset: { queue: q.queue } },
    h("h2", {}, h("a", { href: `#/jobs?${new URLSearchParams({ queue: q.queue })}` }, q.queue)),
    h("table", { class: "counts" },
      h("thead", {}, h("tr", {}, STATUSES.map((s) => h("th", { scope: "col" }, s)))),
      h("tbody", {}, h("tr", {}, STATUSES.map((s) => h("td", {}, jobsLink(q.queue, s, q.jobs[s])))))),
    h("dl", { class: "facts" },
      h("dt", {}, "oldest ready"), h("dd", { class: "oldest" }, age(q.oldest_queued_age_seconds)),
      h("dt", {}, "busy workers"), h("dd", { class: "workers" }, String(q.busy_workers)),
      h("dt", {}, "replicas"), h("dd", { class: "replicas" }, replicas),
      h("dt", {}, `finished, ${minutes} min`), h("dd", { class: "finished" },
                                                 finished.toLocaleString())),
    throughputChart(q.throughput, `Jobs finished per minute in ${q.queue}, last ${minutes} minutes`),
    h("p", { class: "legend" },
      h("span", { class: "key key-succeeded" }, "succeeded"), " ",
      h("span", { class: "key key-dlq" }, "dlq"), " ",
      h("span", { class: "key key-cancelled" }, "cancelled")));
}

export async function render(root) {
  const minutes = 15;
  const data = await call("GET", "/v1/overview", { params: { minutes } });
  const body = data.queues.length
    ? h("div", { class: "cards" }, data.queues.map((q) => card(q, minutes)))
    : h("p", { class: "empty" }, "No jobs yet.");
  root.replaceChildren(
    h("h1", {}, "Overview"),
    h("p", { class: "sub" }, `As of ${new Date(data.now).toLocaleTimeString()}`),
    body,
  );
}
