"""Pricing of calls and the accounts they feed."""
