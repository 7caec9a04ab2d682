"""The hub's web pages (server-rendered, Tornado templates): see :mod:`.pages`."""
