"""Corpus reading, cleaning, tokenization and binary shards."""
