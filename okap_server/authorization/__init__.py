"""okap server: authorization."""
