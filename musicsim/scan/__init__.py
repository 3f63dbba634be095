"""Discovering music files and analysing them into the database."""
