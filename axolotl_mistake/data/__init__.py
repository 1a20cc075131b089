"""Data shipped with axolotl_mistake (goal-hijacking attack templates); no code."""
