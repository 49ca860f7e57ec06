/**
 * The custodian's view of a billing period (a month): sessions and fund totals, co-owner
 * payback progress, the statement per affiliate, corrections with reasons, CSV export and
 * closing the month.
 */
import { api, download } from './api.js';
import { count, dateTime, materialSource, materialToCheck, minor, monthName, monthOf, percent } from './format.js';
import { fill, formStatus, h, nextId, on, section, submitWith, table, width } from './parts.js';

const FUNDS = [
  ['material', 'Material'],
  ['technician', 'Technician'],
  ['maintenance', 'Maintenance fund'],
  ['infrastructure', 'Infrastructure fund'],
  ['payback', 'Co-owner payback'],
];
const CHANGES = {
  filamentG: { label: 'Change the material (grams)', input: { label: 'Grams used', type: 'number', step: '0.001', min: '0' } },
  useType: { label: 'Change the use type', input: { label: 'New use type', choices: true } },
  technicianMin: { label: 'Change technician time (minutes)', input: { label: 'Technician minutes', type: 'number', step: '1', min: '0' } },
  void: { label: 'Void the charge', input: null },
};

/** A session whose grams the custodian has corrected: its figure is settled, whatever its source. */
const corrected = (s) => s.entries.some((e) => e.kind === 'correction' && e.correction.change?.kind === 'material');
/** A session whose material is still to be confirmed or corrected. */
const toCheck = (s) => materialToCheck(s.material) && !corrected(s);

