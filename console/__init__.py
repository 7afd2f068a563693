"""hashpivot console: config, polling, store, economics, actions, TUI and headless front ends."""
