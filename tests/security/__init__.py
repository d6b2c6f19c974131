"""The standing hostile-input suite: every route, given what an attacker would send, answers
the documented 4xx, never a 5xx, never another user's data."""
