"""What the sync keeps between runs: the ledger, id-file retention, dead letters and run reports."""
