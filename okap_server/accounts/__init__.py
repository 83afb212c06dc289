"""okap server: accounts."""
