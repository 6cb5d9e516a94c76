"""Prompt templates the agent sends to LLMs."""
