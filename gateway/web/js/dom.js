/** A tiny element builder: h('p', { class: 'x', onclick }, 'text', child). */
export function h(tag, props = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else if (k === 'class') el.className = v;
    // through the CSS object model: the Content-Security-Policy refuses style attributes
    else if (k === 'style') el.style.cssText = v;
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
