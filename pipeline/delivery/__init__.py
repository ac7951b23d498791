"""From a rendered issue to readers, exactly once: the send decision (what is due,
resume, lateness), personalisation, the ledger, and the providers that deliver."""
