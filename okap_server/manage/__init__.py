"""Use cases shared by the management API and the dashboard: framework-free, every lookup
scoped by account id, audit written in the same transaction as the change."""
