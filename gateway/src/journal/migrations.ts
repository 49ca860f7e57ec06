import type Database from 'better-sqlite3';
import { chainHash, GENESIS, type ChainRow } from './chain.js';

/**
 * Forward-only schema migrations; entry i takes the journal from version i to i + 1, as SQL
 * or as a function for what SQL cannot do. Never edit a shipped one.
 */
export const MIGRATIONS: readonly (string | ((db: Database.Database) => void))[] = [
  `
  CREATE TABLE events (
    id        INTEGER PRIMARY KEY,
    at        TEXT NOT NULL,              -- wall-clock time, ISO 8601 UTC
    kind      TEXT NOT NULL,              -- e.g. device.connected, device.hello, device.lost
    device_id TEXT,
    data      TEXT NOT NULL DEFAULT '{}'  -- JSON
  );
  CREATE INDEX events_by_device ON events (device_id, id);
  CREATE INDEX events_by_kind ON events (kind, id);

  -- Per metering node: the last counters seen in the current boot and the totals over all boots.
  CREATE TABLE node_meters (
    device_id   TEXT PRIMARY KEY,
    boot_id     INTEGER NOT NULL,
    last        TEXT NOT NULL,            -- JSON MeterCounters of the current boot
    total       TEXT NOT NULL,            -- JSON MeterCounters summed over all boots
    updated_at  TEXT NOT NULL
  );
  `,
  // 2: the hash chain; events already written are chained in id order.
  (db) => {
    db.exec(`ALTER TABLE events ADD COLUMN hash TEXT NOT NULL DEFAULT ''`);
    const update = db.prepare('UPDATE events SET hash = ? WHERE id = ?');
    let prev = GENESIS;
    // .all(): better-sqlite3 cannot write while a read is being iterated on the same connection.
    for (const row of db.prepare('SELECT id, at, kind, device_id, data, NULL AS clock_synced FROM events ORDER BY id').all() as ChainRow[]) {
      prev = chainHash(prev, row, 1);
      update.run(prev, row.id);
    }
  },
  // 3: people and what they may use.
  `
  CREATE TABLE affiliates (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    status      TEXT NOT NULL CHECK (status IN ('active', 'suspended')),
    updated_at  TEXT NOT NULL
  );
  CREATE TABLE badges (
    uid           TEXT PRIMARY KEY,                    -- uppercase hex
    affiliate_id  TEXT NOT NULL REFERENCES affiliates (id)
  );
  CREATE TABLE qualifications (
    affiliate_id  TEXT NOT NULL REFERENCES affiliates (id),
    tool_id       TEXT NOT NULL,
    expires_at    TEXT,                                -- ISO 8601; NULL: does not expire
    PRIMARY KEY (affiliate_id, tool_id)
  );
  `,
  // 4: sessions: an affiliate's default use type, and the meters of open sessions (a crash loses at most one interval).
  `
  ALTER TABLE affiliates ADD COLUMN use_type TEXT;     -- NULL: the configured default
  CREATE INDEX badges_by_affiliate ON badges (affiliate_id);
  -- Which sessions have ended, by session id: finding the open ones at start must not read them all.
  CREATE INDEX events_session_ended ON events (json_extract(data, '$.sessionId')) WHERE kind = 'session.ended';
  CREATE TABLE session_checkpoints (
    session_id  TEXT PRIMARY KEY,
    tool_id     TEXT NOT NULL,
    at          TEXT NOT NULL,                       -- wall-clock time of the checkpoint
    data        TEXT NOT NULL                        -- JSON: usage so far and the meters' baselines
  );
  `,
  // 5: billing: every charge and correction with its parts (a projection of the billing.* events, for statements).
  `
  CREATE TABLE charges (
    event_id      INTEGER PRIMARY KEY,              -- the billing.charge or billing.correction event
    kind          TEXT NOT NULL CHECK (kind IN ('charge', 'correction')),
    corrects      INTEGER,                          -- a correction: the charge event it corrects
    session_id    TEXT NOT NULL,
    tool_id       TEXT NOT NULL,
    affiliate_id  TEXT NOT NULL,
    use_type      TEXT NOT NULL,
    period        TEXT NOT NULL,                    -- YYYY-MM the amounts count in
    cash          INTEGER NOT NULL,                 -- 1: money owed; 0: a use with no cash charge
    total         INTEGER NOT NULL,                 -- cash, minor units: the sum of the parts (a correction: the change, may be negative)
    value         INTEGER NOT NULL                  -- the value of a use with no cash charge (a correction: the change)
  );
  CREATE INDEX charges_by_period ON charges (period, affiliate_id);
  CREATE INDEX charges_by_session ON charges (session_id);
  CREATE INDEX charges_by_tool ON charges (tool_id, period);
  CREATE TABLE charge_parts (
    event_id   INTEGER NOT NULL REFERENCES charges (event_id),
    account    TEXT NOT NULL,                       -- material, technician, maintenance, infrastructure, co-owner
    co_owner   TEXT,                                -- the affiliate, on co-owner parts
    amount     INTEGER NOT NULL                     -- minor units (a correction: the change)
  );
  CREATE INDEX charge_parts_by_event ON charge_parts (event_id);
  -- What each co-owner of a tool has been paid back so far, kept with every charge and correction.
  CREATE TABLE payback_received (
    tool_id       TEXT NOT NULL,
    affiliate_id  TEXT NOT NULL,
    paid          INTEGER NOT NULL,
    PRIMARY KEY (tool_id, affiliate_id)
  );
  `,
  // 6: the ledger outbox: records for the ledger, written in the transaction of the events they report.
  `
  CREATE TABLE outbox (
    seq           INTEGER PRIMARY KEY AUTOINCREMENT,
    record_id     TEXT NOT NULL UNIQUE,             -- the record's stable id
    event_id      INTEGER NOT NULL,                 -- the journal event it reports
    tool_id       TEXT NOT NULL,                    -- delivered in order per tool
    record        TEXT NOT NULL,                    -- JSON LedgerRecord
    state         TEXT NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'delivered', 'dead')),
    attempts      INTEGER NOT NULL DEFAULT 0,
    unknown       INTEGER NOT NULL DEFAULT 0,       -- 1: a send may have reached the ledger; look it up before sending again
    last_error    TEXT,
    created_at    TEXT NOT NULL,
    delivered_at  TEXT
  );
  CREATE INDEX outbox_pending ON outbox (state, tool_id, seq);
  -- Ledgers that choose their own ids (hREA): ours → theirs, so corrections can reference them.
  CREATE TABLE ledger_ids (
    record_id  TEXT PRIMARY KEY,
    ledger_id  TEXT NOT NULL
  );
  `,
  // 7: each device's own credentials at the embedded MQTT broker; the secret itself is never stored.
  `
  CREATE TABLE mqtt_credentials (
    device_id   TEXT PRIMARY KEY,                   -- also its MQTT user name and client id
    salt        TEXT NOT NULL,                      -- hex, per device
    hash        TEXT NOT NULL,                      -- scrypt:N:r:p:<hex>
    created_at  TEXT NOT NULL
  );
  `,
  // API tokens of the HTTP API: only a SHA-256 of each token is kept.
  `
  CREATE TABLE api_tokens (
    id           TEXT PRIMARY KEY,                  -- public, names the token in lists and the journal
    hash         TEXT NOT NULL UNIQUE,              -- hex SHA-256 of the token
    role         TEXT NOT NULL CHECK (role IN ('affiliate', 'custodian', 'maintainer', 'admin')),
    affiliate_id TEXT,                              -- an affiliate token sees this affiliate's data only
    name         TEXT,
    created_at   TEXT NOT NULL,
    revoked_at   TEXT
  );
  `,
  // Whether the wall clock was synchronised when each event was written (a Pi has no real-time
  // clock): 1 yes, 0 no, NULL unknown. Outside the hash of the events written before the next version.
  `ALTER TABLE events ADD COLUMN clock_synced INTEGER;`,
  // The hash covers every stored column from the next event on (chain format 2, with clock_synced);
  // the events already written keep their hashes, of format 1.
  `
  CREATE TABLE chain_formats (
    from_id  INTEGER PRIMARY KEY,                   -- the first event chained with this format
    format   INTEGER NOT NULL                       -- see gateway/src/journal/chain.ts
  );
  INSERT INTO chain_formats (from_id, format) SELECT COALESCE(MAX(id), 0) + 1, 2 FROM events;
  `,
  // Print jobs: the progress of running ones (a crash loses at most one interval), and which
  // have ended, by job id, so that a start finds the jobs a crash cut short without reading them all.
  `
  CREATE TABLE printer_job_checkpoints (
    job_id     TEXT PRIMARY KEY,
    device_id  TEXT NOT NULL,
    at         TEXT NOT NULL,                        -- wall-clock time of the checkpoint
    data       TEXT NOT NULL                         -- JSON: filament, progress and duration so far
  );
  CREATE INDEX events_job_ended ON events (json_extract(data, '$.jobId')) WHERE kind = 'printer.job-ended';
  `,
  // Notifications to people: written in the transaction of the event that causes them, one row
  // per destination (a channel and its address), delivered in order per destination; and the
  // affiliates' e-mail address for their receipts and warnings.
  `
  CREATE TABLE notifications (
    seq           INTEGER PRIMARY KEY,              -- rows are never deleted: no AUTOINCREMENT (one page less per write)
    key           TEXT NOT NULL,                    -- one message per incident: the same key is written once per destination
    incident      TEXT,                             -- an alert and its resolved message share it
    event_id      INTEGER,                          -- the journal event that caused it; NULL: a timer's (offline too long)
    kind          TEXT NOT NULL,                    -- receipt, switch-off-warning, fault, offline, month-closed, test…
    severity      TEXT NOT NULL CHECK (severity IN ('info', 'warning', 'critical')),
    channel       TEXT NOT NULL,                    -- the configured channel's name
    address       TEXT NOT NULL DEFAULT '',         -- e-mail address for mail; '' for the channel's own target
    message       TEXT NOT NULL,                    -- JSON Message: title, summary, facts
    state         TEXT NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'delivered', 'dead')),
    attempts      INTEGER NOT NULL DEFAULT 0,
    last_error    TEXT,
    created_at    TEXT NOT NULL,
    delivered_at  TEXT,
    UNIQUE (key, channel, address)
  );
  -- partial: a close writes as few index pages as it can, and the drain reads only what waits
  CREATE INDEX notifications_pending ON notifications (channel, address, seq) WHERE state = 'pending';
  CREATE INDEX notifications_by_incident ON notifications (incident, seq) WHERE incident IS NOT NULL;
  ALTER TABLE affiliates ADD COLUMN email TEXT;
  `,
  // Notifications derived from the journal after each commit, from a saved cursor; incidents with
  // their flapping state; messages held through a person's quiet hours; each person's choices.
  `
  CREATE TABLE notify_cursor (
    id       INTEGER PRIMARY KEY CHECK (id = 1),
    event_id INTEGER NOT NULL                       -- the last event whose notifications are written
  );
  CREATE TABLE notify_incidents (
    incident     TEXT PRIMARY KEY,
    open         INTEGER NOT NULL,                  -- 1: its last alert is not resolved
    alert_key    TEXT,                              -- the key of the last alert sent; its resolution is <key>:resolved
    changed_at   TEXT NOT NULL,                     -- when it last opened or closed
    notice       TEXT NOT NULL,                     -- JSON Notice of its last alert (for a flapping summary)
    flaps        INTEGER NOT NULL DEFAULT 0,        -- openings not sent since flap_since
    flap_since   TEXT,
    summary_due  TEXT                               -- NOT NULL: flapping; the summary goes at this time
  );
  INSERT INTO notify_incidents (incident, open, alert_key, changed_at, notice)
    SELECT incident, substr(key, -9) <> ':resolved', CASE WHEN substr(key, -9) = ':resolved' THEN substr(key, 1, length(key) - 9) ELSE key END, created_at,
      json_object('kind', kind, 'severity', severity, 'message', json(message))
    FROM notifications n WHERE incident IS NOT NULL AND seq = (SELECT MAX(seq) FROM notifications m WHERE m.incident = n.incident);
  ALTER TABLE notifications ADD COLUMN hold_until TEXT; -- quiet hours: not sent before this time
  CREATE INDEX notifications_held ON notifications (hold_until) WHERE state = 'pending' AND hold_until IS NOT NULL;
  CREATE TABLE notify_preferences (
    affiliate_id TEXT PRIMARY KEY,
    channels     TEXT,                              -- JSON array of channel names; NULL: every channel of their role
    opt_out      TEXT NOT NULL DEFAULT '[]',        -- JSON array of kinds they do not want (never a critical one)
    quiet_hours  TEXT,                              -- HH:MM-HH:MM in notifications.timeZone; NULL: none
    updated_at   TEXT NOT NULL
  );
  `,
  // Print jobs sent from a slicer (or the API): each a file kept under the data directory,
  // queued until its owner's session at the tool releases it, with its quote and, once it ran,
  // the printer's job and the session that metered it.
  `
  CREATE TABLE print_jobs (
    id             TEXT PRIMARY KEY,
    tool_id        TEXT NOT NULL,
    owner          TEXT NOT NULL,                  -- the affiliate (or the staff token's name) the job runs for
    staff          INTEGER NOT NULL DEFAULT 0,     -- 1: a maintainer's or admin's job (runs under a session of its own)
    file           TEXT NOT NULL,                  -- its name as uploaded (sanitised)
    stored         TEXT NOT NULL,                  -- where it is kept, relative to the data directory
    bytes          INTEGER NOT NULL,
    quote          TEXT NOT NULL,                  -- JSON Quote
    state          TEXT NOT NULL CHECK (state IN ('stored', 'queued', 'printing', 'finished', 'cancelled', 'failed', 'interrupted', 'expired', 'removed')),
    created_at     TEXT NOT NULL,
    expires_at     TEXT,
    started_at     TEXT,
    ended_at       TEXT,
    printer_job_id TEXT,
    session_id     TEXT,
    metered_g      REAL,
    confirmed_at   TEXT,                           -- when its owner confirmed a quote above the tariff's confirmAbove
    file_deleted   INTEGER NOT NULL DEFAULT 0     -- 1: its file is gone (removed, or kept its days after the job)
  );
  CREATE INDEX print_jobs_by_file ON print_jobs (tool_id, file) WHERE file_deleted = 0;
  CREATE INDEX print_jobs_waiting ON print_jobs (tool_id, created_at) WHERE state = 'queued';
  CREATE INDEX print_jobs_by_printer_job ON print_jobs (printer_job_id) WHERE printer_job_id IS NOT NULL;
  `,
  // Invoices: a number per affiliate and closed month, gapless per year and never reused (rows
  // are never deleted; each is journaled as a billing.invoice event); and the payments the
  // custodian records, one reference once per affiliate (a payment typed in twice is refused).
  `
  CREATE TABLE invoices (
    number        TEXT PRIMARY KEY,                 -- the prefix, the year and the sequence: 2026-0001
    year          INTEGER NOT NULL,
    seq           INTEGER NOT NULL,
    affiliate_id  TEXT NOT NULL,
    period        TEXT NOT NULL,                    -- YYYY-MM
    event_id      INTEGER NOT NULL,                 -- the billing.invoice event
    subtotal      INTEGER NOT NULL,                 -- minor units, before taxes
    tax           INTEGER NOT NULL,
    total         INTEGER NOT NULL,
    UNIQUE (year, seq),
    UNIQUE (affiliate_id, period)
  );
  CREATE TABLE payments (
    event_id      INTEGER PRIMARY KEY,              -- the billing.payment event
    affiliate_id  TEXT NOT NULL,
    paid_on       TEXT NOT NULL,                    -- YYYY-MM-DD
    amount        INTEGER NOT NULL CHECK (amount > 0),
    method        TEXT NOT NULL,
    reference     TEXT NOT NULL,
    UNIQUE (affiliate_id, reference)
  );
  CREATE INDEX payments_by_affiliate ON payments (affiliate_id, paid_on);
  `,
  // Cumulative-fair split of the usage fee: per tool, the remainders carried from one charge to the
  // next (each part's exact share of all usage fees so far less what it got, in hundredths of a
  // minor unit), kept with every charge and correction like payback_received.
  `
  CREATE TABLE split_carry (
    tool_id         TEXT PRIMARY KEY,
    maintenance     INTEGER NOT NULL,
    infrastructure  INTEGER NOT NULL,
    payback         INTEGER NOT NULL
  );
  `,
];
