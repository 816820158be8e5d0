// The dashboard's shell: sign-in, the hash router, notices, confirmation,
// and the live connection every view listens to.

import * as admin from "./admin.js";
import { ApiError, onSessionEnd, session, signIn, signOut } from "./api.js";
import * as job from "./job.js";
import * as jobs from "./jobs.js";
import * as live from "./live.js";
import * as overview from "./overview.js";

const $ = (id) => document.getElementById(id);
let overviewTimer = null;
let overviewUnsub = null;

export function notify(text, kind = "info") {
  const el = $("notice");
  el.hidden = false;
  el.dataset.kind = kind;
  el.textContent = text;
}

export function confirmAction(question, yes) {
  const dialog = $("confirm");
  $("confirm-text").textContent = question;
  $("confirm-ok").textContent = yes;
  dialog.returnValue = "";
  dialog.showModal();
  return new Promise((resolve) => {
    dialog.addEventListener("close", () => resolve(dialog.returnValue === "ok"), { once: true });
  });
}

function leaveViews() {
  jobs.leave();
  job.leave();
  clearInterval(overviewTimer);
  if (overviewUnsub) overviewUnsub();
  overviewUnsub = null;
}

function showOverview(root) {
  let pending = null;
  const refresh = () => overview.render(root).catch(fail);
  overviewTimer = setInterval(refresh, 5000);
  overviewUnsub = live.onEvent((m) => {
    if (m.type !== "job" && m.type !== "resync") return;
    // Many events a second under load: one refresh per second at most.
    if (!pending) pending = setTimeout(() => { pending = null; refresh(); }, 1000);
  });
  return overview.render(root);
}

function fail(err) {
  if (err instanceof ApiError && err.status === 401) return;
  notify(err instanceof ApiError ? `${err.message} (${err.status})` : String(err), "error");
}

async function route() {
  const s = session();
  leaveViews();
  const root = $("view");
  if (!s) {
    $("sign-in").hidden = false;
    root.replaceChildren();
    $("nav").hidden = true;
    $("sign-out").hidden = true;
    $("who").textContent = "";
    return;
  }
  $("sign-in").hidden = true;
  $("nav").hidden = false;
  $("nav-admin").hidden = s.kind !== "admin";
  $("sign-out").hidden = false;
  $("who").textContent = s.kind === "admin" ? "admin" : `tenant ${s.tenant}`;
  const [path, query] = location.hash.replace(/^#/, "").split("?");
  const params = new URLSearchParams(query ?? "");
  const parts = path.split("/").filter(Boolean);
  for (const a of document.querySelectorAll("#nav a")) {
    if (a.dataset.view === (parts[0] ?? "overview")) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  }
  try {
    if (parts[0] === "jobs" && parts[1]) await job.render(root, decodeURIComponent(parts[1]));
    else if (parts[0] === "jobs") await jobs.render(root, params);
    else if (parts[0] === "admin" && s.kind === "admin") await admin.render(root);
    else await showOverview(root);
  } catch (err) {
    fail(err);
  }
}

function startLive() {
  const s = session();
  live.disconnect();
  if (s) live.connect(s.token, $("live"));
}

function setUpSignIn() {
  const form = $("sign-in-form");
  const tenantField = $("tenant-field");
  const syncKind = () => {
    const admin = form.elements.kind.value === "admin";
    tenantField.hidden = admin;
    form.elements.tenant.required = !admin;
  };
  for (const radio of form.elements.kind) radio.addEventListener("change", syncKind);
  syncKind();
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    $("sign-in-error").textContent = "";
    try {
      await signIn(form.elements.kind.value, form.elements.tenant.value.trim(),
                   form.elements.key.value);
      form.reset();
      syncKind();
      $("notice").hidden = true;
      startLive();
      if (!location.hash || location.hash === "#") location.hash = "#/overview";
      else await route();
      $("main").focus();
    } catch (err) {
      $("sign-in-error").textContent = err instanceof ApiError ? err.message : String(err);
    }
  });
  $("sign-out").addEventListener("click", () => signOut());
}

onSessionEnd((reason) => {
  live.disconnect();
  if (reason) notify(reason, "error");
  route();
});

live.onEvent((m) => {
  if (m.type === "closed" && (m.code === 1008 || m.code === 4401)) signOut("Sign in again.");
});

window.addEventListener("hashchange", route);
document.addEventListener("DOMContentLoaded", () => {
  setUpSignIn();
  startLive();
  route();
});
