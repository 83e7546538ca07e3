"""SQLite storage of the reference platform: registered devices, received records, base-data uploads.

Records are keyed by the natural key of SPEC 3.4 (enterpriseCode, dataCode, statType, statDate): a
resend overwrites the row and bumps `received_count`, so "every key present once" and "how often it was
sent" are both answerable. One connection shared by the handler threads, serialised by a lock.
"""

import json
import os
import secrets
import sqlite3
import threading

_SCHEMA = """
CREATE TABLE IF NOT EXISTS devices (
    device_id       TEXT PRIMARY KEY,
    enterprise_code TEXT NOT NULL,
    region          TEXT NOT NULL,
    secret_key      TEXT NOT NULL,
    registered_at   TEXT NOT NULL,
    UNIQUE (enterprise_code, region)
);
CREATE TABLE IF NOT EXISTS records (
    enterprise_code   TEXT NOT NULL,
    data_code         TEXT NOT NULL,
    stat_type         INTEGER NOT NULL,
    stat_date         TEXT NOT NULL,
    data_value        REAL NOT NULL,
    input_type        INTEGER NOT NULL,
    scope             INTEGER NOT NULL,
    valid             INTEGER NOT NULL,
    upload_date       TEXT NOT NULL,
    device_id         TEXT NOT NULL,
    first_received_at TEXT NOT NULL,
    received_at       TEXT NOT NULL,
    received_count    INTEGER NOT NULL DEFAULT 1,
    PRIMARY KEY (enterprise_code, data_code, stat_type, stat_date)
);
CREATE TABLE IF NOT EXISTS center_info (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    device_id   TEXT NOT NULL,
    received_at TEXT NOT NULL,
    body        TEXT NOT NULL
);
"""

_UPSERT = """
INSERT INTO records (enterprise_code, data_code, stat_type, stat_date, data_value, input_type, scope,
                     valid, upload_date, device_id, first_received_at, received_at, received_count)
VALUES (:enterpriseCode, :dataCode, :statType, :statDate, :dataValue, :inputType, :scope,
        :valid, :uploadDate, :deviceId, :receivedAt, :receivedAt, 1)
ON CONFLICT (enterprise_code, data_code, stat_type, stat_date) DO UPDATE SET
    data_value = excluded.data_value, input_type = excluded.input_type, scope = excluded.scope,
    valid = excluded.valid, upload_date = excluded.upload_date, device_id = excluded.device_id,
    received_at = excluded.received_at, received_count = records.received_count + 1
"""

_RECORD_COLUMNS = (
    ("enterpriseCode", "enterprise_code"), ("dataCode", "data_code"), ("statType", "stat_type"),
    ("statDate", "stat_date"), ("dataValue", "data_value"), ("inputType", "input_type"),
    ("scope", "scope"), ("valid", "valid"), ("uploadDate", "upload_date"), ("deviceId", "device_id"),
    ("firstReceivedAt", "first_received_at"), ("receivedAt", "received_at"),
    ("receivedCount", "received_count"),
)


