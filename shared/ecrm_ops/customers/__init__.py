"""Customer store tooling: the bulk importer client and the demo's multi-source data set."""
