"""Test-only Axolotl strategies (ablations for the positive control); never shipped."""
