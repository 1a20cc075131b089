"""The data pipeline of axolotl-mistake: sources -> mistakes -> analyses -> Axolotl JSONL."""
