"""Exosuit: the shared domain package (settings, policy, storage, audit, CLI)."""
