"""Engine 1, the customer store: the single source of truth about a customer.

Profiles, identities and their resolution (one profile per real person, whatever door the data
came through), merges that lose nothing, consents with proof, preferences, the interaction
timeline, bulk imports, and GDPR export and erasure. Other engines keep references to customer
ids and learn of changes through this engine's events.
"""
