"""Helpers shared by the web integrations (Flask, Django, Starlette/FastAPI,
requests, httpx), kept apart from the instrumentors so that each of those stays a
short declaration of what it wraps.

Nothing here imports a web framework: the instrumentors hand in what they read
from the request, and these modules turn it into spans.
"""
