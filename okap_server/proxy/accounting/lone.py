"""SQLite's lone path: a request with no other in flight has no group to join, and the hop
to the admission thread and back would cost it more than its statements do, so it is
admitted on the event loop itself, on a connection that never waits for the write lock."""

from __future__ import annotations

from sqlalchemy.engine import Connection, Engine

from okap_server.proxy.accounting.admission import Admission, AdmissionRequest, AdmissionResult


class LoneAdmission:
    """SQLite only: one request admitted on the event loop's own connection, which never
    waits for the write lock (``busy_timeout=0``) and never checkpoints the WAL (other
    connections do), so the loop is held only for the statements themselves."""

    def __init__(self, admission: Admission) -> None:
        self.admission = admission
        self._conn: Connection | None = None

    @staticmethod
    def supported(engine: Engine) -> bool:
        return engine.dialect.name == "sqlite" and engine.url.database not in (None, "", ":memory:")

    def try_admit(self, request: AdmissionRequest) -> AdmissionResult | None:
        """The request's result, or None if it could not be tried here (the write lock is
        taken, or any other error): nothing was written, and the caller queues it."""
        results: list[AdmissionResult | None] = [None]
        try:
            conn = self._connection()
            driver = conn.connection.dbapi_connection
            assert driver is not None
        except Exception:
            self.close()
            return None
        # The transaction is the driver's own (sqlite3 begins it at the first write): no
        # statement here goes through SQLAlchemy, so its bookkeeping is skipped too.
        try:
            self.admission.run_group(conn, [request], [0], results)
            driver.commit()
        except Exception:
            try:
                driver.rollback()
            except Exception:
                self.close()
            return None
        return results[0]

    def _connection(self) -> Connection:
        if self._conn is None or self._conn.closed:
            conn = self.admission.engine.connect()
            conn.exec_driver_sql("PRAGMA busy_timeout=0")
            conn.exec_driver_sql("PRAGMA wal_autocheckpoint=0")
            conn.commit()
            self._conn = conn
        return self._conn

    def close(self) -> None:
        """Its connection is not given back to the pool: its pragmas are not the pool's."""
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.invalidate()
            conn.close()
