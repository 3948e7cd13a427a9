"""newsdesk: news articles in; region and topic feeds and a personal email digest out."""

__version__ = "0.1.0"
