"""okap server: web."""
