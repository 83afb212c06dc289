"""The proxy's accounting: rate windows, spend holds, admission and settlement.

Kept apart from forwarding because every limit is only as true as this code: each module
holds one concern (period keys, SQL text, the rate limiter, spend holds, group admission,
its queue, SQLite's lone path, settlement), so a change to one is read in one place.
"""
