// The console's client of muckwatch's public API. The token lives in the browser's
// localStorage and travels only in the Authorization header, never in a URL: the alert stream is
// read with fetch (EventSource cannot send headers) and resumed with Last-Event-ID.

const KEY = 'mw.token';

export function token() {
  return localStorage.getItem(KEY) || '';
}

export function setToken(t) {
  if (t) localStorage.setItem(KEY, t);
  else localStorage.removeItem(KEY);
}

export class APIError extends Error {
  constructor(status, msg) {
    super(msg);
    this.status = status;
  }
}

async function request(path, opts = {}) {
  const headers = { Authorization: 'Bearer ' + token(), ...(opts.headers || {}) };
  const resp = await fetch(path, { ...opts, headers });
  if (!resp.ok) {
    let msg = resp.statusText;
    try {
      msg = (await resp.json()).error || msg;
    } catch {
      // not JSON: keep the status text
    }
    throw new APIError(resp.status, msg);
  }
  return resp;
}

export async function get(path) {
  return (await request(path)).json();
}

// prefetch starts a GET whose answer a screen takes later with fetched(path): the shell asks for
// a screen's first data while the screen's code is still loading. A prefetched answer is used
// once; a later call fetches again.
const early = new Map();
export function prefetch(path) {
  if (!early.has(path)) {
    const p = get(path);
    p.catch(() => {}); // the taker sees the failure
    early.set(path, p);
  }
}

export function fetched(path) {
  const p = early.get(path);
  early.delete(path);
  return p || get(path);
}

export async function getText(path) {
  return (await request(path)).text();
}

export async function post(path, body) {
  const resp = await request(path, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body) });
  return resp.json();
}

export function qs(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== '') q.set(k, v);
  const s = q.toString();
  return s ? '?' + s : '';
}

// AlertStream reads /api/v1/alerts/stream and calls onItem once per feed item, in order, across
// reconnections: it resumes after the last id it delivered (Last-Event-ID) and skips any item at
// or before it, so a network drop neither loses nor doubles an item. onState('live' |
// 'reconnecting') tells the screen.
export class AlertStream {
  constructor(query, onItem, onState) {
    this.query = query;
    this.onItem = onItem;
    this.onState = onState || (() => {});
    this.lastSeq = 0;
    this.stopped = false;
    this.ctrl = null;
    this.delivered = 0;
  }

  start() {
    this.loop();
    return this;
  }

  stop() {
    this.stopped = true;
    this.ctrl?.abort();
  }

  // drop cuts the connection as a network failure would (tests use it to check the resume).
  drop() {
    this.ctrl?.abort();
  }

  async loop() {
    let delay = 500;
    while (!this.stopped) {
      this.ctrl = new AbortController();
      try {
        const headers = { Authorization: 'Bearer ' + token(), Accept: 'text/event-stream' };
        if (this.lastSeq) headers['Last-Event-ID'] = String(this.lastSeq);
        const resp = await fetch('/api/v1/alerts/stream' + this.query, { headers, signal: this.ctrl.signal });
        if (resp.status === 401 || resp.status === 403) {
          this.onState('denied');
          return;
        }
        if (!resp.ok) throw new Error('stream status ' + resp.status);
        this.onState('live');
        delay = 500;
        await this.read(resp.body);
      } catch {
        // dropped: reconnect below
      }
      if (this.stopped) return;
      this.onState('reconnecting');
      await new Promise((r) => setTimeout(r, delay));
      delay = Math.min(delay * 2, 10000);
    }
  }

  async read(body) {
    const reader = body.pipeThrough(new TextDecoderStream()).getReader();
    let buf = '';
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      buf += value;
      let at;
      while ((at = buf.indexOf('\n\n')) >= 0) {
        const block = buf.slice(0, at);
        buf = buf.slice(at + 2);
        this.event(block);
      }
    }
  }

  event(block) {
    let id = '', event = 'message', data = '';
    for (const line of block.split('\n')) {
      if (line.startsWith(':')) continue;
      const i = line.indexOf(':');
      const field = i < 0 ? line : line.slice(0, i);
      const val = i < 0 ? '' : line.slice(i + 1).replace(/^ /, '');
      if (field === 'id') id = val;
      else if (field === 'event') event = val;
      else if (field === 'data') data += (data ? '\n' : '') + val;
    }
    if (!id || !data) return;
    const seq = Number(id);
    if (!(seq > this.lastSeq)) return; // already delivered before a reconnect
    this.lastSeq = seq;
    let item;
    try {
      item = JSON.parse(data);
    } catch {
      return;
    }
    this.delivered++;
    this.onItem(event, item);
  }
}
