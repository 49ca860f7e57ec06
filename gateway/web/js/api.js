/**
 * The gateway's API as the pages use it: every request carries the token kept in this tab's
 * sessionStorage; errors become ApiError with the gateway's sentence for a person.
 */
const KEY = 'ovn-gateway.token';

export const getToken = () => sessionStorage.getItem(KEY);
export const setToken = (token) => sessionStorage.setItem(KEY, token);
export const forgetToken = () => sessionStorage.removeItem(KEY);

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

async function request(path, { method = 'GET', body } = {}) {
  const headers = { authorization: `Bearer ${getToken()}` };
  if (body !== undefined) headers['content-type'] = 'application/json';
  let res;
  try {
    res = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  } catch {
    throw new ApiError(0, 'unreachable', 'The gateway cannot be reached. Check the network and try again.');
  }
  if (!res.ok) {
    const err = await res.json().catch(() => ({}));
    throw new ApiError(res.status, err.error ?? `http-${res.status}`, err.message ?? `${method} ${path} failed (HTTP ${res.status}).`);
  }
  return res;
}

const early = new Map(); // path → the answer of a GET started by prefetch()

/** JSON from the API; a GET that prefetch() started is answered by it. */
export async function api(path, options) {
  const started = options === undefined && early.get(path);
  if (started) {
    early.delete(path);
    return started;
  }
  return (await request(path, options)).json();
}

/**
 * Starts the GETs a view makes first, so they travel beside its module instead of after it (each
 * round trip shows on a slow network); the function it returns drops those no view asked for.
 */
export function prefetch(paths) {
  for (const path of paths) {
    if (early.has(path)) continue;
    const answer = request(path).then((res) => res.json());
    answer.catch(() => {}); // the view that asks for it gets the error
    early.set(path, answer);
  }
  return () => early.clear();
}

/** A file from the API (e.g. a CSV statement), with the name the gateway gave it. */
export async function download(path) {
  const res = await request(path);
  const name = /filename="([^"]+)"/.exec(res.headers.get('content-disposition') ?? '')?.[1] ?? 'download';
  return { name, blob: await res.blob() };
}

/**
 * Server-sent events (`tool`, `session`, `device`, `alert`) dispatched to `onEvent(type, data)`.
 * EventSource cannot send headers, so the token goes in the query. It reconnects by itself
 * after a network error; after a refusal it is reopened here, a little later.
 */
export function liveEvents(onEvent, onState) {
  let source = null;
  let timer = null;
  let stopped = false;
  const open = () => {
    source = new EventSource(`/api/events?token=${encodeURIComponent(getToken())}`);
    source.onopen = () => onState('live');
    source.onerror = () => {
      if (source.readyState === EventSource.CLOSED && !stopped) {
        onState('down');
        timer = setTimeout(open, 5000);
      } else onState('reconnecting');
    };
    for (const type of ['tool', 'session', 'device', 'alert']) {
      source.addEventListener(type, (e) => {
        try {
          onEvent(type, JSON.parse(e.data));
        } catch {
          // a malformed event is skipped; the next one or a reload brings the state back
        }
      });
    }
  };
  open();
  return () => {
    stopped = true;
    clearTimeout(timer);
    source?.close();
  };
}
