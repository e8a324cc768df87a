"""Helpers every app shares: bulk SQL, debounced scheduling, what the database can store,
rate-limit windows. Plain modules, no models; they import no Gleaner app."""
