"""runledger package."""
