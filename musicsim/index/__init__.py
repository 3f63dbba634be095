"""Approximate nearest-neighbour index (hnswlib), derived from the database."""
