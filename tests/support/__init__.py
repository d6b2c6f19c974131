"""Helpers the tests share: an SSE parser, isolation of servers' names, processes."""
