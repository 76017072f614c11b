"""Published sessions: redacted snapshots any authenticated user can browse."""
