/** Forward-only schema migrations; entry i takes the journal from version i to i + 1. Never edit a shipped one. */
export const MIGRATIONS: readonly string[] = [
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
];
