"""Tools the graph's nodes call: LLM rewriting, the semantic guard, noise choice."""
