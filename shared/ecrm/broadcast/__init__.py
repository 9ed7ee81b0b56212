"""Engine 4, broadcast: one message, one key, a policy before every send, feedback closing the loop (ADR 12)."""
