"""Hardware drivers: bytes or C calls in, typed and unit-normalised readings out.

Drivers hold no policy and no UI. They never import `console` or `simulators`.
"""
