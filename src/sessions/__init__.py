"""Chat sessions and their messages.

- `schemas`: the public shapes of a session and a message, the one definition of each and every rendering of it.
- `repository`: their SQL; `service`: the owner-filtered operations (services never commit).
- `message_cache`: the read path's cache of rendered messages, invalidated once a commit changed them.
"""
