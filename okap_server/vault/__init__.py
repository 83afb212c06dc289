"""okap server: vault."""
