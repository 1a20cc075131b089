"""Data shipped with axolotl_mistake, written by the project: the default red-team and helpful
instructions, the probe pairs and the goal-hijacking attack templates (SOURCE.md); no code."""
