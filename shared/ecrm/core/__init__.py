"""Cross-cutting building blocks: typed config, observability, errors, ids, clock, events, consumers."""
