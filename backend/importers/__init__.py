"""Importers for public catalog and interaction datasets."""
