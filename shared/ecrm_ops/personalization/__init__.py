"""Personalization tooling: the `ecrm personalization` commands and published benchmark figures."""
