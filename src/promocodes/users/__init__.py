"""Users of the web UI: accounts with argon2 password hashes, and their login sessions."""
