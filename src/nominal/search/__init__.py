"""Live search of golden nominals and the joined-up view of a person and a household."""
