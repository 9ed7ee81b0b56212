"""Analysis tooling: the analyst's `ecrm analysis` commands and synthetic transactions."""
