"""The feedback store: tables, sessions, imports and TRL-ready exports."""
