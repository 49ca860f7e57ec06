/** Pieces several views share. */
import { h, nextId } from './dom.js';

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
 * A table from column headings and rows of cells; numeric columns are right-aligned. Its title
 * sits above the scrolling part, so it stays readable on a phone when the table scrolls sideways.
 */
export function table(title, headings, rows, numeric = []) {
  const id = nextId('table');
  const cls = (i) => (numeric.includes(i) ? 'num' : null);
  return h(
    'div',
    { class: 'table-block' },
    h('p', { class: 'table-title', id }, title),
    h(
      'div',
      { class: 'table-wrap', role: 'region', 'aria-labelledby': id, tabindex: '0' },
      h(
        'table',
        { 'aria-labelledby': id },
        h('thead', {}, h('tr', {}, headings.map((t, i) => h('th', { scope: 'col', class: cls(i) }, t)))),
        h('tbody', {}, rows.map((r) => h('tr', {}, r.map((c, i) => h(i === 0 ? 'th' : 'td', { scope: i === 0 ? 'row' : null, class: cls(i) }, c))))),
      ),
    ),
  );
}

/** Listens to a live event for as long as the view is shown; returns the remover. */
export function on(bus, type, handler) {
  const listener = (e) => handler(e.detail);
  bus.addEventListener(type, listener);
  return () => bus.removeEventListener(type, listener);
}
