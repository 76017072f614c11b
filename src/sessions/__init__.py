"""Chat sessions and their message history."""
