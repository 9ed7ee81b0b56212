"""Event collection tooling: the demo shop's generated browsing sessions."""
