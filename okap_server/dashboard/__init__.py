"""The person's dashboard: connected apps, pending requests, keys, activity, settings, admin.

Each concept has a framework-free module (``apps``, ``keys``, ...) that reads and changes
rows for one account, and a thin ``*_routes`` module that renders it. Every query is
scoped by the signed-in account's id: another account's grant or key is simply not found.
"""