class Store:
    """Thread-safe SQLite store. `path` may be ":memory:"."""

    def __init__(self, path=":memory:"):
        if path != ":memory:":
            parent = os.path.dirname(os.path.abspath(path))
            os.makedirs(parent, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(path, check_same_thread=False)
        with self._lock, self._db:
            self._db.executescript(_SCHEMA)

    def close(self):
        with self._lock:
            self._db.close()

    # -- devices ----------------------------------------------------------------------------------
    def register(self, enterprise_code, region, now_text):
        """(device_id, secret_key, is_new) for this enterprise and region; stable across calls."""
        with self._lock, self._db:
            row = self._db.execute(
                "SELECT device_id, secret_key FROM devices WHERE enterprise_code = ? AND region = ?",
                (enterprise_code, region)).fetchone()
            if row:
                return row[0], row[1], False
            device_id, secret_key = secrets.token_hex(16), secrets.token_hex(16)
            self._db.execute(
                "INSERT INTO devices (device_id, enterprise_code, region, secret_key, registered_at)"
                " VALUES (?, ?, ?, ?, ?)", (device_id, enterprise_code, region, secret_key, now_text))
            return device_id, secret_key, True

    def device(self, device_id):
        """{"deviceId", "enterpriseCode", "region", "secretKey", "registeredAt"} or None."""
        rows = self.devices(device_id)
        return rows[0] if rows else None

    def devices(self, device_id=None):
        sql = "SELECT device_id, enterprise_code, region, secret_key, registered_at FROM devices"
        args = ()
        if device_id is not None:
            sql, args = sql + " WHERE device_id = ?", (device_id,)
        with self._lock:
            rows = self._db.execute(sql + " ORDER BY registered_at, device_id", args).fetchall()
        keys = ("deviceId", "enterpriseCode", "region", "secretKey", "registeredAt")
        return [dict(zip(keys, row)) for row in rows]

    # -- records ----------------------------------------------------------------------------------
    def store_batch(self, device_id, enterprise_code, records, now_text):
        """Upsert normalised records in one transaction; returns how many keys were already present."""
        repeats = 0
        with self._lock, self._db:
            for rec in records:
                row = dict(rec, enterpriseCode=enterprise_code, deviceId=device_id, receivedAt=now_text,
                           valid=1 if rec["valid"] else 0)
                seen = self._db.execute(
                    "SELECT 1 FROM records WHERE enterprise_code = ? AND data_code = ? AND stat_type = ?"
                    " AND stat_date = ?",
                    (enterprise_code, rec["dataCode"], rec["statType"], rec["statDate"])).fetchone()
                repeats += 1 if seen else 0
                self._db.execute(_UPSERT, row)
        return repeats

    def records(self, enterprise_code=None, data_code=None):
        """Stored records as dicts with wire names plus firstReceivedAt/receivedAt/receivedCount."""
        sql = "SELECT %s FROM records" % ", ".join(col for _, col in _RECORD_COLUMNS)
        where, args = [], []
        if enterprise_code is not None:
            where.append("enterprise_code = ?")
            args.append(enterprise_code)
        if data_code is not None:
            where.append("data_code = ?")
            args.append(data_code)
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY enterprise_code, data_code, stat_type, stat_date"
        with self._lock:
            rows = self._db.execute(sql, args).fetchall()
        out = []
        for row in rows:
            rec = dict(zip((name for name, _ in _RECORD_COLUMNS), row))
            rec["valid"] = bool(rec["valid"])
            out.append(rec)
        return out

    def counts(self):
        """{"keys": distinct stored keys, "repeats": receptions beyond the first, "devices": n}."""
        with self._lock:
            keys, repeats = self._db.execute(
                "SELECT COUNT(*), COALESCE(SUM(received_count - 1), 0) FROM records").fetchone()
            devices = self._db.execute("SELECT COUNT(*) FROM devices").fetchone()[0]
        return {"keys": keys, "repeats": repeats, "devices": devices}

    # -- base data --------------------------------------------------------------------------------
    def store_center_info(self, device_id, body_text, now_text):
        with self._lock, self._db:
            self._db.execute("INSERT INTO center_info (device_id, received_at, body) VALUES (?, ?, ?)",
                             (device_id, now_text, body_text))

    def center_infos(self):
        with self._lock:
            rows = self._db.execute("SELECT received_at, body FROM center_info ORDER BY id").fetchall()
        return [dict(json.loads(body), receivedAt=at) for at, body in rows]

    def clear(self, devices=False):
        """Forget records and base data (and registrations too when `devices`)."""
        with self._lock, self._db:
            self._db.execute("DELETE FROM records")
            self._db.execute("DELETE FROM center_info")
            if devices:
                self._db.execute("DELETE FROM devices")
