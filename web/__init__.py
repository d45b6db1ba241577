"""The HTTP side: the JSON API (and, later, the pages)."""
