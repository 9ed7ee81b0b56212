"""eCRM operator package: what people run, never shipped to Lambda.

The `ecrm` CLI, the local cloud's client operations, the demo tour, demo and synthetic data, the
analyst and evaluation commands and the published benchmark figures they compare with. It imports
the runtime package `ecrm` (and `infra` for the local cloud); `ecrm` never imports it, so the
common layer, which bundles `shared/ecrm` alone, carries none of it.
"""
