/**
 * The maintainers' view: a grid of tools with the health of their devices (online, state,
 * temperatures, faults, last seen, run hours to the next service), alerts as they arrive,
 * block/unblock/maintenance with a reason, and the maintenance log.
 */
import { api, ApiError } from './api.js';
import { ago, celsius, dateTime, hours, percent, time } from './format.js';
import { dl, fill, formStatus, h, nextId, on, section, statusPill, submitWith, table, toolStatus } from './parts.js';

const MAX_ALERTS = 50;

export function mount(root, { bus, failed }) {
  const tools = new Map(); // id → tool view
  const devices = new Map(); // id → device health
  const maintenance = new Map(); // tool id → maintenance state
  const cards = new Map(); // tool id → { el, status, health, service }
  let maintenanceAvailable = true;

  const loading = h('p', { class: 'muted' }, 'Loading…');
  const grid = h('div', { class: 'grid' }, loading);
  const alerts = h('ol', { class: 'alerts', 'aria-live': 'polite', 'aria-relevant': 'additions' });
  const noAlerts = h('p', { class: 'muted' }, 'No alert since this page was opened.');
  const log = h('div');
  fill(root, h('h1', { class: 'visually-hidden' }, 'Tools and health'), section('Tools', grid), section('Alerts', noAlerts, alerts), section('Maintenance log', log));

  function card(t) {
    if (cards.has(t.id)) return cards.get(t.id);
    const ids = { status: nextId('status'), reason: nextId('reason'), note: nextId('note'), reset: nextId('reset') };
    const status = h('span');
    const health = h('div');
    const select = h('select', { id: ids.status }, h('option', { value: 'available' }, 'Available'), h('option', { value: 'blocked' }, 'Blocked'), h('option', { value: 'maintenance' }, 'Maintenance'));
    const reason = h('input', { id: ids.reason, maxlength: '200', placeholder: 'why, for the people who badge in' });
    const apply = h('button', { type: 'submit' }, 'Apply');
    const statusSaid = formStatus();
    const statusForm = h(
      'form',
      {
        class: 'inline-form',
        'aria-label': `Status of ${t.name}`,
        // what the person chose is theirs until applied: refreshes leave the form alone
        oninput: () => (c.edited = true),
        onsubmit: submitWith(apply, statusSaid, failed, async () => {
          const view = await api(`/api/tools/${encodeURIComponent(t.id)}/status`, { method: 'POST', body: { status: select.value, reason: reason.value.trim() || undefined } });
          c.edited = false;
          reason.value = '';
          update(view);
          return `${view.name ?? t.name}: ${toolStatus(view).text.toLowerCase()}${view.statusReason ? ` (${view.statusReason})` : ''}.`;
        }),
      },
      h('div', { class: 'field' }, h('label', { for: ids.status }, 'Status'), select),
      h('div', { class: 'field grow' }, h('label', { for: ids.reason }, 'Reason'), reason),
      apply,
      statusSaid.el,
    );
    const note = h('input', { id: ids.note, required: true, maxlength: '500', placeholder: 'e.g. nozzle replaced, belts tensioned' });
    const reset = h('input', { id: ids.reset, type: 'checkbox', checked: true });
    const logButton = h('button', { type: 'submit' }, 'Log service');
    const serviceSaid = formStatus();
    const serviceForm = h(
      'form',
      {
        class: 'inline-form',
        'aria-label': `Service of ${t.name}`,
        onsubmit: submitWith(logButton, serviceSaid, failed, async () => {
          await api(`/api/maintenance/${encodeURIComponent(t.id)}/service`, { method: 'POST', body: { note: note.value.trim(), resetRunHours: reset.checked } });
          note.value = '';
          await Promise.all([loadMaintenance(), loadLog()]);
          return `Service of ${t.name} logged.`;
        }),
      },
      h('div', { class: 'field grow' }, h('label', { for: ids.note }, 'Service note'), note),
      h('div', { class: 'check' }, reset, h('label', { for: ids.reset }, 'Reset run hours')),
      logButton,
      serviceSaid.el,
    );
    const el = h('article', { class: 'tool card', 'data-tool': t.id, 'aria-labelledby': `${ids.status}-title` }, h('header', {}, h('h3', { id: `${ids.status}-title` }, t.name), status), health, h('details', {}, h('summary', {}, 'Change status or log a service'), statusForm, serviceForm));
    const c = { el, status, health, select, serviceForm, edited: false, shownStatus: null };
    cards.set(t.id, c);
    return c;
  }

  function deviceIdsOf(t) {
    const d = t.devices ?? {};
    return [...new Set([d.printer, d.node, d.switch, ...(d.readers ?? [])].filter(Boolean))];
  }

  /** One device of a tool: its state and what it reports (temperatures, job, power, faults, last seen). */
  function deviceItem(id) {
    const d = devices.get(id);
    if (!d) return h('li', {}, h('strong', {}, id), ' ', h('span', { class: 'pill offline' }, 'unknown'));
    const x = d.detail ?? {};
    const temp = (label, t) => t && h('span', { class: 'temp' }, `${label} ${celsius(t.actual)}`, t.target ? ` / ${celsius(t.target)}` : '');
    const facts = [
      x.printerState && (['printing', 'paused'].includes(x.printerState) && typeof x.job?.progress === 'number' ? `${x.printerState} ${percent(x.job.progress)}` : x.printerState),
      temp('Hotend', x.temperatures?.hotend),
      temp('Bed', x.temperatures?.bed),
      typeof x.powerW === 'number' ? `${Math.round(x.powerW)} W` : null,
      h('span', { class: 'muted' }, `seen ${ago(d.lastSeen)}`),
    ].filter(Boolean);
    const faults = [...(x.fault ? [x.fault.text ?? x.fault.kind] : []), ...(x.faults ?? []).map((f) => f.text ?? f.name ?? f.code)];
    return h(
      'li',
      { 'data-device': id },
      h('div', { class: 'device-head' }, h('strong', {}, d.name ?? id), h('span', { class: `pill ${d.state === 'online' ? 'available' : 'offline'}` }, d.state)),
      h('div', { class: 'facts' }, facts.flatMap((f, i) => (i ? [' · ', f] : [f]))),
      faults.length ? h('div', { class: 'fault' }, `Fault: ${faults.join('; ')}`) : null,
    );
  }

  function update(t) {
    const before = tools.get(t.id);
    tools.set(t.id, { ...before, ...t });
    render(t.id);
    // a status change by anyone is a line of the log
    if (before && (before.status !== t.status || before.statusReason !== t.statusReason)) loadLog().catch(failed);
  }

  function render(id) {
    const t = tools.get(id);
    const c = card(t);
    loading.remove();
    if (!c.el.isConnected) grid.append(c.el);
    c.serviceForm.hidden = !maintenanceAvailable;
    const s = toolStatus(t);
    fill(c.status, statusPill(t));
    // the form follows the server only when the server's status changed and nobody is editing it
    if (t.status !== c.shownStatus) {
      c.shownStatus = t.status;
      if (!c.edited) c.select.value = t.status;
    }
    const ids = deviceIdsOf(t);
    const online = t.online ?? ids.every((d) => devices.get(d)?.state === 'online');
    const session = t.session;
    const m = maintenance.get(id);
    c.el.dataset.status = s.key;
    c.el.classList.toggle('faulty', ids.some((d) => devices.get(d)?.detail?.fault || devices.get(d)?.detail?.faults?.length));
    fill(
      c.health,
      s.reason && s.key !== 'in-use' ? h('p', { class: 'reason' }, `${s.text}: ${s.reason}`, t.statusBy ? ` (${t.statusBy}${t.statusSince ? `, ${dateTime(t.statusSince)}` : ''})` : '') : null,
      dl([
        ['Online', online ? 'yes' : h('strong', { class: 'fault' }, 'no')],
        ['Session', session ? `${session.affiliateName ?? session.affiliateId ?? 'someone'}, since ${time(session.startedAt)}` : 'none'],
        ['Run hours', m ? hours(m.runHours) : undefined],
        ['Next service', m ? (m.serviceEveryH === null ? 'no schedule' : m.due ? h('strong', { class: 'fault' }, `due (${hours(-m.dueInH)} over)`) : `in ${hours(m.dueInH)}`) : undefined],
        ['Last service', m ? (m.lastService ? `${dateTime(m.lastService.at)}, ${m.lastService.by}: ${m.lastService.note}` : 'none logged') : undefined],
      ]),
      h('ul', { class: 'devices', 'aria-label': `Devices of ${t.name}` }, ids.map(deviceItem)),
    );
  }

  function renderAll() {
    if (!tools.size) fill(grid, h('p', { class: 'muted' }, 'No tool is configured.'));
    for (const id of tools.keys()) render(id);
  }

  function addAlert(a) {
    noAlerts.hidden = true;
    const where = [a.toolId && (tools.get(a.toolId)?.name ?? a.toolId), a.deviceId && (devices.get(a.deviceId)?.name ?? a.deviceId)].filter(Boolean).join(' / ');
    // the gateway's text usually names the device already
    const prefix = where && !a.text.startsWith(a.deviceId ?? a.toolId) ? `${where}: ` : '';
    alerts.prepend(h('li', { class: `alert ${a.level}` }, h('time', { datetime: a.at }, time(a.at)), ' ', h('strong', {}, a.level === 'error' ? 'Error' : 'Warning'), ' ', prefix, a.text));
    while (alerts.children.length > MAX_ALERTS) alerts.lastChild.remove();
  }

  async function loadDevices() {
    for (const d of await api('/api/devices')) devices.set(d.id, d);
  }

  async function loadMaintenance() {
    if (!maintenanceAvailable) return;
    try {
      for (const m of await api('/api/maintenance')) maintenance.set(m.toolId, m);
    } catch (err) {
      if (!(err instanceof ApiError && err.status === 404)) throw err;
      maintenanceAvailable = false; // a gateway without maintenance tracking
    }
    renderAll();
  }

  async function loadLog() {
    if (!maintenanceAvailable) return fill(log, h('p', { class: 'muted' }, 'This gateway does not keep a maintenance log.'));
    const entries = await api('/api/maintenance/log');
    if (!entries.length) return fill(log, h('p', { class: 'muted' }, 'No service logged yet.'));
    const what = (e) => (e.kind === 'status' ? `status: ${e.status}` : e.resetRunHours ? `service at ${hours(e.runHours)}, run hours reset` : 'service');
    fill(log, table('Services and status changes, newest first', ['When', 'Tool', 'What', 'By', 'Note'], entries.map((e) => [dateTime(e.at), tools.get(e.toolId)?.name ?? e.toolId, what(e), e.by ?? '—', e.note ?? ''])));
  }

  const stops = [
    on(bus, 'tool', update),
    on(bus, 'device', (d) => {
      devices.set(d.id, { ...devices.get(d.id), ...d });
      for (const t of tools.values()) if (deviceIdsOf(t).includes(d.id)) render(t.id);
    }),
    on(bus, 'alert', addAlert),
  ];
  // temperatures and "last seen" move without a state change: refreshed every few seconds
  const poller = setInterval(() => loadDevices().then(renderAll).catch(() => {}), 5000);

  (async () => {
    const [list] = await Promise.all([api('/api/tools'), loadDevices()]);
    for (const t of list) tools.set(t.id, t);
    renderAll();
    await loadMaintenance();
    await loadLog();
  })().catch(failed);

  return () => {
    clearInterval(poller);
    for (const stop of stops) stop();
  };
}