export function mount(root, { bus, failed, confirmAction }) {
  const names = new Map(); // affiliate id → name
  const toolNames = new Map(); // tool id → name
  const toolUseTypes = new Map(); // tool id → the use types its tariffs price
  const tool = (id) => toolNames.get(id) ?? id;
  let st = null; // the period's statement
  let affiliateSt = null;
  const who = (id) => names.get(id) ?? id;
  const cash = (units) => minor(units, st.currency, st.minorUnit);

  // ---- controls ----
  const periodId = nextId('period');
  const period = h('input', { id: periodId, type: 'month', value: monthOf(), required: true });
  const csvButton = h('button', { type: 'button', onclick: () => exportCsv().catch(failed) }, 'Download CSV');
  const closeButton = h('button', { type: 'button', class: 'danger', onclick: () => closeMonth().catch(failed) }, 'Close month…');
  const periodState = h('span', { class: 'pill' });
  const toolbarStatus = formStatus();
  const glance = h('div', {}, h('p', { class: 'muted' }, 'Loading…'));
  const payback = h('div', {}, h('p', { class: 'muted' }, 'Loading…'));

  const affiliateSelectId = nextId('affiliate');
  const affiliateSelect = h('select', { id: affiliateSelectId, onchange: () => loadAffiliate().catch(failed) });
  const affiliateBox = h('div');

  const form = correctionForm();

  fill(
    root,
    h('h1', { class: 'visually-hidden' }, 'Billing'),
    h('div', { class: 'card toolbar' }, h('label', { for: periodId }, 'Period'), period, periodState, h('span', { class: 'spacer' }), csvButton, closeButton, toolbarStatus.el),
    section('At a glance', glance),
    section('Co-owner payback', payback),
    section('Statement per affiliate', h('div', { class: 'row' }, h('label', { for: affiliateSelectId }, 'Affiliate'), affiliateSelect), affiliateBox),
    section('Correct a session', h('p', { class: 'muted' }, 'A correction never edits the past: it is recorded with its reason and lands in the first open month.'), form.el),
  );
  period.addEventListener('change', () => period.value && load().catch(failed));

  let loads = 0;
  async function load() {
    // a session's end and a person's action can both reload: only the latest answer is shown
    const turn = ++loads;
    const fresh = await api(`/api/billing/statement?from=${period.value}`);
    if (turn !== loads) return;
    st = fresh;
    const closed = st.closedPeriods.includes(period.value);
    fill(periodState, closed ? 'Closed' : 'Open');
    periodState.className = `pill ${closed ? 'blocked' : 'available'}`;
    closeButton.disabled = closed;
    fill(closeButton, `Close ${monthName(period.value)}…`);
    renderGlance();
    renderAffiliates();
    form.sessions(st.sessions);
    await Promise.all([loadPayback(), loadAffiliate()]);
  }

  function renderGlance() {
    const f = st.funds;
    const checks = st.sessions.filter(toCheck);
    fill(
      glance,
      h(
        'div',
        { class: 'tiles' },
        h('div', { class: 'tile' }, h('span', { class: 'label' }, 'Sessions'), h('span', { class: 'figure big' }, String(st.sessions.length))),
        h('div', { class: 'tile' }, h('span', { class: 'label' }, 'Owed in total'), h('span', { class: 'figure big', 'data-figure': 'total' }, cash(f.total))),
        st.value ? h('div', { class: 'tile' }, h('span', { class: 'label' }, 'Value of uses without cash charge'), h('span', { class: 'figure' }, cash(st.value))) : null,
      ),
      table(`Totals per fund, ${monthName(period.value)}`, ['Fund', 'Amount'], FUNDS.map(([k, label]) => [label, cash(f[k])]), { money: [1] }),
      checks.length
        ? table(
            `Material to check: ${checks.length} session${checks.length === 1 ? '' : 's'} (correct the grams below, or confirm them with the same figure)`,
            ['Session', 'Tool', 'Affiliate', 'Where the grams come from'],
            checks.map((s) => [dateTime(s.startedAt), tool(s.toolId), who(s.affiliateId), h('span', { class: 'source check' }, materialSource(s.material))]),
          )
        : null,
      st.tools.length ? table('Per tool', ['Tool', 'Sessions', 'Total'], st.tools.map((t) => [tool(t.toolId), String(t.sessions), cash(t.total)]), { numeric: [1], money: [2] }) : null,
    );
  }

  async function loadPayback() {
    const data = await api('/api/billing/payback');
    const tools = Array.isArray(data) ? data : data.tools;
    if (!tools.length) return fill(payback, h('p', { class: 'muted' }, 'No tool is co-owned.'));
    fill(
      payback,
      tools.map((t) => {
        const owners = t.coOwners.map((c) => ({ id: c.affiliateId ?? c.id, name: c.name, cap: c.cap, paid: c.paid ?? c.received, contribution: c.contribution }));
        const paid = owners.reduce((a, c) => a + c.paid, 0);
        const cap = owners.reduce((a, c) => a + c.cap, 0);
        return h(
          'div',
          { class: 'payback', 'data-tool': t.toolId },
          h('h3', {}, tool(t.toolId), ' ', h('span', { class: `pill ${t.pooled ? 'available' : ''}` }, t.pooled ? 'Pool of shareables' : 'Paying back')),
          h('p', { class: 'muted' }, `${cash(paid)} of ${cash(cap)} paid back (${percent(cap ? paid / cap : 1)})`, t.estimatedSessionsToPool ? `; about ${count(t.estimatedSessionsToPool)} more sessions to the pool` : ''),
          h(
            'ul',
            { class: 'bars' },
            owners.map((c) => {
              const share = c.cap ? Math.min(1, c.paid / c.cap) : 1;
              return h(
                'li',
                {},
                h('span', { class: 'bar-label' }, c.name ?? who(c.id)),
                h('span', { class: 'bar', 'aria-hidden': 'true' }, width(h('span', { class: 'bar-fill' }), share)),
                h('span', { class: 'bar-value' }, `${cash(c.paid)} / ${cash(c.cap)}`),
              );
            }),
          ),
        );
      }),
    );
  }

  function renderAffiliates() {
    const ids = new Set([...names.keys(), ...st.affiliates.map((a) => a.affiliateId)]);
    const chosen = affiliateSelect.value;
    fill(affiliateSelect, h('option', { value: '' }, 'Choose an affiliate'), [...ids].sort().map((id) => h('option', { value: id, selected: id === chosen }, names.has(id) ? `${names.get(id)} (${id})` : id)));
  }

  async function loadAffiliate() {
    const id = affiliateSelect.value;
    if (!id) return fill(affiliateBox, h('p', { class: 'muted' }, 'Choose an affiliate to see their statement for the period.'));
    affiliateSt = await api(`/api/billing/statement?from=${period.value}&affiliate=${encodeURIComponent(id)}`);
    if (!affiliateSt.sessions.length) return fill(affiliateBox, h('p', { class: 'muted' }, `No charged session for ${who(id)} in ${monthName(period.value)}.`));
    const rows = affiliateSt.sessions.flatMap((s) =>
      s.entries.map((e, i) => [
        i === 0 ? dateTime(s.startedAt) : '',
        i === 0 ? tool(s.toolId) : '',
        e.kind === 'correction' ? h('span', {}, 'Correction: ', h('em', {}, e.correction.reason), ` (${e.correction.by})`) : [`${e.useType}${e.cash ? '' : ' (no cash)'}`, sourceLine(s)],
        cash(e.items.usage),
        cash(e.items.material),
        cash(e.items.technician),
        cash(e.items.total),
      ]),
    );
    const total = affiliateSt.funds.total;
    fill(affiliateBox, table(`${who(id)}, ${monthName(period.value)}: ${cash(total)}`, ['Session', 'Tool', 'Entry', 'Usage', 'Material', 'Technician', 'Total'], rows, { money: [6, 3, 4, 5] }));
  }

  /** Where a session's grams come from, when it is not the file or was flagged: marked until corrected. */
  const sourceLine = (s) => (materialToCheck(s.material) ? h('span', { class: `source${toCheck(s) ? ' check' : ''}` }, materialSource(s.material), corrected(s) ? ' (corrected)' : '') : null);

  function correctionForm() {
    const ids = { session: nextId('c-session'), change: nextId('c-change'), value: nextId('c-value'), reason: nextId('c-reason') };
    const session = h('select', { id: ids.session, required: true });
    const change = h('select', { id: ids.change }, Object.entries(CHANGES).map(([k, c]) => h('option', { value: k }, c.label)));
    const valueLabel = h('label', { for: ids.value });
    const value = h('input', { id: ids.value });
    // use types are a fixed list: those the session's tool is priced for
    const useType = h('select', { id: ids.value });
    const valueRow = h('div', { class: 'field' }, valueLabel, value);
    const status = formStatus();
    const reason = h('textarea', { id: ids.reason, required: true, maxlength: '500', rows: '2', placeholder: 'e.g. the print failed in the first layer; the affiliate brought their own filament' });
    const submit = h('button', { type: 'submit' }, 'Record correction');
    const showInput = () => {
      const spec = CHANGES[change.value].input;
      valueRow.hidden = !spec;
      value.required = Boolean(spec);
      if (!spec) return;
      fill(valueLabel, spec.label);
      const chosen = spec.choices ? useType : value;
      if (chosen.parentNode !== valueRow) valueRow.replaceChild(chosen, chosen === useType ? value : useType);
      if (spec.choices) {
        const s = st?.sessions.find((x) => x.sessionId === session.value);
        const current = useType.value;
        fill(useType, (toolUseTypes.get(s?.toolId) ?? []).map((u) => h('option', { value: u, selected: u === current }, u)));
        return;
      }
      for (const a of ['type', 'step', 'min']) {
        if (spec[a]) value.setAttribute(a, spec[a]);
        else value.removeAttribute(a);
      }
    };
    change.addEventListener('change', showInput);
    session.addEventListener('change', showInput);
    showInput();
    const el = h(
      'form',
      {
        class: 'form-grid',
        onsubmit: submitWith(submit, status, failed, async () => {
          const kind = change.value;
          const body = { sessionId: session.value, reason: reason.value.trim() };
          if (kind === 'void') body.void = true;
          else if (kind === 'useType') body.useType = useType.value;
          else body[kind] = Number(value.value);
          const c = await api('/api/billing/corrections', { method: 'POST', body });
          const s = st.sessions.find((x) => x.sessionId === body.sessionId);
          const what = s ? `${who(s.affiliateId)}’s session at ${tool(s.toolId)} (${dateTime(s.startedAt)})` : `session ${body.sessionId}`;
          reason.value = value.value = '';
          await load();
          return `Correction recorded for ${what}${c.period ? `, in ${monthName(c.period)}` : ''}.`;
        }),
      },
      h('div', { class: 'field' }, h('label', { for: ids.session }, 'Session'), session),
      h('div', { class: 'field' }, h('label', { for: ids.change }, 'Change'), change),
      valueRow,
      h('div', { class: 'field wide' }, h('label', { for: ids.reason }, 'Reason'), reason),
      h('div', { class: 'wide row' }, submit, status.el),
    );
    const sessions = (list) => {
      const chosen = session.value;
      fill(
        session,
        list.length ? null : h('option', { value: '' }, 'No charged session in this period'),
        list.map((s) => h('option', { value: s.sessionId, selected: s.sessionId === chosen }, `${dateTime(s.startedAt)} · ${tool(s.toolId)} · ${who(s.affiliateId)} · ${cash(s.net.total)}${toCheck(s) ? ' · material to check' : ''}`)),
      );
      showInput();
    };
    return { el, sessions };
  }

  async function exportCsv() {
    const { name, blob } = await download(`/api/billing/statement?from=${period.value}&format=csv`);
    const url = URL.createObjectURL(blob);
    const a = h('a', { href: url, download: name, hidden: true });
    document.body.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 10_000);
    toolbarStatus.say(`Downloaded ${name}.`);
  }

  async function closeMonth() {
    const m = period.value;
    const ok = await confirmAction(`Close ${monthName(m)}?`, `Its statement is then final: corrections to its sessions land in the next open month. This cannot be undone.`, `Close ${monthName(m)}`);
    if (!ok) return;
    await api(`/api/billing/periods/${m}/close`, { method: 'POST', body: {} });
    await load();
    // the button is now disabled: the keyboard's focus goes back to the month, the news beside it
    period.focus();
    toolbarStatus.say(`${monthName(m)} is closed.`);
  }

  (async () => {
    // Names make the statement readable; a gateway that does not list affiliates shows ids.
    const [affiliates, tools] = await Promise.all([api('/api/affiliates').catch(() => []), api('/api/tools')]);
    for (const a of affiliates) names.set(a.id, a.name ?? a.id);
    for (const t of tools) {
      toolNames.set(t.id, t.name);
      toolUseTypes.set(t.id, t.useTypes ?? []);
    }
    await load();
  })().catch(failed);

  // a session that ends is charged: the period's figures change
  return on(bus, 'session', (s) => s.ended && load().catch(failed));
}
