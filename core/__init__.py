"""Aisle's ground floor: settings and their policies, table schemas, who acts, atomic file writes,
time and process helpers, the audit log. It imports nothing of Aisle's (import-linter checks it):
every other package may import it, it imports none of them."""
