"""Demo and test tooling: simulated traffic and annotators, and the `seed_demo` and
`simulate_traffic` commands. Lives apart from the product, which never imports it, and is
left out of the installed package (pyproject.toml)."""
