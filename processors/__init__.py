"""Pure logic: domain event to email command, rendering, analytics documents. No I/O here."""
