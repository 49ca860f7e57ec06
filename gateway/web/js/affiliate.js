/**
 * The affiliate's view: the running session with its cost updating live, past sessions and
 * their costs by month, which tools are free, and (her own) her balance and her invoices and
 * statements by month to download as PDF or CSV.
 */
import { api, download } from './api.js';
import { dateTime, duration, energy, grams, materialSource, materialToCheck, minor, money, monthName, monthOf, sumDecimals, time } from './format.js';
import { dl, fill, formStatus, grow, h, nextId, on, section, statusPill, submitWith, table, toolStatus } from './parts.js';

const PARTS = [
  ['material', 'Material'],
  ['maintenance', 'Maintenance fund'],
  ['infrastructure', 'Infrastructure fund'],
  ['payback', 'Co-owner payback'],
  ['technician', 'Technician'],
];

/** The kinds a person may turn off, as they read them. */
const KIND_NAMES = {
  receipt: 'Receipts when a session ends',
  'switch-off-warning': 'Warnings before a tool switches off',
  'job-waiting': 'A print sent from a slicer waits for my badge',
  'quote-waiting': 'A print waits for me to confirm its quote',
  'job-finished': 'A print finished',
  'job-failed': 'A print failed or was cancelled',
  'refused-badge': 'A badge refused, with the reason',
};

/**
 * The person's notification choices: the channels they are told on, what they want to hear of,
 * quiet hours; their address as the lab has it. Critical messages always go.
 */
function notificationChoices(box, me, failed) {
  const path = `/api/affiliates/${encodeURIComponent(me.affiliateId)}/notifications`;
  const render = (c) => {
    const ids = { from: nextId('quiet-from'), to: nextId('quiet-to') };
    const channelBoxes = c.available.map((name) => {
      const id = nextId('channel');
      const input = h('input', { id, type: 'checkbox', name: 'channel', value: name, checked: c.channels === null || c.channels.includes(name) });
      return { name, input, el: h('div', { class: 'check' }, input, h('label', { for: id }, name)) };
    });
    const kindBoxes = c.kinds.map((kind) => [kind, KIND_NAMES[kind] ?? kind]).map(([kind, text]) => {
      const id = nextId('kind');
      const input = h('input', { id, type: 'checkbox', name: 'kind', value: kind, checked: !c.optOut.includes(kind) });
      return { kind, input, el: h('div', { class: 'check' }, input, h('label', { for: id }, text)) };
    });
    const [qFrom, qTo] = (c.quietHours ?? '-').split('-');
    const from = h('input', { id: ids.from, type: 'time', value: qFrom });
    const to = h('input', { id: ids.to, type: 'time', value: qTo });
    const save = h('button', { type: 'submit' }, 'Save');
    const said = formStatus();
    const form = h(
      'form',
      {
        'aria-label': 'Notifications',
        onsubmit: submitWith(save, said, failed, async () => {
          if (Boolean(from.value) !== Boolean(to.value)) throw new Error('Quiet hours need a start and an end (or neither).');
          const chosen = channelBoxes.filter((b) => b.input.checked).map((b) => b.name);
          const body = {
            channels: chosen.length === channelBoxes.length ? null : chosen,
            optOut: kindBoxes.filter((b) => !b.input.checked).map((b) => b.kind),
            quietHours: from.value ? `${from.value}-${to.value}` : null,
          };
          const next = await api(path, { method: 'PUT', body });
          return `Saved: ${next.optOut.length ? `not told of ${next.optOut.length} kind${next.optOut.length === 1 ? '' : 's'}` : 'told of everything'}${next.quietHours ? `, quiet ${next.quietHours}` : ''}.`;
        }),
      },
      dl([['E-mail', c.email ?? 'none: ask the lab to add your address']]),
      channelBoxes.length ? h('fieldset', {}, h('legend', {}, 'Tell me on'), channelBoxes.map((b) => b.el)) : h('p', { class: 'muted' }, 'The lab sends no notifications to affiliates.'),
      h('fieldset', {}, h('legend', {}, 'Tell me of'), kindBoxes.map((b) => b.el)),
      h('fieldset', { class: 'inline-form' }, h('legend', {}, 'Quiet hours (only urgent messages then)'), h('div', { class: 'field' }, h('label', { for: ids.from }, 'From'), from), h('div', { class: 'field' }, h('label', { for: ids.to }, 'To'), to)),
      save,
      said.el,
    );
    fill(box, form);
  };
  api(path).then(render, failed);
}

