"""okap server: proxy/providers."""
