"""okap server: audit."""