export function mount(root, { me, bus, failed }) {
  const own = me.role === 'affiliate';
  const tools = new Map();
  const live = new Map(); // sessionId → { data, at, card }
  const liveBox = h('div', { class: 'live-list' });
  const historyBox = h('div', {}, h('p', { class: 'muted' }, 'Loading…'));
  const toolsBox = h('ul', { class: 'tool-list' });
  // a session starting or ending is said once; each card then says its own changes
  const startsAndEnds = h('p', { class: 'visually-hidden', 'aria-live': 'polite' });
  const names = new Map(); // affiliate id → name, for those who see everyone's sessions
  const choicesBox = h('div', {}, h('p', { class: 'muted' }, 'Loading…'));
  const accountBox = h('div', { class: 'account' }, h('p', { class: 'muted' }, 'Loading…'));
  const accountStatus = formStatus();
  fill(
    root,
    h('h1', { class: 'visually-hidden' }, own ? 'My use' : 'Use of the tools'),
    section(own ? 'My session' : 'Live sessions', startsAndEnds, liveBox),
    section('Tools', toolsBox),
    section(own ? 'My sessions' : 'Sessions', historyBox),
    own ? section('My account', accountBox, accountStatus.el) : null,
    own ? section('My notifications', choicesBox) : null,
  );
  if (own) notificationChoices(choicesBox, me, failed);

  /** Saves a file the API gives (a PDF, a CSV) under the name the gateway gave it. */
  async function save(path) {
    const { name, blob } = await download(path);
    const url = URL.createObjectURL(blob);
    const a = h('a', { href: url, download: name, hidden: true });
    document.body.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 10_000);
    accountStatus.say(`Downloaded ${name}.`);
  }
  const saveButton = (label, name, path) => {
    const b = h('button', { type: 'button', 'aria-label': name }, label);
    b.addEventListener('click', () => save(path).catch((err) => (err.status === 401 ? failed(err) : accountStatus.say(err.message, 'error'))));
    return b;
  };

  /** Her balance (invoiced − paid) and her months: the invoices of closed months, this month's statement so far. */
  async function loadAccount() {
    let balances, invoices;
    try {
      [balances, invoices] = await Promise.all([api('/api/billing/balances'), api('/api/billing/invoices')]);
    } catch (err) {
      if (err.status === 404) return fill(accountBox, h('p', { class: 'muted' }, 'This lab does not bill its tools.'));
      throw err;
    }
    const b = balances[0];
    const current = monthOf();
    const months = [{ period: current, invoice: null }, ...invoices.slice().reverse().map((i) => ({ period: i.period, invoice: i }))];
    const rows = months.map(({ period, invoice }) => [
      period === current ? 'This month (open)' : monthName(period),
      invoice ? invoice.number : '—',
      invoice ? minor(invoice.total, invoice.currency, b.minorUnit) : '—',
      h(
        'span',
        { class: 'downloads' },
        saveButton('PDF', `${invoice ? `Invoice ${invoice.number}` : `Statement of ${monthName(period)}`} as PDF`, `/api/billing/invoices/${period}/${encodeURIComponent(me.affiliateId)}`),
        ' ',
        saveButton('CSV', `Statement of ${monthName(period)} as CSV`, `/api/billing/statement?from=${period}&format=csv`),
      ),
    ]);
    fill(
      accountBox,
      dl([
        ['Invoiced', minor(b.invoiced, b.currency, b.minorUnit)],
        ['Paid', minor(b.paid, b.currency, b.minorUnit)],
        [b.balance > 0 ? 'Balance to pay' : 'Balance', h('span', { class: 'figure balance' }, minor(b.balance, b.currency, b.minorUnit))],
      ]),
      table('Invoices and statements', ['Month', 'Invoice', 'Total', 'Download'], rows, { money: [2] }),
    );
  }

  const toolName = (id) => tools.get(id)?.name ?? id;
  const who = (id) => names.get(id) ?? id;

  function renderTools() {
    fill(
      toolsBox,
      [...tools.values()].map((t) => {
        const s = toolStatus(t);
        return h('li', { 'data-tool': t.id }, h('span', { class: 'tool-name' }, t.name), statusPill(t), s.reason && s.key !== 'in-use' ? h('span', { class: 'muted' }, s.reason) : null, t.online === false ? h('span', { class: 'pill offline' }, 'Offline') : null);
      }),
    );
  }

  function renderNoSession() {
    if (live.size === 0 && !liveBox.querySelector('.session')) fill(liveBox, h('p', { class: 'muted' }, own ? 'No session running. Badge in at a tool to start one; its time, material and cost show here as you work.' : 'No session running.'));
  }

  function sessionCard(s) {
    const refs = {
      elapsed: h('span', { class: 'figure' }),
      grams: h('span', { class: 'figure' }),
      source: h('span', { class: 'source' }),
      energy: h('span', { class: 'figure' }),
      total: h('span', { class: 'figure big' }),
      parts: h('div'),
      state: h('span', { class: 'pill in-use' }, 'Running'),
      said: h('p', { class: 'visually-hidden', 'aria-live': 'polite' }),
    };
    const card = h(
      'article',
      { class: 'session', 'data-session': s.sessionId, 'data-tool': s.toolId, 'aria-label': `Session at ${toolName(s.toolId)}` },
      h('header', {}, h('h3', {}, toolName(s.toolId)), refs.state),
      h('p', { class: 'muted' }, `Started ${time(s.startedAt)}`, own ? '' : ` · ${who(s.affiliateId)}`, ` · ${s.useType} use`),
      h(
        'div',
        { class: 'figures' },
        h('div', {}, h('span', { class: 'label' }, 'Time'), refs.elapsed),
        // grams, energy and cost are announced when they change; the ticking clock is not
        h('div', { class: 'material' }, h('span', { class: 'label' }, 'Material'), refs.grams, refs.source),
        h('div', {}, h('span', { class: 'label' }, 'Energy'), refs.energy),
        h('div', { class: 'cost' }, h('span', { class: 'label' }, 'Cost so far'), refs.total),
      ),
      refs.parts,
      refs.said,
    );
    return { card, refs };
  }

  function showSession(s) {
    let entry = live.get(s.sessionId);
    if (!entry) {
      if (!liveBox.querySelector('.session[data-session]:not(.ended)')) fill(liveBox);
      for (const old of liveBox.querySelectorAll('.session.ended')) old.remove();
      entry = { ...sessionCard(s) };
      live.set(s.sessionId, entry);
      liveBox.append(entry.card);
      if (!s.ended) startsAndEnds.textContent = `Session started at ${toolName(s.toolId)}.`;
    }
    Object.assign(entry, { data: s, at: Date.now() });
    const { refs } = entry;
    refs.grams.textContent = grams(s.filamentG);
    showSource(refs.source, s.material);
    refs.energy.textContent = energy(s.energyWh);
    const cost = s.cost ?? s.charge ?? null;
    refs.total.textContent = cost ? money(cost.total, cost.currency) : 'Not charged';
    const parts = cost?.parts ? PARTS.filter(([k]) => cost.parts[k] !== undefined) : [];
    fill(
      refs.parts,
      parts.length ? h('div', { class: 'split-bar', 'aria-hidden': 'true' }, parts.map(([k]) => grow(h('span', { class: `part-${k}` }), Number(cost.parts[k])))) : null,
      parts.length ? dl(parts.map(([k, label]) => [[h('span', { class: `dot part-${k}`, 'aria-hidden': 'true' }), label], money(cost.parts[k], cost.currency)]), { class: 'split' }) : null,
    );
    tick();
    // grams and cost are said when they change, with the tool; the ticking clock is not
    const said = `${toolName(s.toolId)}: material ${refs.grams.textContent}, cost so far ${refs.total.textContent}.`;
    if (!s.ended && refs.said.textContent !== said) refs.said.textContent = said;
    if (s.ended) {
      live.delete(s.sessionId);
      entry.card.classList.add('ended');
      fill(refs.state, 'Ended');
      refs.state.className = 'pill';
      refs.elapsed.textContent = duration(s.durationS ?? s.elapsedS);
      refs.total.previousSibling.textContent = 'Final cost';
      refs.said.textContent = '';
      startsAndEnds.textContent = `Session at ${toolName(s.toolId)} ended: final cost ${refs.total.textContent}.`;
      void loadHistory();
    }
  }

  /** Where the grams come from, marked when the custodian is to check them. */
  function showSource(el, m) {
    el.textContent = materialSource(m) ?? '';
    el.hidden = !m;
    el.classList.toggle('check', materialToCheck(m));
    return el;
  }
  /** A past session's grams, with their source when it is not the file. */
  const materialCell = (s) => (materialToCheck(s.material) ? [grams(s.filamentG), showSource(h('span', { class: 'source' }), s.material)] : grams(s.filamentG));

  function tick() {
    for (const { data, at, refs } of live.values()) refs.elapsed.textContent = duration(data.elapsedS + (Date.now() - at) / 1000);
  }

  async function loadHistory() {
    // the running ones are shown live above
    const sessions = (await api('/api/sessions?limit=1000')).filter((s) => s.endedAt);
    if (sessions.length === 0) return fill(historyBox, h('p', { class: 'muted' }, 'No sessions yet.'));
    const months = new Map();
    for (const s of sessions) {
      const m = monthOf(new Date(s.startedAt));
      if (!months.has(m)) months.set(m, []);
      months.get(m).push(s);
    }
    const current = monthOf();
    fill(
      historyBox,
      [...months].map(([m, list]) => {
        const charged = list.filter((s) => s.charge);
        const currency = charged[0]?.charge.currency;
        const total = charged.length ? money(sumDecimals(charged.map((s) => s.charge.total)), currency) : 'no charge';
        const caption = `${m === current ? 'This month' : monthName(m)}: ${list.length} session${list.length === 1 ? '' : 's'}, ${total}`;
        const rows = list.map((s) => [dateTime(s.startedAt), toolName(s.toolId), ...(own ? [] : [who(s.affiliateId)]), s.useType, duration(s.durationS), materialCell(s), s.charge ? money(s.charge.total, s.charge.currency) : '—']);
        const headings = ['Started', 'Tool', ...(own ? [] : ['Affiliate']), 'Use', 'Time', 'Material', 'Cost'];
        const last = headings.length - 1;
        return table(caption, headings, rows, { numeric: [last - 2, last - 1], money: [last] });
      }),
    );
  }

  const stops = [
    on(bus, 'session', showSession),
    on(bus, 'tool', (t) => {
      tools.set(t.id, { ...tools.get(t.id), ...t });
      renderTools();
    }),
  ];
  const ticker = setInterval(tick, 1000);

  (async () => {
    // the tools come with the running sessions this person may see in full (an affiliate: her own)
    const [list, affiliates] = await Promise.all([api('/api/tools'), own ? [] : api('/api/affiliates').catch(() => [])]);
    for (const a of affiliates) names.set(a.id, a.name);
    for (const t of list) tools.set(t.id, t);
    renderTools();
    for (const t of list) if (t.session?.affiliateId) showSession(t.session);
    renderNoSession();
    await Promise.all([loadHistory(), own ? loadAccount() : null]);
  })().catch(failed);

  return () => {
    clearInterval(ticker);
    for (const stop of stops) stop();
  };
}
