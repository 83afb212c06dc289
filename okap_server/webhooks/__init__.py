"""Signed webhooks (Standard Webhooks): endpoints, a durable outbox, and its delivery worker."""
