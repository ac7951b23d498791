"""newsletter: an issue folder in git → a responsive email, sent exactly once."""
