"""Readers that turn an input (a file, a feed, a page) into RawEntry records."""
