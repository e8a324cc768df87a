"""Gleaner's Python client: send what users do with an LLM product's answers to Gleaner.

from gleaner_client import Gleaner

gleaner = Gleaner("glk_...", "https://gleaner.example.com")
gleaner.generation(session_id="s1", generation_id="g1", input="Summarise ...", output="...")
gleaner.edit(session_id="s1", generation_id="g1", text="The corrected summary")
gleaner.flush()
"""

from gleaner_client._events import EventError, GleanerError, Stats
from gleaner_client._ids import new_event_id
from gleaner_client.aio import AsyncGleaner
from gleaner_client.client import Gleaner

__all__ = ["AsyncGleaner", "EventError", "Gleaner", "GleanerError", "Stats", "new_event_id"]
__version__ = "0.1.0"
