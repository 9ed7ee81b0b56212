"""Engine 5, transactions: orders with returns and refunds, and the loyalty ledger (ADR 13).

Modules: `models` (the contract), `orders` and `ledger` (pure rules), `order_store` and `loyalty_store`
(one table, key design in each docstring), `order_service` and `loyalty_service` (use cases), `wiring`.
The catalogue with vendor offers (`catalogue`, `comparison`) and the brokered purchase saga (`purchases`)
are to come as modules of their own beside these, sharing the table under their own key prefixes.
"""
