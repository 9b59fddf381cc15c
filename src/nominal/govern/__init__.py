"""Governance: agreements, purposes, users, the policy decision point, audit and rights."""
