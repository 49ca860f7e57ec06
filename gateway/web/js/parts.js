/** Pieces the shell and the views share: an element builder, sections, tables, forms. */

/** A tiny element builder: h('p', { class: 'x', onclick }, 'text', child). */
export function h(tag, props = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else if (k === 'class') el.className = v;
    else if (k in el && typeof v !== 'string') el[k] = v;
    else el.setAttribute(k, v === true ? '' : v);
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : String(c));
  }
}

/** Replaces the children of `el`. */
export function fill(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

/** A definition list from [term, value] pairs; pairs with an undefined value are left out. */
export function dl(pairs, props = {}) {
  return h('dl', props, pairs.filter(([, v]) => v !== undefined).flatMap(([t, v]) => [h('dt', {}, t), h('dd', {}, v)]));
}

let uid = 0;
/** A unique id for label/input pairs. */
export const nextId = (prefix) => `${prefix}-${++uid}`;

/** A titled section of a view. */
export function section(title, ...children) {
  const id = `s-${title.toLowerCase().replace(/[^a-z0-9]+/g, '-')}`;
  return h('section', { class: 'card', 'aria-labelledby': id }, h('h2', { id }, title), ...children);
}

const STATUS_TEXT = { available: 'Available', 'in-use': 'In use', blocked: 'Blocked', maintenance: 'Maintenance' };

/** A tool's status as a person reads it: free, in use, blocked (why), in maintenance (why). */
export function toolStatus(tool) {
  const inUse = tool.status === 'available' && Boolean(tool.inUse || tool.session);
  const key = inUse ? 'in-use' : tool.status;
  const text = key === 'available' ? 'Free' : STATUS_TEXT[key] ?? key;
  return { key, text, reason: tool.statusReason ?? null };
}

export function statusPill(tool) {
  const s = toolStatus(tool);
  return h('span', { class: `pill ${s.key}` }, s.text);
}

/**
 * A table from column headings and rows of cells; numeric columns are right-aligned. Below
 * 600 px each row becomes a card (style.css), its `money` columns first (the first of them
 * leading), so amounts are never off-screen. Its title sits above, readable whatever the width.
 */
export function table(title, headings, rows, { numeric = [], money = [] } = {}) {
  const id = nextId('table');
  const cls = (i) => [numeric.includes(i) || money.includes(i) ? 'num' : '', money.includes(i) ? 'money' : '', money[0] === i ? 'lead' : ''].join(' ').trim() || null;
  // the roles are explicit: a table laid out as cards keeps them
  const cell = (c, i) => h(i === 0 ? 'th' : 'td', { scope: i === 0 ? 'row' : null, role: i === 0 ? 'rowheader' : 'cell', class: cls(i), 'data-label': headings[i] }, c);
  return h(
    'div',
    { class: 'table-block' },
    h('p', { class: 'table-title', id }, title),
    h(
      'div',
      { class: 'table-wrap', role: 'region', 'aria-labelledby': id, tabindex: '0' },
      h(
        'table',
        { 'aria-labelledby': id, role: 'table' },
        h('thead', { role: 'rowgroup' }, h('tr', { role: 'row' }, headings.map((t, i) => h('th', { scope: 'col', role: 'columnheader', class: cls(i) }, t)))),
        h('tbody', { role: 'rowgroup' }, rows.map((r) => h('tr', { role: 'row' }, r.map(cell)))),
      ),
    ),
  );
}

/** A line beside a form saying what its last submission did, where the person is looking. */
export function formStatus() {
  const el = h('p', { class: 'form-status', role: 'status' });
  const say = (text, kind = 'ok') => {
    el.className = `form-status ${kind}`;
    el.textContent = text;
  };
  return { el, say };
}

/**
 * A form's submit handler: runs `work` one at a time and says the sentence it returns (or the
 * gateway's refusal) in `status`. The button is marked busy rather than disabled, so the
 * keyboard's focus stays on it; a refused token still goes to `failed` (back to the login).
 */
export function submitWith(button, status, failed, work) {
  let busy = false;
  return (e) => {
    e.preventDefault();
    if (busy) return;
    busy = true;
    button.setAttribute('aria-disabled', 'true');
    Promise.resolve()
      .then(work)
      .then((text) => status.say(text))
      .catch((err) => (err.status === 401 ? failed(err) : status.say(err.message, 'error')))
      .finally(() => {
        busy = false;
        button.removeAttribute('aria-disabled');
      });
  };
}

/** Sets an element's flex-grow through the CSSOM (the page's policy allows no style attribute). */
export function grow(el, value) {
  el.style.flexGrow = String(value);
  return el;
}

/** Sets an element's width as a fraction of its container, through the CSSOM. */
export function width(el, fraction) {
  el.style.width = `${(fraction * 100).toFixed(1)}%`;
  return el;
}

/** Listens to a live event for as long as the view is shown; returns the remover. */
export function on(bus, type, handler) {
  const listener = (e) => handler(e.detail);
  bus.addEventListener(type, listener);
  return () => bus.removeEventListener(type, listener);
}
