// The API as the UI calls it: the session's bearer token on every request,
// errors as ApiError with the server's JSON message.

const KEY = "jobqueue.session";
let apiKey = null; // a tenant's key, in memory only, to renew its token
let renewTimer = null;
const listeners = new Set();

export class ApiError extends Error {
  constructor(status, code, detail) {
    super(detail);
    this.status = status;
    this.code = code;
  }
}

export function session() {
  try {
    const s = JSON.parse(sessionStorage.getItem(KEY) ?? "null");
    if (s && s.expiresAt && s.expiresAt < Date.now()) return null;
    return s;
  } catch {
    return null;
  }
}

export function onSessionEnd(fn) {
  listeners.add(fn);
}

export function signOut(reason) {
  sessionStorage.removeItem(KEY);
  apiKey = null;
  clearTimeout(renewTimer);
  for (const fn of listeners) fn(reason);
}

async function raw(method, path, { params, body, token } = {}) {
  const url = new URL(path, location.origin);
  for (const [k, v] of Object.entries(params ?? {})) {
    if (v !== undefined && v !== null && v !== "") url.searchParams.set(k, String(v));
  }
  const headers = { Accept: "application/json" };
  if (token) headers.Authorization = `Bearer ${token}`;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(url, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
    credentials: "omit",
    cache: "no-store",
  });
  let data = null;
  try {
    data = await response.json();
  } catch {
    data = null;
  }
  if (!response.ok) {
    throw new ApiError(response.status, data?.error ?? "http_error",
                       data?.detail ?? response.statusText);
  }
  return data;
}

export async function call(method, path, options = {}) {
  const s = session();
  try {
    return await raw(method, path, { ...options, token: s?.token });
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) signOut("Your session ended; sign in again.");
    throw err;
  }
}

function remember(s) {
  sessionStorage.setItem(KEY, JSON.stringify(s));
}

function scheduleRenewal(tenant, expiresIn) {
  clearTimeout(renewTimer);
  // Renew at 80% of the token's life while the key is in memory.
  renewTimer = setTimeout(async () => {
    if (!apiKey) return;
    try {
      await tenantToken(tenant, apiKey);
    } catch {
      signOut("Your session ended; sign in again.");
    }
  }, Math.max(5, expiresIn * 0.8) * 1000);
}

async function tenantToken(tenant, key) {
  const got = await raw("POST", "/auth/token", { body: { tenant_id: tenant, api_key: key } });
  remember({ kind: "tenant", tenant, token: got.access_token,
             expiresAt: Date.now() + got.expires_in * 1000 });
  scheduleRenewal(tenant, got.expires_in);
}

export async function signIn(kind, tenant, key) {
  if (kind === "admin") {
    // The admin credential is itself the bearer token; check it first.
    await raw("GET", "/v1/admin/queues", { token: key });
    remember({ kind: "admin", tenant: null, token: key, expiresAt: null });
    return;
  }
  apiKey = key;
  await tenantToken(tenant, key);
}

export function filtersFrom(params) {
  const out = {};
  for (const k of ["status", "queue", "type", "created_after", "created_before"]) {
    const v = params.get(k);
    if (v) out[k] = v;
  }
  return out;
}
