"""okap server: proxy."""
