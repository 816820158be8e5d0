// WS /ws/jobs: job state changes as they commit. The token goes in the
// first message, not the URL, so it stays out of access logs.

let socket = null;
let wanted = false;
let retryMs = 500;
const handlers = new Set();
let statusEl = null;

function show(text, state) {
  if (!statusEl) return;
  statusEl.hidden = false;
  statusEl.textContent = text;
  statusEl.dataset.state = state;
}

export function onEvent(fn) {
  handlers.add(fn);
  return () => handlers.delete(fn);
}

function dispatch(message) {
  for (const fn of handlers) {
    try {
      fn(message);
    } catch (err) {
      console.error(err);
    }
  }
}

export function connect(token, el) {
  statusEl = el;
  wanted = true;
  open(token);
}

function open(token) {
  if (!wanted) return;
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  socket = new WebSocket(`${scheme}//${location.host}/ws/jobs`);
  show("connecting…", "connecting");
  socket.addEventListener("open", () => socket.send(JSON.stringify({ token })));
  socket.addEventListener("message", (ev) => {
    let message;
    try {
      message = JSON.parse(ev.data);
    } catch {
      return;
    }
    if (message.type === "ready") {
      retryMs = 500;
      show("live", "live");
    }
    dispatch(message);
  });
  socket.addEventListener("close", (ev) => {
    socket = null;
    if (!wanted) return;
    if (ev.code === 1008 || ev.code === 4401 || ev.code === 4403) {
      show("not live", "off");
      dispatch({ type: "closed", code: ev.code, reason: ev.reason });
      return;
    }
    show("reconnecting…", "connecting");
    setTimeout(() => {
      // Missed events while away: views re-read what they show.
      dispatch({ type: "resync" });
      open(token);
    }, retryMs);
    retryMs = Math.min(retryMs * 2, 10000);
  });
}

export function disconnect() {
  wanted = false;
  if (socket) socket.close(1000);
  socket = null;
  if (statusEl) statusEl.hidden = true;
}
