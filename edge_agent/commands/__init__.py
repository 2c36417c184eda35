"""Downlink commands at the edge: the contract, fresh-reading history, interlocks, the ledger."""
