"""Tests of the built documentation site in Chromium."""
