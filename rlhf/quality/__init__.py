"""Feedback quality: annotator analytics, per-version monitoring, active selection and reports."""
