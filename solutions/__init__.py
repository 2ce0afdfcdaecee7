"""Reference solutions, same public API as exercises/. The stubs in exercises/ are generated from these."""
