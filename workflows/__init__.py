"""Deterministic workflow code: decides what happens next, never talks to the world."""
