"""Test support: live servers on loopback, databases, and the people who use the vault."""
