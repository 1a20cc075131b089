"""Evaluation harness: `python -m axolotl_mistake.evaluate` (run) and `... compare` (table).

Measures harmless rate/score, helpfulness, helpful-on-harmful, discrimination, goal-hijacking
defence and over-refusal with bootstrap intervals. Reuses the generation backends, cache and the
discrimination probe; it never trains and never writes outside its output folder.
"""
