"""Webhook delivery: the background worker that sends the outbox (``webhooks/``) and the
scan that raises ``grant.expiring``. Above the cores: it runs beside housekeeping."""
