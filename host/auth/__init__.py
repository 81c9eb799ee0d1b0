"""Authentication: credentials, tokens, the auth services and the ``auth`` plugin."""
