"""The MongoDB side of clickpulse: the collection contract, indexes, writers and report queries."""
