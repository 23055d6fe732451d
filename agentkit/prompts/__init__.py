"""Prompt templates (jinja2), shipped as package data and rendered by `agentkit.prompting`."""
