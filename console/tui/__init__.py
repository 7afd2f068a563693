"""The Textual console. The only package in hashpivot that imports `textual`."""
