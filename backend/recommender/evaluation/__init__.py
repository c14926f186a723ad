"""Offline evaluation: leave-one-out with full ranking on a public dataset."""
