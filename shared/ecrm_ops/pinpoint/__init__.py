"""Coming from Amazon Pinpoint (end of support 2026-10-30): its endpoint exports and templates, mapped in."""
