/**
 * The dashboard's shell: login (a pasted token or a `#token=…` link, kept in this tab's
 * sessionStorage), the views the token's role may see, live events shared by the views.
 */
import { api, ApiError, forgetToken, getToken, liveEvents, prefetch, setToken } from './api.js';
import { fill, h } from './parts.js';

// each view's module is fetched when it is first shown (an affiliate never loads the staff's),
// together with the requests it makes first; every view starts from the tools
const VIEWS = {
  affiliate: { label: 'My use', load: () => import('./affiliate.js'), first: [], roles: ['affiliate', 'admin'] },
  custodian: { label: 'Billing', load: () => import('./custodian.js'), first: ['/api/affiliates'], roles: ['custodian', 'admin'] },
  maintainer: { label: 'Tools & health', load: () => import('./maintainer.js'), first: ['/api/devices'], roles: ['maintainer', 'admin'] },
};
const EVERY_VIEW_FIRST = ['/api/tools'];
const ROLE_NAMES = { affiliate: 'Affiliate', custodian: 'Custodian', maintainer: 'Maintainer', admin: 'Admin' };
const LIVE_TEXT = { live: 'Live', reconnecting: 'Reconnecting…', down: 'Live updates paused' };

const $ = (id) => document.getElementById(id);
const state = { me: null, stopEvents: null, unmount: null, bus: new EventTarget() };

/** Shows a message for a person; errors stay until dismissed or replaced. */
export function notify(message, kind = 'error') {
  const box = $('notice');
  box.className = `notice ${kind}`;
  fill(box, h('span', {}, message), h('button', { type: 'button', class: 'quiet', 'aria-label': 'Dismiss', onclick: () => (box.hidden = true) }, '×'));
  box.hidden = false;
}

/** Reports a failed request; a refused token sends the person back to the login. */
export function failed(err) {
  if (err instanceof ApiError && err.status === 401) return logout('The gateway refused this token (revoked or mistyped). Log in again.');
  notify(err instanceof ApiError ? err.message : `Something went wrong: ${err.message}`);
}

/** Asks before something that cannot be undone; resolves true when confirmed. */
export function confirmAction(title, text, okLabel) {
  const dialog = $('confirm');
  fill($('confirm-title'), title);
  fill($('confirm-text'), text);
  fill($('confirm-ok'), okLabel);
  dialog.returnValue = '';
  dialog.showModal();
  return new Promise((resolve) => dialog.addEventListener('close', () => resolve(dialog.returnValue === 'ok'), { once: true }));
}

function allowedViews() {
  return Object.entries(VIEWS).filter(([, v]) => v.roles.includes(state.me.role));
}

/** Views are addressed as #/name; other fragments (the skip link's #main) are not views. */
function onHashChange() {
  if (location.hash.startsWith('#/')) void route();
}

let routing = 0;
async function route() {
  const views = allowedViews();
  const wanted = /^#\/(\w+)/.exec(location.hash)?.[1];
  const [name, view] = views.find(([n]) => n === wanted) ?? views[0];
  if ($('view').dataset.view === name && state.unmount) return;
  const turn = ++routing;
  const forget = prefetch(view.first);
  const module = await view.load().catch((err) => {
    notify(`The ${view.label} page could not be loaded (${err.message}). Reload to try again.`);
    return null;
  });
  if (!module || turn !== routing || !state.me) return;
  for (const a of $('nav').querySelectorAll('a')) {
    if (a.dataset.view === name) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
  state.unmount?.();
  const container = fill($('view'));
  container.dataset.view = name;
  document.title = `${view.label} · ${state.me.gateway}`;
  state.unmount = module.mount(container, { me: state.me, bus: state.bus, notify, failed, confirmAction });
  forget();
}

async function start() {
  let me;
  // asked beside who the token is: on a slow network each round trip shows
  prefetch(EVERY_VIEW_FIRST);
  try {
    me = await api('/api/me');
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) return logout('The gateway refused this token (revoked or mistyped). Check it and try again.');
    return showLogin(err.message);
  }
  state.me = me;
  $('notice').hidden = true;
  $('login').hidden = true;
  fill($('gateway-name'), me.gateway);
  fill($('who'), `${me.affiliateName ?? me.name ?? me.affiliateId ?? ''} · ${ROLE_NAMES[me.role] ?? me.role}`);
  const nav = fill($('nav'), allowedViews().map(([name, v]) => h('a', { href: `#/${name}`, 'data-view': name }, v.label)));
  nav.hidden = allowedViews().length < 2;
  $('logout').hidden = false;
  const live = $('live-state');
  live.hidden = false;
  state.stopEvents = liveEvents(
    (type, data) => state.bus.dispatchEvent(new CustomEvent(type, { detail: data })),
    (s) => {
      live.dataset.state = s;
      live.textContent = LIVE_TEXT[s];
    },
  );
  window.addEventListener('hashchange', onHashChange);
  await route();
}

function showLogin(message) {
  $('login').hidden = false;
  $('nav').hidden = true;
  $('logout').hidden = true;
  $('live-state').hidden = true;
  fill($('who'));
  fill($('view'));
  if (message) notify(message);
  $('token').focus();
}

function logout(message) {
  state.stopEvents?.();
  state.unmount?.();
  state.stopEvents = state.unmount = state.me = null;
  delete $('view').dataset.view;
  window.removeEventListener('hashchange', onHashChange);
  forgetToken();
  history.replaceState(null, '', location.pathname);
  showLogin(message);
}

$('login-form').addEventListener('submit', (e) => {
  e.preventDefault();
  const token = $('token').value.trim();
  if (!token) return;
  $('token').value = '';
  setToken(token);
  void start();
});
$('logout').addEventListener('click', () => logout());

// A login link (#token=…) is read once and removed from the address bar and the history.
const linked = /^#token=([^&]+)/.exec(location.hash);
if (linked) {
  setToken(decodeURIComponent(linked[1]));
  history.replaceState(null, '', location.pathname);
}
if (getToken()) void start();
else showLogin();
