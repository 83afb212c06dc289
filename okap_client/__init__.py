"""okap client SDK."""
